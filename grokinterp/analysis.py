"""Progress measures over a run's checkpoints: a registry of analyses and one tidy table.

:func:`analyze` runs every registered analysis on every complete checkpoint of a run and
writes ``analysis.csv`` (columns ``epoch, measure, key, value``) and ``summary.json`` in the
run directory (both atomically).  Checkpoints are processed in chunks with a batched
last-position forward pass (:mod:`grokinterp.batched`); :func:`measure_hooked` computes the
same rows for one model through TransformerLens hooks, and the tests prove they agree.

Table measures (``key`` is a string; scalar measures use the empty key ``""``; read the
file with :func:`read_table`, which keeps ``""`` as a string):

=====================  ==============================  =========================================
measure                key                             value
=====================  ==============================  =========================================
train_loss             ""                              float64 cross-entropy at '=' on train pairs
test_loss              ""                              the same on the test pairs
train_acc, test_acc    ""                              argmax accuracy on train / test pairs
embed_freq_norm        "0" .. "(p-1)/2"                norm of F @ W_E[:p] per freq (0 = constant)
wl_freq_norm           "0" .. "(p-1)/2"                the same for W_L = W_out @ W_U along outputs
gini_embed, gini_wl    ""                              Gini of the p component norms of W_E / W_L
neurons_per_freq       "1" .. "(p-1)/2"                neurons owned by frequency k (threshold)
n_key_freqs            ""                              frequencies owning neurons at this checkpoint
restricted_loss        "all", "train", "test"          loss of the key-frequency-restricted logits
excluded_loss          "all", "<k>" per key freq       train loss with the key frequencies removed
logit_explained_var    "all", "<k>" per key freq       variance fraction along cos(w_k(a+b-c))
attn_to                "h<i>:a", "h<i>:b", "h<i>:="    mean attention from '=' per head and target
weight_norm_sq         "total", "W_E", "W_pos", ...    sum of squares, total and per tensor
=====================  ==============================  =========================================

The definitions are in :mod:`grokinterp.measures` (one module per concept).

Key frequencies are measured on the final (latest complete) checkpoint, unless given, and
held fixed for restricted_loss, excluded_loss and logit_explained_var at every checkpoint;
neurons_per_freq shows each frequency's own history.

Incremental runs.  A second :func:`analyze` of the same run keeps the stored rows that are
still valid and computes only the rest, giving the same table as a fresh run (up to
float32 round-off in the forward pass).  Rows are valid when the stored settings
(``summary.json``: analysis version, run config, threshold, key frequencies used) match:
new checkpoints add rows; if new checkpoints change the final checkpoint's key
frequencies (or ``key_freqs`` or ``threshold`` changes), every checkpoint's rows of the
measures that depend on them are recomputed.  Measures not requested this time are kept
if still valid and dropped if stale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from grokinterp import files
from grokinterp.batched import LastPosition, hooked_last_position, last_position, stack_states
from grokinterp.config import OptionError, RunConfig
from grokinterp.data import Dataset
from grokinterp.fourier import FourierBasis, fourier_basis, freq_norms
from grokinterp.measures import (
    assign_neurons,
    attention_to,
    attention_to_a_map,
    cross_entropy,
    embedding_components,
    freq_projections,
    gini,
    key_frequencies,
    logit_explained_variance,
    logits_by_sum,
    neuron_freq_fractions,
    neuron_logit_map,
    neurons_per_freq,
    sum_index,
    wl_components,
)
from grokinterp.measures.attention import TARGETS
from grokinterp.measures.norms import weight_norms_sq
from grokinterp.phases import PHASE_NAMES, detect_phases, key_freq_births
from grokinterp.run import Run, find_runs, load_run
from grokinterp.storage import RunFileError, atomic_write_text, read_json, write_json

__all__ = [
    "ANALYSES",
    "Analysis",
    "Checkpoints",
    "analyze",
    "analyze_path",
    "checkpoint_detail",
    "format_summary",
    "measure_batched",
    "measure_hooked",
    "read_table",
]

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 1
COLUMNS = ("epoch", "measure", "key", "value")
SCALAR = ""  # the key of measures with one value per checkpoint
DEFAULT_CHUNK = 16  # checkpoints per batched forward: peak ~1.2 GB at p=113, d_mlp=512


class Checkpoints:
    """A chunk of C checkpoints of one run, and everything the analyses read from them.

    Weights come from stacked TransformerLens state dicts; activations from the batched
    forward (or are given, as :func:`measure_hooked` does with TransformerLens hooks).
    """

    def __init__(
        self,
        cfg: RunConfig,
        dataset: Dataset,
        epochs: Sequence[int],
        states: dict[str, torch.Tensor],
        key_freqs: Sequence[int] = (),
        threshold: float = 0.85,
        forward: LastPosition | None = None,
        weights: dict[str, torch.Tensor] | None = None,
    ):
        self.cfg = cfg
        self.dataset = dataset
        self.epochs = list(epochs)
        self.states = states
        self.key_freqs = tuple(key_freqs)
        self.threshold = threshold
        self.basis: FourierBasis = fourier_basis(cfg.p)
        if forward is not None:
            self.__dict__["forward"] = forward
        if weights is not None:
            self.__dict__["weights"] = weights

    @cached_property
    def forward(self) -> LastPosition:
        return last_position(self.states, self.cfg)

    @cached_property
    def weights(self) -> dict[str, torch.Tensor]:
        """W_E (C, d_vocab, d), W_out (C, d_mlp, d), W_U (C, d, p), TransformerLens layout."""
        return {
            "W_E": self.states["embed.weight"],
            "W_out": self.states["blocks.0.mlp.out.weight"].transpose(-1, -2),
            "W_U": self.states["unembed.weight"].transpose(-1, -2),
        }

    @cached_property
    def neurons(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fractions (C, d_mlp, K+1), best_freq, best_fraction, owner) per neuron."""
        fractions = neuron_freq_fractions(self.forward.post, self.cfg.p)
        return (fractions, *assign_neurons(fractions, self.threshold))

    @cached_property
    def sums(self) -> torch.Tensor | None:
        """s(a, b) of each pair, or None when the operation has no key-frequency directions."""
        try:
            return sum_index(self.cfg.p, self.cfg.operation)
        except ValueError:
            return None

    @cached_property
    def logits64(self) -> torch.Tensor:
        return self.forward.logits.double()

    @cached_property
    def pair_losses(self) -> torch.Tensor:
        """Float64 cross-entropy of every pair: (C, p^2); its mean over pairs is
        :func:`grokinterp.measures.cross_entropy`."""
        labels = self.dataset.labels.expand(len(self.epochs), -1).unsqueeze(-1)
        return -self.logits64.log_softmax(-1).gather(-1, labels).squeeze(-1)

    @cached_property
    def pair_correct(self) -> torch.Tensor:
        """1.0 where the argmax is the label: (C, p^2) float64."""
        return (self.forward.logits.argmax(-1) == self.dataset.labels).double()

    @cached_property
    def by_sum(self) -> torch.Tensor:
        """Mean logits over the pairs of each s (C, p_s, p), float64."""
        return logits_by_sum(self.logits64, self.sums, self.cfg.p)


