"""``analyze`` for a toy run: the measures that apply to its family on every checkpoint,
and a summary with T_mem, T_grok, the generalisation gap and the ridge bound.

Table measures (the same tidy table as the transformer's, ``analysis.csv``):

==================  ======================  ================================================
measure             key                     value
==================  ======================  ================================================
train_loss          ""                      data loss on the training points (no penalty)
test_loss           ""                      the same on the test points
train_acc, test_acc ""                      sign accuracy (+-1 labels), or 1.0 if the loss
                                            is below c else 0.0 (ridge: "generalised")
generalisation_gap  ""                      G = test_loss - train_loss
weight_norm_sq      "total", "<param>",     sum of squares: of the trained parameters, of
                    "<param>.<block>"       each parameter, and of a linear model's weights
                                            on each input block (signal, memorisation)
==================  ======================  ================================================

Every other registered measure is skipped with the family's reason (``skipped_measures``).
The phases: T_mem and T_grok as for the transformer, from the logged metrics (every eval
epoch); for a classification set also T_grok at tau = 0.9 (``T_grok_0.9``); the circuit
phases (memorisation_end, circuit_formation_end, cleanup_end) are not defined for a model
with no circuit and stay None with that reason.  ``bound`` holds the ridge paper's lower
bound (:func:`grokinterp.decay_law.ridge_bound`) for linear ridge GD runs, beside
``t_generalise`` (= T_grok: the first epoch with test loss below c).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from grokinterp import files
from grokinterp.analysis.registry import ANALYSES, SCALAR
from grokinterp.decay_law import bound_inputs, ridge_bound
from grokinterp.models import TOY_MEASURES
from grokinterp.models.train import accuracy, data_loss
from grokinterp.phases import Boundary, grokking_ratio, t_grok, t_mem
from grokinterp.run import ToyRun
from grokinterp.storage import atomic_write_text, write_json

__all__ = ["analyze_toy", "block_norms", "toy_table"]

NO_CIRCUIT = "not defined for a model with no circuit (no Fourier basis, no excluded loss)"


def block_norms(params: dict[str, torch.Tensor], trained: tuple[str, ...],
                blocks: dict[str, tuple[int, int]]) -> dict[str, float]:  # fmt: skip
    """Sums of squares: ``total`` (trained parameters), each parameter, and for a weight
    vector ``w`` over the input coordinates, each input block ``w.<block>``.

    >>> block_norms({"w": torch.tensor([1.0, 2.0, 3.0])}, ("w",), {"s": (0, 1), "m": (1, 3)})
    {'total': 14.0, 'w': 14.0, 'w.s': 1.0, 'w.m': 13.0}
    """
    out = {"total": float(sum((params[k] ** 2).sum() for k in trained))}
    for name, value in params.items():
        if name not in trained and value.dim() == 0:
            continue  # a flag (the mlp's activation), not a weight
        out[name] = float((value**2).sum())
    if "w" in params:
        for block, (lo, hi) in blocks.items():
            out[f"w.{block}"] = float((params["w"][lo:hi] ** 2).sum())
    return out


def _has_basis(cfg) -> bool:
    from grokinterp.tasks import get_task

    return cfg.dataset == "modular" and get_task(cfg.operation).basis(cfg.p) is not None


def _mlp_values(run: ToyRun, params: dict, key_freqs) -> list[tuple[str, str, float]]:
    """The mlp's Fourier (modular) or parity (sparse-parity) measures at one checkpoint."""
    from grokinterp.measures.mlp import mlp_fourier, parity_measures

    cfg, data = run.config, run.dataset
    if cfg.dataset == "sparse-parity":
        out = parity_measures(params, data.relevant, data.x_test, data.y_test)
        return [(name, SCALAR, out[name]) for name in
                ("relevant_weight_frac", "restricted_loss", "excluded_loss")]  # fmt: skip
    if not _has_basis(cfg):
        return []
    out = mlp_fourier(params, cfg.p, cfg.operation, data.train_idx, data.test_idx, key_freqs)
    values = [("n_key_freqs", SCALAR, float(out["n_key_freqs"])),
              ("gini_embed", SCALAR, out["gini_embed"])]  # fmt: skip
    counts, spectrum = out["neurons_per_freq"], out["embed_freq_norm"]
    values += [("neurons_per_freq", str(k), float(counts[k])) for k in range(1, len(counts))]
    values += [("embed_freq_norm", str(k), float(spectrum[k])) for k in range(1, len(spectrum))]
    values += [("restricted_loss", k, v) for k, v in out["restricted_loss"].items()]
    values += [("excluded_loss", k, v) for k, v in out["excluded_loss"].items()]
    return values


