"""The table of runs: one row per run of a sweep, read from each run's analysis.

Columns: ``name``, ``status``, ``error``, every :class:`RunConfig` field, then from the
run's summary.json and analysis.csv (NaN where a run has none, e.g. failed or pending):

==========================  ==============================================================
T_mem, T_grok               first eval epoch with train / test accuracy >= 0.99 (T_grok
                            NaN when the run never grokked: censored)
grokked                     T_grok is known
end_epoch                   the run's last checkpoint (the epochs cap for censored runs)
grokking_ratio              T_grok / T_mem
memorisation_end,           the phase boundaries of :func:`grokinterp.phases.detect_phases`;
circuit_formation_end,      NaN when the run did not get far enough to see one
cleanup_end
cleanup_seen                the run saw its cleanup end (so the values read there, and the
                            key frequencies, are the run's own, not where it stopped)
not_seen                    why each blank boundary was not seen ("boundary: reason | ...")
key_freqs, n_key_freqs      key frequencies (as "14,35,41") and their count, at the last
                            checkpoint; blank / NaN when cleanup was not seen
wnorm_T_mem,                sum of squared weights at T_mem, at the end of memorisation,
wnorm_memorisation_end,     at T_grok, at the end of cleanup and at the end, linearly
wnorm_T_grok,               interpolated between the checkpoints either side (the
wnorm_cleanup_end,          boundaries are eval epochs, the norm is measured on
wnorm_end                   checkpoints); NaN where the boundary is (e.g. T_grok of a
                            censored run)
final_train_loss, ...       final train/test loss and accuracy (the last checkpoint)
bound, t_generalise,        toy runs (docs/toys.md): the ridge paper's lower bound on the
T_grok_0.9                  time to generalise (linear ridge GD runs), the measured time
                            (T_grok: first epoch with test loss < c), and T_grok at
                            test accuracy 0.9 (classification sets)
wall_s, disk_bytes          the run's wall time (last attempt) and its folder's size
problem                     why a run's files could not be read (else empty)
run_class                   Liu et al.'s class: comprehension, grokking, memorisation or
                            confusion (grokinterp.run_classes, docs/run-classes.md); empty
                            for an unfinished or failed run
==========================  ==============================================================

A damaged run directory is named in a warning and in ``problem``; the others are still
tabled.
"""

from __future__ import annotations

import logging
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grokinterp import files
from grokinterp.analysis import read_table
from grokinterp.config import ConfigError, RunConfig
from grokinterp.models.config import ToyConfig, config_from_dict, is_toy
from grokinterp.run_classes import run_classes
from grokinterp.storage import RunFileError, atomic_write_text, read_json
from grokinterp.sweep.manifest import FINISHED, RUNS_TABLE, read_manifest, run_dir

__all__ = ["blank_unseen", "load_sweep", "write_runs_table"]

log = logging.getLogger(__name__)

BOUNDARIES = ("T_mem", "T_grok", "memorisation_end", "circuit_formation_end", "cleanup_end")
NORM_AT = ("T_mem", "memorisation_end", "T_grok", "cleanup_end")
FINAL = ("train_loss", "test_loss", "train_acc", "test_acc")
TOY_COLUMNS = ("bound", "t_generalise", "T_grok_0.9")  # NaN for transformer runs
# The last checkpoint's mechanism measures (summary.json "mechanism"; docs/measures.md),
# as columns final_<name>, beside the run's class pizza_class (also read there)
MECHANISM = (
    "gradient_symmetricity",
    "distance_irrelevance",
    "softmax_collapse",
    "logit_scale",
    "neuron_ipr",
    "phase_alignment",
)


def _epoch(entry: Any) -> float:
    if isinstance(entry, dict):
        entry = entry.get("epoch")
    return float(entry) if entry is not None else math.nan