@dataclass(frozen=True)
class Analysis:
    """One table measure: ``compute`` maps a chunk to {key: values (C,)}."""

    name: str
    compute: Callable[[Checkpoints], dict[str, torch.Tensor]]
    uses_threshold: bool = False
    uses_key_freqs: bool = False
    needs_sums: bool = False


ANALYSES: dict[str, Analysis] = {}


def register(name: str, **flags: bool) -> Callable:
    """Add an analysis to the registry under its table measure name."""

    def wrap(fn: Callable[[Checkpoints], dict[str, torch.Tensor]]) -> Callable:
        if name in ANALYSES:
            raise ValueError(f"analysis {name!r} is already registered")
        ANALYSES[name] = Analysis(name, fn, **flags)
        return fn

    return wrap


def _split_mean(ck: Checkpoints, per_pair: torch.Tensor, split: str) -> torch.Tensor:
    idx = ck.dataset.train_idx if split == "train" else ck.dataset.test_idx
    return per_pair[:, idx].mean(-1)


@register("train_loss")
def _train_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_losses, "train")}


@register("test_loss")
def _test_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_losses, "test")}


@register("train_acc")
def _train_acc(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_correct, "train")}


@register("test_acc")
def _test_acc(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_correct, "test")}


def _by_freq(component_norms: torch.Tensor) -> dict[str, torch.Tensor]:
    grouped = freq_norms(component_norms.double())  # (C, K+1)
    return {str(k): grouped[:, k] for k in range(grouped.shape[-1])}


def _embed_components(ck: Checkpoints) -> torch.Tensor:
    return embedding_components(ck.weights["W_E"].double(), ck.basis)