def mlp_key_freqs(run: ToyRun) -> list[int] | None:
    """The key frequencies of an mlp run on a modular task: those owning neurons at its
    last checkpoint (held fixed for the restricted and excluded loss at every checkpoint,
    as the transformer's); None for any other run."""
    from grokinterp.measures.mlp import mlp_fourier

    cfg, data = run.config, run.dataset
    if cfg.family != "mlp" or not _has_basis(cfg) or not run.epochs:
        return None
    params = run.model_at(run.epochs[-1])
    return mlp_fourier(params, cfg.p, cfg.operation, data.train_idx, data.test_idx)["key_freqs"]


def toy_table(run: ToyRun) -> pd.DataFrame:
    cfg, data, family = run.config, run.dataset, run.family
    trained = family.trained(cfg)
    key_freqs = mlp_key_freqs(run)
    rows = []
    for epoch in run.epochs:
        params = run.model_at(epoch)
        z_train = family.forward(params, data.x_train)
        z_test = family.forward(params, data.x_test)
        train_loss = data_loss(z_train, data.y_train, cfg.loss)
        test_loss = data_loss(z_test, data.y_test, cfg.loss)
        values = [
            ("train_loss", SCALAR, train_loss),
            ("test_loss", SCALAR, test_loss),
            ("train_acc", SCALAR, accuracy(z_train, data.y_train, cfg)),
            ("test_acc", SCALAR, accuracy(z_test, data.y_test, cfg)),
            ("generalisation_gap", SCALAR, test_loss - train_loss),
        ]
        norms = block_norms(params, trained, data.blocks)
        values += [("weight_norm_sq", key, v) for key, v in norms.items()]
        if cfg.family == "mlp":
            values += _mlp_values(run, params, key_freqs)
        rows += [(epoch, m, k, v) for m, k, v in values]
    return pd.DataFrame(rows, columns=["epoch", "measure", "key", "value"])