def _norm_curve(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = table[(table["measure"] == "weight_norm_sq") & (table["key"] == "total")]
    rows = rows.sort_values("epoch")
    return rows["epoch"].to_numpy(dtype=float), rows["value"].to_numpy(dtype=float)


def _at(curve: tuple[np.ndarray, np.ndarray], epoch: float) -> float:
    epochs, values = curve
    if not len(epochs) or math.isnan(epoch) or not epochs[0] <= epoch <= epochs[-1]:
        return math.nan
    return float(np.interp(epoch, epochs, values))


def _analysis_columns(path: Path) -> dict[str, Any]:
    summary = read_json(path / files.SUMMARY)
    table = read_table(path / files.ANALYSIS_TABLE)
    phases = summary.get("phases", {})
    final = summary.get("final", {})
    row: dict[str, Any] = {b: _epoch(phases.get(b)) for b in BOUNDARIES}
    row["grokked"] = not math.isnan(row["T_grok"])
    row["end_epoch"] = _epoch(summary.get("final_epoch"))
    ratio = (phases.get("grokking_ratio") or {}).get("value")
    row["grokking_ratio"] = math.nan if ratio is None else float(ratio)
    seen = summary.get("cleanup_seen")
    not_seen = dict(summary.get("not_seen") or {})
    if seen is None:  # a summary.json written before the rule could tell
        seen = False
        not_seen.setdefault(
            "cleanup_end",
            "summary.json predates the seen/not-seen rule; run grokinterp analyze again",
        )
        row["cleanup_end"] = math.nan
    row["cleanup_seen"] = bool(seen)
    row["not_seen"] = " | ".join(f"{k}: {v}" for k, v in not_seen.items())
    keys = summary.get("key_frequencies") or []
    row["key_freqs"] = ",".join(str(k) for k in keys) if seen else ""
    row["n_key_freqs"] = len(keys) if seen else math.nan
    curve = _norm_curve(table)
    for name in NORM_AT:
        row[f"wnorm_{name}"] = _at(curve, row[name])
    row["wnorm_end"] = float(curve[1][-1]) if len(curve[1]) else math.nan
    for name in FINAL:
        value = final.get(name)
        row[f"final_{name}"] = math.nan if value is None else float(value)
    bound = summary.get("bound") or {}  # toy runs: the ridge bound beside T_grok
    row["bound"] = math.nan if bound.get("value") is None else float(bound["value"])
    row["t_generalise"] = _epoch(summary.get("t_generalise"))
    row["T_grok_0.9"] = _epoch(summary.get("T_grok_0.9"))
    if "family" not in summary:  # a transformer run: no toy columns
        for column in TOY_COLUMNS:
            del row[column]
    mechanism = summary.get("mechanism") or {}  # absent in summaries written before it
    # the class is read at the last checkpoint, so only a run that saw its cleanup end has
    # one that its stop cannot move (docs/phases.md); otherwise blank, with the reason
    row["pizza_class"] = (mechanism.get("pizza_class") or "") if seen else ""
    if mechanism.get("pizza_class") and not seen:
        row["not_seen"] = " | ".join(
            filter(None, [row["not_seen"], "pizza_class: read before cleanup was seen to end"])
        )
    for name in MECHANISM:
        value = mechanism.get(name)
        row[f"final_{name}"] = math.nan if value is None else float(value)
    return row


def _full_config(config: dict[str, Any]) -> dict[str, Any]:
    """A manifest's run config with every field: one written before a field existed reads
    it at its default, which trains as those runs did (docs/run-format.md), so the tables
    of an old and a new sweep of the same spec agree."""
    try:
        return config_from_dict(config).to_dict()
    except ConfigError:  # not a config this version can read: show what is there
        return config


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """The table of runs of a sweep folder, one row per run in the manifest's order."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    configs = [entry["config"] for entry in manifest["runs"].values()]
    toys = [is_toy(c) for c in configs]
    classes = [cls for cls, used in ((RunConfig, not all(toys)), (ToyConfig, any(toys))) if used]
    config_fields = list(  # name: the run's; a sweep of toys has ToyConfig's fields too
        dict.fromkeys(f.name for cls in classes for f in fields(cls) if f.name != "name")
    )
    rows = []
    for name, entry in manifest["runs"].items():
        row: dict[str, Any] = {"name": name, "status": entry["status"], "error": entry["error"]}
        config = _full_config(entry["config"])
        row.update({f: config.get(f) for f in config_fields})
        row["grokked"] = False
        row["cleanup_seen"] = False
        row["not_seen"] = f"cleanup_end: the run is {entry['status']}"
        row["problem"] = ""
        if entry["status"] in FINISHED:
            try:
                row.update(_analysis_columns(run_dir(sweep_dir, name)))
            except (RunFileError, KeyError, TypeError, ValueError) as err:
                row["problem"] = f"{type(err).__name__}: {err}"
                log.warning("run %s: analysis unreadable (%s); tabled without it", name, err)
        row["wall_s"] = entry.get("wall_s", math.nan)
        row["disk_bytes"] = entry.get("disk_bytes", math.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    derived = (
        list(BOUNDARIES)
        + ["cleanup_seen", "not_seen", "end_epoch", "grokking_ratio", "key_freqs", "n_key_freqs"]
        + [f"wnorm_{n}" for n in (*NORM_AT, "end")]
        + [f"final_{n}" for n in FINAL]
        + (list(TOY_COLUMNS) if any(toys) else [])
        + ["pizza_class", *(f"final_{n}" for n in MECHANISM)]
    )
    text = ("key_freqs", "not_seen", "pizza_class")
    for column in derived:  # present even when no run has been analysed
        if column not in frame:
            frame[column] = "" if column in text else math.nan
    order = ["name", "status", "grokked", *derived, *config_fields, "wall_s", "disk_bytes"]
    order += ["error", "problem"]
    frame = frame[order]
    for column in ("wall_s", "disk_bytes", *derived):
        if column not in (*text, "cleanup_seen"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["grokked"] = frame["grokked"].astype(bool)
    frame["cleanup_seen"] = frame["cleanup_seen"].fillna(False).astype(bool)
    frame["run_class"] = run_classes(frame)  # Liu et al.'s class (grokinterp.run_classes)
    return frame


def write_runs_table(sweep_dir: str | Path) -> tuple[Path, pd.DataFrame]:
    """Write ``runs.csv`` next to the manifest (atomically); returns its path and table."""
    sweep_dir = Path(sweep_dir)
    frame = load_sweep(sweep_dir)
    path = sweep_dir / RUNS_TABLE
    atomic_write_text(path, frame.to_csv(index=False))
    return path, frame


def blank_unseen(frame: pd.DataFrame) -> pd.DataFrame:
    """A runs.csv written before the seen/not-seen rule, with what its runs did not see
    blanked and the reason in ``not_seen`` (for tables whose runs are gone; a sweep folder
    is re-tabled with :func:`load_sweep` instead).

    The rule, from the table alone (docs/runs-csv.md): each run's checkpoints are its
    schedule (``checkpoints``, ``epochs``) up to ``end_epoch``, plus ``end_epoch``; the
    last epoch with a full smoothing window short of the end is 3 checkpoints before it; the
    horizon is settle = max(0.5 (T_grok - T_mem), 500) (:func:`grokinterp.phases.settle_epochs`).
    circuit_formation_end is seen if T_grok + settle is at or before that epoch, and
    cleanup_end if, in addition, cleanup_end + settle is.  What is not seen is blanked:
    the boundary, ``wnorm_cleanup_end`` and, without cleanup, ``key_freqs`` and
    ``n_key_freqs``.  A value kept is the old rule's, which read the last checkpoint; the
    current rule may put it a little earlier.
    """
    from grokinterp.phases import settle_epochs
    from grokinterp.schedule import checkpoint_epochs

    out = frame.copy()
    if "key_freqs" in out:  # read back from CSV, an all-empty column is float
        out["key_freqs"] = out["key_freqs"].astype(object).where(out["key_freqs"].notna(), "")
    seen_col, why_col = [], []
    for i, row in out.iterrows():
        t_grok, t_mem, end = row.get("T_grok"), row.get("T_mem"), row.get("end_epoch")
        reasons = {}
        if pd.isna(t_grok) or pd.isna(end):
            for name in ("memorisation_end", "circuit_formation_end", "cleanup_end"):
                reasons[name] = "the run has not grokked (no T_grok)"
        else:
            t_mem = None if pd.isna(t_mem) else int(t_mem)
            settle = settle_epochs(t_mem, int(t_grok))
            ckpts = checkpoint_epochs(str(row["checkpoints"]), int(row["epochs"]))
            ckpts = sorted({e for e in ckpts if e <= end} | {int(end)})
            settled = ckpts[-4] if len(ckpts) >= 4 else -1
            end_note = (
                f"the run ended at {int(end)} (last epoch with a full smoothing window {settled})"
            )
            if t_grok + settle > settled:
                reasons["circuit_formation_end"] = (
                    f"the test loss's fall is measured to T_grok + settle = "
                    f"{int(t_grok + settle)}; {end_note}"
                )
                reasons["cleanup_end"] = "no circuit_formation_end"
            elif pd.isna(row.get("cleanup_end")) or row["cleanup_end"] + settle > settled:
                reasons["cleanup_end"] = (
                    f"the rule needs settle = {settle} epochs after the end of cleanup; {end_note}"
                )
        for name in reasons:
            out.loc[i, name] = math.nan
            if f"wnorm_{name}" in out:
                out.loc[i, f"wnorm_{name}"] = math.nan
        if "cleanup_end" in reasons:
            for column in ("n_key_freqs",):
                if column in out:
                    out.loc[i, column] = math.nan
            if "key_freqs" in out:
                out.loc[i, "key_freqs"] = ""
        seen_col.append("cleanup_end" not in reasons)
        why_col.append(" | ".join(f"{k}: {v}" for k, v in reasons.items()))
    at = list(out.columns).index("cleanup_end") + 1 if "cleanup_end" in out else len(out.columns)
    for name, values in (("not_seen", why_col), ("cleanup_seen", seen_col)):
        if name in out:
            out[name] = values
        else:
            out.insert(at, name, values)
    return out