def _wl_components(ck: Checkpoints) -> torch.Tensor:
    W_L = neuron_logit_map(ck.weights["W_out"].double(), ck.weights["W_U"].double())
    return wl_components(W_L, ck.basis)


@register("embed_freq_norm")
def _embed_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(_embed_components(ck))


@register("wl_freq_norm")
def _wl_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(_wl_components(ck))


@register("gini_embed")
def _gini_embed(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(_embed_components(ck))}


@register("gini_wl")
def _gini_wl(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(_wl_components(ck))}


@register("neurons_per_freq", uses_threshold=True)
def _neurons_per_freq(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.cfg.p)  # (C, K+1); column 0: unowned
    return {str(k): counts[:, k].double() for k in range(1, counts.shape[-1])}


@register("n_key_freqs", uses_threshold=True)
def _n_key_freqs(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.cfg.p)
    return {SCALAR: (counts[:, 1:] > 0).sum(-1).double()}


def _projections(ck: Checkpoints) -> torch.Tensor:
    """Per key frequency, the logits' projection as a function of s: (C, K, p, p)."""
    if "projections" not in ck.__dict__:
        ck.__dict__["projections"] = freq_projections(ck.by_sum, ck.basis, ck.key_freqs)
    return ck.__dict__["projections"]


@register("restricted_loss", uses_key_freqs=True, needs_sums=True)
def _restricted_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    # The restricted logits depend on (a, b) only through s, so take the log-softmax of
    # the (s, c) table once: the same values as restricted_logits, p times less work.
    table = _projections(ck).sum(1) + ck.logits64.mean(dim=-2, keepdim=True)  # (C, p_s, p)
    logp = table.log_softmax(dim=-1)
    data = ck.dataset

    def loss(idx: torch.Tensor | None = None) -> torch.Tensor:
        s, labels = (ck.sums, data.labels) if idx is None else (ck.sums[idx], data.labels[idx])
        return -logp[:, s, labels].mean(-1)

    return {"all": loss(), "train": loss(data.train_idx), "test": loss(data.test_idx)}


@register("excluded_loss", uses_key_freqs=True, needs_sums=True)
def _excluded_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    train = ck.dataset.train_idx
    x = ck.logits64[:, train]
    labels = ck.dataset.labels[train]
    proj = _projections(ck)[..., ck.sums[train], :]  # (C, K, N_train, p)
    out = {"all": cross_entropy(x - proj.sum(1), labels)}
    for j, k in enumerate(ck.key_freqs):
        out[str(k)] = cross_entropy(x - proj[:, j], labels)
    return out


@register("logit_explained_var", uses_key_freqs=True, needs_sums=True)
def _logit_explained_var(ck: Checkpoints) -> dict[str, torch.Tensor]:
    frac = logit_explained_variance(ck.logits64, ck.sums, ck.cfg.p, ck.key_freqs, ck.by_sum)
    out = {"all": frac.sum(-1)}
    out.update({str(k): frac[:, j] for j, k in enumerate(ck.key_freqs)})
    return out


@register("attn_to")
def _attn_to(ck: Checkpoints) -> dict[str, torch.Tensor]:
    mean = attention_to(ck.forward.pattern.double())  # (C, H, 3)
    return {
        f"h{h}:{target}": mean[:, h, t]
        for h in range(mean.shape[1])
        for t, target in enumerate(TARGETS)
    }


