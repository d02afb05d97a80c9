"""``analyze``: every registered measure on every complete checkpoint of a run, reusing the
stored rows the cache allows, then the table and the summary written atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from grokinterp import files
from grokinterp.analysis.batch import final_checkpoint, measure_batched
from grokinterp.analysis.checkpoints import DEFAULT_CHUNK
from grokinterp.analysis.registry import ANALYSES, default_measures, skip_reason
from grokinterp.analysis.summary import build_summary
from grokinterp.analysis.table import (
    ANALYSIS_VERSION,
    previous_analysis,
    reusable_rows,
    sorted_rows,
)
from grokinterp.config import OptionError, RunConfig
from grokinterp.measures import key_frequencies, neurons_per_freq
from grokinterp.run import Run, find_runs, load_run
from grokinterp.storage import RunFileError, atomic_write_text, write_json
from grokinterp.tasks import get_task

log = logging.getLogger(__name__)


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
    sharpness_every: int = 200,
) -> tuple[pd.DataFrame, dict]:
    cfg = run.config
    epochs = run.epochs
    if not epochs:
        raise RunFileError(f"{run.path}: no complete checkpoints to analyse yet")
    if not isinstance(cfg, RunConfig):  # a toy model family: its own measures
        from grokinterp.models.analysis import analyze_toy

        return analyze_toy(run, acc_threshold)
    names = _measure_names(measures)
    if isinstance(sharpness_every, bool) or not isinstance(sharpness_every, int):
        raise OptionError(f"sharpness_every must be an integer >= 1, got {sharpness_every!r}")
    if sharpness_every < 1:
        raise OptionError(
            f"sharpness_every must be >= 1 (every Nth checkpoint), got {sharpness_every}"
        )
    if not 0 < threshold <= 1:
        raise OptionError(f"threshold must lie in (0, 1], got {threshold}")
    if not 0 < acc_threshold <= 1:
        raise OptionError(f"acc_threshold must lie in (0, 1], got {acc_threshold}")
    task = get_task(cfg.operation)
    basis = task.basis(cfg.p)
    if key_freqs is not None and basis is None:
        raise OptionError(
            f"key_freqs cannot be given for operation {cfg.operation!r}: "
            f"{task.no_basis_reason}; leave key_freqs out"
        )
    if key_freqs is not None:
        n_freqs = basis.n_freqs
        bad = [k for k in key_freqs if not 1 <= int(k) <= n_freqs]
        if bad:
            raise OptionError(
                f"key frequencies {bad} outside 1..{n_freqs} (p={cfg.p}, basis {basis.name})"
            )

    final = final_checkpoint(run, epochs[-1], threshold)
    measured = (
        [] if basis is None else key_frequencies(neurons_per_freq(final.neurons[3][0], basis.n))
    )
    used = sorted({int(k) for k in key_freqs}) if key_freqs is not None else measured
    skipped = {n: r for n in names if (r := skip_reason(ANALYSES[n], task)) is not None}
    if skipped:
        log.info("%s: skipped %s: %s", run.path, sorted(skipped), task.no_basis_reason)
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
        "sharpness_every": sharpness_every,
        "basis": None if basis is None else basis.name,
        "skipped_measures": skipped,
        "measure_fingerprints": {name: a.fingerprint for name, a in ANALYSES.items()},
    }
    log.info(
        "%s: %d checkpoints, key frequencies %s (%s)",
        run.path,
        len(epochs),
        used,
        settings["key_freqs_source"],
    )

    old, previous = previous_analysis(run)
    kept = [] if old is None else [reusable_rows(old, previous, settings, epochs)]
    if old is not None:
        # A measure of the stored table that was not asked for but must be recomputed (its
        # code or the settings changed) is recomputed too, rather than dropped: asking for
        # one measure never loses the others.
        stale = set(old["measure"]) - set(kept[0]["measure"]) - set(names)
        stale = sorted(n for n in stale if n in ANALYSES and skip_reason(ANALYSES[n], task) is None)
        if stale:
            log.info("%s: recomputing the stored measures %s too", run.path, stale)
            names = [*names, *stale]
            settings["measures"] = names

    have = {}
    for part in kept:
        for name, group in part.groupby("measure"):
            have[name] = set(group["epoch"].tolist())
    sparse = costly_epochs(epochs, sharpness_every)
    todo = {
        name: (sparse if ANALYSES[name].costly else set(epochs)) - have.get(name, set())
        for name in names
    }
    todo_epochs = sorted(set().union(*todo.values()))
    log.info("%d of %d checkpoints need work", len(todo_epochs), len(epochs))

    step, bar = _progress_callback(progress, len(todo_epochs))
    try:
        new = measure_batched(run, todo_epochs, used, threshold, names, chunk_size, todo, step)
    finally:
        if bar is not None:
            bar.close()
    table = sorted_rows(pd.concat([*kept, new], ignore_index=True)) if kept else new
    summary = build_summary(run, table, final, settings, acc_threshold)
    costly = [name for name in names if ANALYSES[name].costly]
    if costly:  # the costly measures at the phase boundaries too, once they are known
        at = boundary_checkpoints(summary, epochs)
        todo = {name: at - set(table[table["measure"] == name]["epoch"]) for name in costly}
        more = sorted(set().union(*todo.values()))
        if more:
            log.info("%s at %d phase-boundary checkpoints %s", costly, len(more), more)
            extra = measure_batched(run, more, used, threshold, costly, chunk_size, todo)
            table = sorted_rows(pd.concat([table, extra], ignore_index=True))
            summary = build_summary(run, table, final, settings, acc_threshold)
    atomic_write_text(run.path / files.ANALYSIS_TABLE, table.to_csv(index=False))
    write_json(run.path / files.SUMMARY, summary)
    return table, summary


def _measure_names(measures: Sequence[str] | None) -> list[str]:
    """The measures asked for; None or the name "default" stand for :func:`default_measures`."""
    if measures is None:
        return default_measures()
    names = []
    for name in measures:
        names += default_measures() if name == "default" else [name]
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise OptionError(
            f"unknown measure(s) {unknown}; registered: {list(ANALYSES)} "
            f"(or 'default' for {default_measures()})"
        )
    return names


def costly_epochs(epochs: Sequence[int], every: int) -> set[int]:
    """The checkpoints a costly measure (sharpness) runs at: every ``every``-th checkpoint
    in epoch order (the first included) and the last one.

    >>> sorted(costly_epochs([0, 1, 2, 5, 10, 20, 50], 3))
    [0, 5, 50]
    """
    epochs = sorted(epochs)
    return set(epochs[::every]) | ({epochs[-1]} if epochs else set())


def boundary_checkpoints(summary: dict, epochs: Sequence[int]) -> set[int]:
    """The checkpoints at the summary's phase boundaries: each boundary's epoch, or the
    first checkpoint after it (T_mem and T_grok come from eval epochs of the metrics)."""
    epochs = sorted(epochs)
    out = set()
    for boundary in summary.get("phases", {}).values():
        epoch = boundary.get("epoch") if isinstance(boundary, dict) else None
        if epoch is None:
            continue
        after = [e for e in epochs if e >= epoch]
        if after:
            out.add(after[0])
    return out


def analyze(
    run_or_path: Run | str | Path,
    measures: Sequence[str] | None = None,
    threshold: float = 0.85,
    acc_threshold: float = 0.99,
    key_freqs: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = False,
    chunk_size: int = DEFAULT_CHUNK,
    sharpness_every: int = 200,
) -> pd.DataFrame:
    """Analyse every complete checkpoint of a run; write analysis.csv and summary.json.

    measures: table measure names (default: every registered measure but the costly,
    opt-in ones such as ``sharpness``; the name ``"default"`` stands for that list).
    sharpness_every: the costly measures run at every Nth checkpoint, the last one and
    the phase-boundary checkpoints only (:func:`costly_epochs`).  threshold: neuron
    cluster threshold.  acc_threshold: for T_mem / T_grok.  key_freqs: override the final
    checkpoint's key frequencies.  progress: True for a tqdm bar, or a callback
    ``(done, total)``.  Returns the whole tidy table.  See the module docstring for the
    incremental behaviour.
    """
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    table, _ = _analyze(
        run, measures, threshold, acc_threshold, key_freqs, progress, chunk_size, sharpness_every
    )
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
        known = (
            "measures",
            "threshold",
            "acc_threshold",
            "key_freqs",
            "progress",
            "chunk_size",
            "sharpness_every",
        )
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
            "sharpness_every": 200,
            **opts,
        }
        _, summary = _analyze(run, **args)
        out[str(run_dir)] = summary
    return out
