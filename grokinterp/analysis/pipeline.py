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
from grokinterp.analysis.registry import ANALYSES, skip_reason
from grokinterp.analysis.summary import build_summary
from grokinterp.analysis.table import (
    ANALYSIS_VERSION,
    previous_analysis,
    reusable_rows,
    sorted_rows,
)
from grokinterp.config import OptionError
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
    table = sorted_rows(pd.concat([*kept, new], ignore_index=True)) if kept else new
    summary = build_summary(run, table, final, settings, acc_threshold)
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