@register("weight_norm_sq")
def _weight_norm_sq(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return weight_norms_sq(ck.states, n_batch_dims=1)


# ------------------------------------------------------------------ computing rows


def _rows(ck: Checkpoints, names: Iterable[str], only: dict[str, set[int]] | None = None) -> list:
    """Run the named analyses on a chunk -> list of (epochs, measure, keys, values) blocks."""
    blocks = []
    for name in names:
        analysis = ANALYSES[name]
        if analysis.needs_sums and ck.sums is None:
            continue
        wanted = np.array([only is None or e in only.get(name, ()) for e in ck.epochs], dtype=bool)
        if not wanted.any():
            continue
        epochs = np.asarray(ck.epochs)[wanted]
        for key, values in analysis.compute(ck).items():
            v = values.detach().double().cpu().numpy()[wanted]
            blocks.append((epochs, name, key, v))
    return blocks


def _frame(blocks: list) -> pd.DataFrame:
    if not blocks:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(COLUMNS, (int, str, str, float), strict=True)}
        )
    return pd.DataFrame(
        {
            "epoch": np.concatenate([b[0] for b in blocks]).astype(int),
            "measure": np.concatenate([[b[1]] * len(b[0]) for b in blocks]).astype(object),
            "key": np.concatenate([[b[2]] * len(b[0]) for b in blocks]).astype(object),
            "value": np.concatenate([b[3] for b in blocks]).astype(float),
        }
    )


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    order = {name: i for i, name in enumerate(ANALYSES)}
    keys = table["key"].astype(str)
    digit = keys.str.fullmatch(r"\d+")
    helper = pd.DataFrame(
        {
            "epoch": table["epoch"].to_numpy(),
            "m": table["measure"].map(lambda m: order.get(m, len(order))).to_numpy(),
            "d": digit.to_numpy().astype(int),
            "n": np.where(digit, pd.to_numeric(keys.where(digit, "0")), 0),
            "k": keys.where(~digit, "").to_numpy(),
            "measure": table["measure"].to_numpy(),
        }
    )
    idx = helper.sort_values(["epoch", "m", "measure", "d", "n", "k"], kind="stable").index
    return table.loc[idx].reset_index(drop=True)