def _bound(run: ToyRun, t_gen: int | None) -> dict:
    inputs = bound_inputs(run.config, run.dataset.facts)
    if inputs is None:
        return {
            "value": None,
            "reason": "the bound is proved for the linear model trained by gd on ridge data "
            "with m > n; this run is not one",
        }
    value = ridge_bound(**inputs)
    return {
        "value": value,
        "trivial": value <= 0,
        "inputs": inputs,
        "rule": "ln((m - n) nu^2 / 2 (sqrt(c / lambda_min) + |theta*|)^-2) / (4 lr lambda)",
        "t_generalise": t_gen,
        "holds": None if t_gen is None else bool(t_gen >= value),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _mlp_summary(run: ToyRun, at_last: pd.DataFrame) -> dict:
    """The mlp's measures at the last checkpoint: key frequencies, restricted/excluded loss
    (modular), relevant weight fraction (sparse-parity)."""
    cfg = run.config
    pick = {(m, k): v for m, k, v in zip(at_last["measure"], at_last["key"], at_last["value"],
                                         strict=True)}  # fmt: skip
    out: dict = {"kind": f"mlp on {cfg.dataset}", "activation": cfg.activation}
    if cfg.dataset == "sparse-parity":
        out["relevant"] = list(run.dataset.relevant)
        for name in ("relevant_weight_frac", "restricted_loss", "excluded_loss"):
            out[name] = pick.get((name, SCALAR))
        return out
    out["key_frequencies"] = mlp_key_freqs(run) or []
    out["restricted_loss"] = pick.get(("restricted_loss", "all"))
    out["excluded_loss"] = pick.get(("excluded_loss", "all"))
    out["gini_embed"] = pick.get(("gini_embed", SCALAR))
    if not _has_basis(cfg):
        out["reason"] = f"operation {cfg.operation!r} has no Fourier basis"
    return out


def analyze_toy(run: ToyRun, acc_threshold: float = 0.99) -> tuple[pd.DataFrame, dict]:
    """The table and summary of a toy run, written to analysis.csv and summary.json."""
    cfg = run.config
    table = toy_table(run)
    metrics = run.metrics
    epochs = metrics["epoch"]
    mem = t_mem(epochs, metrics["train_acc"], acc_threshold)
    grok = t_grok(epochs, metrics["test_acc"], acc_threshold)
    phases = {"T_mem": mem.to_dict(), "T_grok": grok.to_dict()}
    phases["grokking_ratio"] = grokking_ratio(mem, grok).to_dict()
    for name in ("memorisation_end", "circuit_formation_end", "cleanup_end"):
        phases[name] = Boundary(None, NO_CIRCUIT).to_dict()
    extra = {}
    if cfg.loss == "logistic":
        extra["T_grok_0.9"] = t_grok(epochs, metrics["test_acc"], 0.9).to_dict()
    last = run.epochs[-1]
    at_last = table[table["epoch"] == last]

    def value(measure: str, key: str = SCALAR):
        v = at_last[(at_last["measure"] == measure) & (at_last["key"] == key)]["value"]
        return float(v.iloc[0]) if len(v) else None

    norms_last = at_last[at_last["measure"] == "weight_norm_sq"]
    measures = run.family.measures or TOY_MEASURES
    skipped = {n: run.family.skip_text for n in ANALYSES if n not in measures}
    if cfg.family == "mlp":
        extra["mlp"] = _mlp_summary(run, at_last)
    summary = {
        "run": str(run.path),
        "run_name": cfg.run_name,
        "family": cfg.family,
        "dataset": cfg.dataset,
        "skipped_measures": skipped,
        "n_checkpoints": len(run.epochs),
        "first_epoch": run.epochs[0],
        "final_epoch": last,
        "run_complete": run.is_complete,
        "key_frequencies": (extra.get("mlp") or {}).get("key_frequencies", []),
        "phases": phases,
        "cleanup_seen": False,  # no circuit, so no cleanup to see (docs/runs-csv.md)
        "not_seen": dict.fromkeys(
            ("memorisation_end", "circuit_formation_end", "cleanup_end"), NO_CIRCUIT
        ),  # fmt: skip
        **extra,
        "t_generalise": grok.epoch,
        "bound": _bound(run, grok.epoch),
        "data": run.data_description,
        "final": {
            "epoch": last,
            "train_loss": value("train_loss"),
            "test_loss": value("test_loss"),
            "train_acc": value("train_acc"),
            "test_acc": value("test_acc"),
            "generalisation_gap": value("generalisation_gap"),
            "weight_norm_sq": value("weight_norm_sq", "total"),
        },
        "weight_norm_sq_final": dict(zip(norms_last["key"], norms_last["value"], strict=True)),
        "settings": {
            "config": cfg.to_dict(),
            "acc_threshold": acc_threshold,
            "measures": list(measures),
            "skipped_measures": skipped,
        },
        "table": files.ANALYSIS_TABLE,
        "n_rows": len(table),
    }
    summary = _jsonable(summary)
    atomic_write_text(run.path / files.ANALYSIS_TABLE, table.to_csv(index=False))
    write_json(run.path / files.SUMMARY, summary)
    return table, summary
