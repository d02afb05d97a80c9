"""The run summary (``summary.json``): phase boundaries, key frequencies and their births,
final values and the final checkpoint's neurons; and its short text form for the CLI."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from grokinterp import files
from grokinterp.analysis.checkpoints import Checkpoints
from grokinterp.analysis.registry import SCALAR
from grokinterp.measures import neurons_per_freq
from grokinterp.measures.pizza import CLASS_RULE, classify_circuit
from grokinterp.phases import (
    PHASE_NAMES,
    detect_phases,
    fit_weight_decay,
    key_freq_births,
    predicted_sq_norm_rate,
)
from grokinterp.run import Run
from grokinterp.storage import RunFileError

log = logging.getLogger(__name__)


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


# (phase, the boundary it starts at, the boundary it ends at; None: the last checkpoint)
_DECAY_PHASES = (
    ("circuit formation", "memorisation_end", "circuit_formation_end"),
    ("cleanup", "circuit_formation_end", "cleanup_end"),
    ("after cleanup", "cleanup_end", None),
)


def weight_norm_fits(
    epochs: np.ndarray, values: np.ndarray, boundaries: dict, lr: float, weight_decay: float
) -> dict:
    """Exponential fits of the sum of squared weights, one per phase after memorisation.

    Phases: memorisation end -> circuit formation end -> cleanup end -> last epoch; a phase
    whose boundaries are unknown, or with fewer than 2 checkpoints, is skipped.  Each fit
    (:func:`grokinterp.phases.fit_weight_decay` on the checkpoints in [start, end]) gives
    ``rate`` per epoch and ``amplitude``, the fitted value at ``start``.  ``predicted_rate``
    is pure decoupled weight decay's 2 lr wd (:func:`grokinterp.phases.predicted_sq_norm_rate`).

    >>> t = np.arange(0, 400, 10.0)
    >>> out = weight_norm_fits(t, 5 * np.exp(-1e-3 * t), {"memorisation_end": 100,
    ...     "circuit_formation_end": 200, "cleanup_end": 300}, lr=1e-3, weight_decay=1.0)
    >>> [f["phase"] for f in out["fits"]]
    ['circuit formation', 'cleanup', 'after cleanup']
    >>> [(f["start"], f["end"], round(f["rate"], 6)) for f in out["fits"]]
    [(100, 200, 0.001), (200, 300, 0.001), (300, 390, 0.001)]
    """
    epochs, values = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    last = int(epochs.max()) if len(epochs) else None
    fits = []
    for phase, start_key, end_key in _DECAY_PHASES:
        start = boundaries.get(start_key)
        end = last if end_key is None else boundaries.get(end_key)
        if start is None or end is None or end <= start:
            continue
        inside = (epochs >= start) & (epochs <= end)
        try:
            fit = fit_weight_decay(epochs[inside], values[inside], int(start))
        except ValueError:  # fewer than 2 usable checkpoints in this phase
            continue
        fits.append(
            {
                "phase": phase,
                "start": int(start),
                "end": int(end),
                "n_checkpoints": int(inside.sum()),
                "rate": fit.rate,
                "amplitude": fit.amplitude,
            }
        )
    return {
        "rule": "least-squares fit of log(sum of squared weights) against epoch, per phase",
        "predicted_rate": predicted_sq_norm_rate(lr, weight_decay),
        "fits": fits,
    }


def mechanism_summary(value) -> dict:
    """The last checkpoint's mechanism measures and the run's clock/pizza class
    (:func:`grokinterp.measures.pizza.classify_circuit`); ``value(measure, key)`` reads the
    last checkpoint's row (None when absent)."""
    grad_sym, dist_irr = value("gradient_symmetricity"), value("distance_irrelevance")
    known = grad_sym is not None and dist_irr is not None
    return {
        "pizza_class": classify_circuit(grad_sym, dist_irr, value("test_acc")) if known else None,
        "rule": CLASS_RULE,
        "gradient_symmetricity": grad_sym,
        "distance_irrelevance": dist_irr,
        "softmax_collapse": value("softmax_collapse"),
        "logit_scale": value("logit_scale"),
        "neuron_ipr": value("neuron_ipr"),
        "phase_alignment": value("phase_alignment"),
        "llc": value("llc"),
        "llc_std": value("llc", "std"),
    }


def build_summary(
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
    basis = final.task_basis
    for k in range(1, 0 if basis is None else basis.n_freqs + 1):
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

    norms = _curve(table, "weight_norm_sq", "total")
    boundaries = {name: phases_out[name].get("epoch") for name in PHASE_NAMES}
    fits = None
    if norms is not None:
        fits = weight_norm_fits(*norms, boundaries, cfg.lr, cfg.weight_decay)
    neurons = None  # no Fourier basis: no neuron clusters
    if final.neurons is not None:
        fractions, best, best_frac, owner = final.neurons
        neurons = {
            "epoch": final.epochs[0],
            "threshold": settings["threshold"],
            "best_freq": best[0].tolist(),
            "frac_explained": best_frac[0].tolist(),
            "owner": owner[0].tolist(),
            "per_freq": {
                str(k): int(c)
                for k, c in enumerate(neurons_per_freq(owner[0], basis.n).tolist())
                if k and c
            },
        }
    return _jsonable(
        {
            "run": str(run.path),
            "run_name": cfg.run_name,
            "p": cfg.p,
            "operation": cfg.operation,
            "basis": settings.get("basis"),
            "skipped_measures": settings.get("skipped_measures", {}),
            "n_checkpoints": len(epochs),
            "first_epoch": epochs[0] if epochs else None,
            "final_epoch": last,
            "run_complete": run.is_complete,
            "key_frequencies": list(key_freqs),
            "key_frequencies_source": settings["key_freqs_source"],
            # Read at the last checkpoint: the run's final set only once cleanup is seen.
            "cleanup_seen": phases["cleanup_end"].epoch is not None,
            "not_seen": {
                name: phases[name].inputs["not_seen"]
                for name in PHASE_NAMES
                if phases[name].inputs.get("not_seen")
            },
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
                "sharpness": value("sharpness"),
            },
            "weight_norm_fits": fits,
            "mechanism": mechanism_summary(value),
            "neurons": neurons,
            "settings": settings,
            "table": files.ANALYSIS_TABLE,
            "n_rows": len(table),
        }
    )


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
    what = f"p={summary.get('p')}"
    if "family" in summary:  # a toy run
        what = f"{summary['family']} on {summary.get('dataset')}"
    lines = [
        f"run {summary.get('run_name', summary.get('run', '?'))}: {what}, "
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
        if shown == "-" and (b.get("inputs") or {}).get("not_seen"):
            shown = "not seen"
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
    bound = summary.get("bound")  # a toy run (grokinterp.models.analysis)
    if bound is not None:
        shown = _fmt(bound.get("value")) if bound.get("value") is not None else "-"
        why = bound.get("rule") or bound.get("reason", "")
        lines.append(f"  {'ridge bound':<22}{shown:>10}   {why[:60]}")
        lines.append(f"  {'t_generalise':<22}{_fmt(summary.get('t_generalise')):>10}")
    return "\n".join(lines)