def measure_batched(
    run: Run,
    epochs: Sequence[int],
    key_freqs: Sequence[int],
    threshold: float = 0.85,
    measures: Sequence[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    only: dict[str, set[int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Rows of the named measures at ``epochs`` of a run, ``chunk_size`` checkpoints at a time.

    ``only`` restricts each measure to some epochs ({measure: epochs}); ``progress`` is
    called with the number of checkpoints done after each chunk.
    """
    names = list(ANALYSES) if measures is None else list(measures)
    blocks = []
    for start in range(0, len(epochs), chunk_size):
        chunk = list(epochs[start : start + chunk_size])
        states = stack_states([run.state_dict_at(e) for e in chunk])
        ck = Checkpoints(run.config, run.dataset, chunk, states, key_freqs, threshold)
        blocks += _rows(ck, names, only)
        del ck
        if progress is not None:
            progress(len(chunk))
    return _sorted(_frame(blocks))


def measure_hooked(
    model: TransformerBridge,
    cfg: RunConfig,
    dataset: Dataset,
    epoch: int,
    key_freqs: Sequence[int],
    threshold: float = 0.85,
    measures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The same rows for one model, from TransformerLens: ``run_with_cache`` activations and
    the ``W_E``, ``W_out``, ``W_U`` properties (the straightforward reference path)."""
    names = list(ANALYSES) if measures is None else list(measures)
    states = {k: v.detach()[None] for k, v in model.state_dict().items()}
    weights = {"W_E": model.W_E[None], "W_out": model.W_out[0][None], "W_U": model.W_U[None]}
    weights = {k: v.detach() for k, v in weights.items()}
    ck = Checkpoints(
        cfg,
        dataset,
        [epoch],
        states,
        key_freqs,
        threshold,
        forward=hooked_last_position(model, cfg.p),
        weights=weights,
    )
    return _sorted(_frame(_rows(ck, names)))


def _final_neurons(run: Run, epoch: int, threshold: float) -> Checkpoints:
    states = stack_states([run.state_dict_at(epoch)])
    return Checkpoints(run.config, run.dataset, [epoch], states, (), threshold)


def checkpoint_detail(
    run: Run | str | Path, epoch: int | None = None, threshold: float = 0.85
) -> dict:
    """Single-checkpoint arrays for figures (default: the latest checkpoint).

    Returns numpy arrays: ``attention_to_a`` (n_heads, p, p) [h, a, b]; ``fractions``
    (d_mlp, (p+1)/2) each neuron's variance fraction per frequency; ``best_freq``,
    ``frac_explained`` (d_mlp,) (NaN for dead neurons); ``embed_components`` and
    ``wl_components`` (p,) in basis order, with ``basis_labels``; and ``key_freqs``.
    """
    run = run if isinstance(run, Run) else load_run(run)
    epoch = run.epochs[-1] if epoch is None else epoch
    ck = _final_neurons(run, epoch, threshold)
    fractions, best, best_frac, owner = ck.neurons
    return {
        "epoch": epoch,
        "attention_to_a": attention_to_a_map(ck.forward.pattern, run.config.p)[0].numpy(),
        "fractions": fractions[0].numpy(),
        "best_freq": best[0].numpy(),
        "frac_explained": best_frac[0].numpy(),
        "embed_components": _embed_components(ck)[0].numpy(),
        "wl_components": _wl_components(ck)[0].numpy(),
        "basis_labels": list(ck.basis.labels),
        "key_freqs": key_frequencies(neurons_per_freq(owner[0], run.config.p)),
        "threshold": threshold,
    }


# ------------------------------------------------------------------ the table and summary


def read_table(path: str | Path) -> pd.DataFrame:
    """Read an analysis.csv (a file or a run directory), keeping the ``""`` keys as strings."""
    path = Path(path)
    if path.is_dir():
        path = path / files.ANALYSIS_TABLE
    if not path.is_file():
        raise RunFileError(f"{path}: file not found; run 'grokinterp analyze' first")
    try:
        table = pd.read_csv(
            path,
            dtype={"epoch": int, "measure": str, "key": str, "value": float},
            keep_default_na=False,
            na_values={"value": ["", "nan", "NaN"]},
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise RunFileError(f"{path}: not a grokinterp analysis table: {err}") from None
    if tuple(table.columns) != COLUMNS:
        raise RunFileError(f"{path}: columns {list(table.columns)}, expected {list(COLUMNS)}")
    return table


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value


def _curve(table: pd.DataFrame, measure: str, key: str = SCALAR):
    rows = table[(table["measure"] == measure) & (table["key"] == key)]
    if rows.empty:
        return None
    return rows["epoch"].to_numpy(), rows["value"].to_numpy()


def _phase_curves(run: Run, table: pd.DataFrame) -> tuple[dict, str]:
    curves = {}
    for name, measure, key in [
        ("train_acc", "train_acc", SCALAR),
        ("test_acc", "test_acc", SCALAR),
        ("test_loss", "test_loss", SCALAR),
        ("excluded_loss", "excluded_loss", "all"),
        ("restricted_loss", "restricted_loss", "all"),
        ("gini_embed", "gini_embed", SCALAR),
    ]:
        curve = _curve(table, measure, key)
        if curve is not None:
            curves[name] = curve
    source = "analysis table (checkpoints)"
    try:  # accuracy crossings from the logged metrics: every eval epoch, not only checkpoints
        metrics = run.metrics
        if len(metrics["epoch"]) and np.isfinite(metrics["train_acc"]).any():
            for name in ("train_acc", "test_acc"):
                keep = np.isfinite(metrics[name])
                curves[name] = (metrics["epoch"][keep], metrics[name][keep])
            source = f"{files.METRICS} (eval epochs)"
    except RunFileError as err:
        log.info("no usable metrics for the accuracy crossings (%s); using checkpoints", err)
    return curves, source


def _summary(
    run: Run, table: pd.DataFrame, final: Checkpoints, settings: dict, acc_threshold: float
) -> dict:
    cfg = run.config
    epochs = sorted(table["epoch"].unique().tolist())
    curves, acc_source = _phase_curves(run, table)
    phases = detect_phases(curves, acc_threshold=acc_threshold)
    phases_out = {name: phases[name].to_dict() for name in PHASE_NAMES}
    for name in ("T_mem", "T_grok"):
        phases_out[name]["inputs"]["source"] = acc_source
    counts = {}
    for k in range(1, (cfg.p + 1) // 2):
        curve = _curve(table, "neurons_per_freq", str(k))
        if curve is not None:
            counts[k] = curve
    births = {}
    if counts:
        e0 = counts[next(iter(counts))][0]
        births = key_freq_births(e0, {k: c[1] for k, c in counts.items()})
    key_freqs = settings["key_freqs_used"]
    last = epochs[-1] if epochs else None
    at_last = table[table["epoch"] == last]

    def value(measure: str, key: str = SCALAR) -> float | None:
        v = at_last[(at_last["measure"] == measure) & (at_last["key"] == key)]["value"]
        return float(v.iloc[0]) if len(v) else None

    fractions, best, best_frac, owner = final.neurons
    return _jsonable(
        {
            "run": str(run.path),
            "run_name": cfg.run_name,
            "p": cfg.p,
            "operation": cfg.operation,
            "n_checkpoints": len(epochs),
            "first_epoch": epochs[0] if epochs else None,
            "final_epoch": last,
            "run_complete": run.is_complete,
            "key_frequencies": list(key_freqs),
            "key_frequencies_source": settings["key_freqs_source"],
            "key_freq_births": {str(k): births[k] for k in key_freqs if k in births},
            "freq_births": {str(k): v for k, v in births.items() if v["first"] is not None},
            "phases": phases_out,
            "final": {
                "epoch": last,
                "train_loss": value("train_loss"),
                "test_loss": value("test_loss"),
                "train_acc": value("train_acc"),
                "test_acc": value("test_acc"),
                "restricted_loss": value("restricted_loss", "all"),
                "restricted_loss_test": value("restricted_loss", "test"),
                "excluded_loss": value("excluded_loss", "all"),
                "logit_explained_var": value("logit_explained_var", "all"),
                "gini_embed": value("gini_embed"),
                "gini_wl": value("gini_wl"),
                "weight_norm_sq": value("weight_norm_sq", "total"),
            },
            "neurons": {
                "epoch": final.epochs[0],
                "threshold": settings["threshold"],
                "best_freq": best[0].tolist(),
                "frac_explained": best_frac[0].tolist(),
                "owner": owner[0].tolist(),
                "per_freq": {
                    str(k): int(c)
                    for k, c in enumerate(neurons_per_freq(owner[0], cfg.p).tolist())
                    if k and c
                },
            },
            "settings": settings,
            "table": files.ANALYSIS_TABLE,
            "n_rows": len(table),
        }
    )


def _previous(run: Run) -> tuple[pd.DataFrame | None, dict]:
    table_path, summary_path = run.path / files.ANALYSIS_TABLE, run.path / files.SUMMARY
    if not table_path.is_file() or not summary_path.is_file():
        return None, {}
    try:
        return read_table(table_path), read_json(summary_path).get("settings", {})
    except RunFileError as err:
        log.warning("ignoring the previous analysis (%s); recomputing everything", err)
        return None, {}


def _progress_callback(progress, total: int):
    if callable(progress):
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            progress(done[0], total)

        return step, None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="ckpt", desc="analyze")
        return bar.update, bar
    return None, None


def _analyze(
    run: Run,
    measures: Sequence[str] | None,
    threshold: float,
    acc_threshold: float,
    key_freqs: Sequence[int] | None,
    progress,
    chunk_size: int,
) -> tuple[pd.DataFrame, dict]:
    cfg = run.config
    epochs = run.epochs
    if not epochs:
        raise RunFileError(f"{run.path}: no complete checkpoints to analyse yet")
    names = list(ANALYSES) if measures is None else list(dict.fromkeys(measures))
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise OptionError(f"unknown measure(s) {unknown}; registered: {list(ANALYSES)}")
    if not 0 < threshold <= 1:
        raise OptionError(f"threshold must lie in (0, 1], got {threshold}")
    if not 0 < acc_threshold <= 1:
        raise OptionError(f"acc_threshold must lie in (0, 1], got {acc_threshold}")
    n_freqs = (cfg.p - 1) // 2
    if key_freqs is not None:
        bad = [k for k in key_freqs if not 1 <= int(k) <= n_freqs]
        if bad:
            raise OptionError(f"key frequencies {bad} outside 1..{n_freqs} (p={cfg.p})")

    final = _final_neurons(run, epochs[-1], threshold)
    measured = key_frequencies(neurons_per_freq(final.neurons[3][0], cfg.p))
    used = sorted({int(k) for k in key_freqs}) if key_freqs is not None else measured
    settings = {
        "analysis_version": ANALYSIS_VERSION,
        "config": cfg.to_dict(),
        "threshold": threshold,
        "acc_threshold": acc_threshold,
        "key_freqs_given": None if key_freqs is None else used,
        "key_freqs_used": used,
        "key_freqs_source": "given" if key_freqs is not None else f"epoch {epochs[-1]}",
        "key_freqs_final_checkpoint": measured,
        "measures": names,
    }
    log.info(
        "%s: %d checkpoints, key frequencies %s (%s)",
        run.path,
        len(epochs),
        used,
        settings["key_freqs_source"],
    )

    old, previous = _previous(run)
    kept = []
    if (
        old is not None
        and previous.get("analysis_version") == ANALYSIS_VERSION
        and previous.get("config") == settings["config"]
    ):
        same_threshold = previous.get("threshold") == threshold
        same_keys = previous.get("key_freqs_used") == used
        valid = old["epoch"].isin(epochs)
        for name in old["measure"].unique():
            a = ANALYSES.get(name)
            stale = (
                a is None
                or (a.uses_threshold and not same_threshold)
                or (a.uses_key_freqs and not same_keys)
            )
            if stale:
                valid &= old["measure"] != name
                log.info("recomputing %s at every checkpoint: its settings changed", name)
        kept = [old[valid]]
    elif old is not None:
        log.info("previous analysis has other settings; recomputing everything")

    have = {}
    for part in kept:
        for name, group in part.groupby("measure"):
            have[name] = set(group["epoch"].tolist())
    todo = {name: set(epochs) - have.get(name, set()) for name in names}
    todo_epochs = sorted(set().union(*todo.values()))
    log.info("%d of %d checkpoints need work", len(todo_epochs), len(epochs))

    step, bar = _progress_callback(progress, len(todo_epochs))
    try:
        new = measure_batched(run, todo_epochs, used, threshold, names, chunk_size, todo, step)
    finally:
        if bar is not None:
            bar.close()
    table = _sorted(pd.concat([*kept, new], ignore_index=True)) if kept else new
    summary = _summary(run, table, final, settings, acc_threshold)
    atomic_write_text(run.path / files.ANALYSIS_TABLE, table.to_csv(index=False))
    write_json(run.path / files.SUMMARY, summary)
    return table, summary


def analyze(
    run_or_path: Run | str | Path,
    measures: Sequence[str] | None = None,
    threshold: float = 0.85,
    acc_threshold: float = 0.99,
    key_freqs: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> pd.DataFrame:
    """Analyse every complete checkpoint of a run; write analysis.csv and summary.json.

    measures: table measure names (default: all of :data:`ANALYSES`).  threshold: neuron
    cluster threshold.  acc_threshold: for T_mem / T_grok.  key_freqs: override the final
    checkpoint's key frequencies.  progress: True for a tqdm bar, or a callback
    ``(done, total)``.  Returns the whole tidy table.  See the module docstring for the
    incremental behaviour.
    """
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    table, _ = _analyze(run, measures, threshold, acc_threshold, key_freqs, progress, chunk_size)
    return table


def analyze_path(path: str | Path, **opts) -> dict[str, dict]:
    """Analyse a run directory, or every run directory directly inside a folder.

    Returns {run_dir: summary}; ``opts`` are :func:`analyze`'s keyword arguments.
    """
    out = {}
    for run_dir in find_runs(path):
        run = load_run(run_dir)
        if not run.epochs:
            log.warning("%s: no complete checkpoints yet; skipped", run_dir)
            continue
        known = ("measures", "threshold", "acc_threshold", "key_freqs", "progress", "chunk_size")
        extra = sorted(set(opts) - set(known))
        if extra:
            raise TypeError(f"analyze_path got unknown option(s) {extra}; allowed: {known}")
        args = {
            "measures": None,
            "threshold": 0.85,
            "acc_threshold": 0.99,
            "key_freqs": None,
            "progress": False,
            "chunk_size": DEFAULT_CHUNK,
            **opts,
        }
        _, summary = _analyze(run, **args)
        out[str(run_dir)] = summary
    return out


def _fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def format_summary(summary: dict) -> str:
    """A short human-readable table of a run summary (for the CLI)."""
    final = summary.get("final", {})
    phases = summary.get("phases", {})
    lines = [
        f"run {summary.get('run_name', summary.get('run', '?'))}: p={summary.get('p')}, "
        f"{summary.get('n_checkpoints')} checkpoints to epoch {summary.get('final_epoch')}"
        + ("" if summary.get("run_complete", True) else " (still training)"),
        f"  key frequencies   {summary.get('key_frequencies')} "
        f"({summary.get('key_frequencies_source')})",
    ]
    births = summary.get("key_freq_births", {})
    if births:
        lines.append(
            "  born at           "
            + ", ".join(f"k={k}: {_fmt(v.get('first'))}" for k, v in births.items())
        )
    for name in PHASE_NAMES:
        b = phases.get(name)
        if b is None:
            continue
        shown = _fmt(b.get("value")) if name == "grokking_ratio" else _fmt(b.get("epoch"))
        lines.append(f"  {name:<22}{shown:>10}   {b.get('rule', '')[:60]}")
    for key in (
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "restricted_loss",
        "excluded_loss",
        "gini_embed",
        "weight_norm_sq",
    ):
        lines.append(f"  final {key:<16}{_fmt(final.get(key)):>10}")
    return "\n".join(lines)
