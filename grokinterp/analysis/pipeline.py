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
from grokinterp.analysis.frames import write_frames
from grokinterp.analysis.options import DEFAULT_SHARPNESS_EVERY, AnalysisSettings
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
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.phases import ACC_THRESHOLD
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


def _key_freqs(run: Run, settings: AnalysisSettings, final) -> tuple[list[int], list[int], str]:
    """(key frequencies used, those of the final checkpoint, where the used ones come from);
    OptionError for given frequencies the task's basis does not have."""
    cfg = run.config
    task = get_task(cfg.operation)
    basis = task.basis(cfg.p)
    given = settings.key_freqs
    if given is not None and basis is None:
        raise OptionError(
            f"key_freqs cannot be given for operation {cfg.operation!r}: "
            f"{task.no_basis_reason}; leave key_freqs out"
        )
    if given is not None:
        n_freqs = basis.n_freqs
        bad = [k for k in given if not 1 <= int(k) <= n_freqs]
        if bad:
            raise OptionError(
                f"key frequencies {bad} outside 1..{n_freqs} (p={cfg.p}, basis {basis.name})"
            )
    measured = (
        [] if basis is None else key_frequencies(neurons_per_freq(final.neurons[3][0], basis.n))
    )
    if given is not None:
        return list(given), measured, "given"
    return measured, measured, f"epoch {run.epochs[-1]}"


def _settings_record(run: Run, settings: AnalysisSettings, names: list[str], final) -> dict:
    """What summary.json stores under ``settings``: the options (:class:`AnalysisSettings`,
    measures resolved) and what the analysis derived from them."""
    cfg = run.config
    task = get_task(cfg.operation)
    basis = task.basis(cfg.p)
    used, measured, source = _key_freqs(run, settings, final)
    skipped = {n: r for n in names if (r := skip_reason(ANALYSES[n], task)) is not None}
    if skipped:
        log.info("%s: skipped %s: %s", run.path, sorted(skipped), task.no_basis_reason)
    options = settings.replace(measures=tuple(names)).to_dict()
    return {
        "analysis_version": ANALYSIS_VERSION,
        "config": cfg.to_dict(),
        "threshold": options["threshold"],
        "acc_threshold": options["acc_threshold"],
        "key_freqs_given": options["key_freqs_given"],
        "key_freqs_used": used,
        "key_freqs_source": source,
        "key_freqs_final_checkpoint": measured,
        "measures": options["measures"],
        "sharpness_every": options["sharpness_every"],
        "llc": options["llc"],
        "basis": None if basis is None else basis.name,
        "skipped_measures": skipped,
        "measure_fingerprints": {name: a.fingerprint for name, a in ANALYSES.items()},
    }


def _reused_rows(run: Run, record: dict, names: list[str]) -> tuple[list[pd.DataFrame], list[str]]:
    """The stored rows still valid, and the measures to compute (``names`` plus any stored
    measure that must be recomputed: asking for one measure never loses the others)."""
    old, previous = previous_analysis(run)
    if old is None:
        return [], names
    kept = reusable_rows(old, previous, record, run.epochs)
    task = get_task(run.config.operation)
    stale = set(old["measure"]) - set(kept["measure"]) - set(names)
    stale = sorted(n for n in stale if n in ANALYSES and skip_reason(ANALYSES[n], task) is None)
    if stale:
        log.info("%s: recomputing the stored measures %s too", run.path, stale)
        names = [*names, *stale]
        record["measures"] = names
    return [kept], names


def _analyze(
    run: Run,
    settings: AnalysisSettings,
    progress=False,
    chunk_size: int = DEFAULT_CHUNK,
    frames: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """The table and summary of a run (written), and its slider frames when ``frames``."""
    epochs = run.epochs
    if not epochs:
        raise RunFileError(f"{run.path}: no complete checkpoints to analyse yet")
    if not isinstance(run.config, RunConfig):  # a toy model family: its own measures
        from grokinterp.models.analysis import analyze_toy

        return analyze_toy(run, settings.acc_threshold)
    names = _measure_names(settings.measures)
    final = final_checkpoint(run, epochs[-1], settings.threshold)
    record = _settings_record(run, settings, names, final)
    used, threshold = record["key_freqs_used"], settings.threshold
    log.info(
        "%s: %d checkpoints, key frequencies %s (%s)",
        run.path,
        len(epochs),
        used,
        record["key_freqs_source"],
    )
    kept, names = _reused_rows(run, record, names)

    have = {}
    for part in kept:
        for name, group in part.groupby("measure"):
            have[name] = set(group["epoch"].tolist())
    sparse = costly_epochs(epochs, settings.sharpness_every)
    todo = {
        name: (sparse if ANALYSES[name].costly else set(epochs)) - have.get(name, set())
        for name in names
    }
    todo_epochs = sorted(set().union(*todo.values()))
    log.info("%d of %d checkpoints need work", len(todo_epochs), len(epochs))

    step, bar = _progress_callback(progress, len(todo_epochs))
    try:
        new = measure_batched(
            run,
            todo_epochs,
            key_freqs=used,
            threshold=threshold,
            measures=names,
            chunk_size=chunk_size,
            only=todo,
            progress=step,
            llc=settings.llc,
        )
    finally:
        if bar is not None:
            bar.close()
    table = sorted_rows(pd.concat([*kept, new], ignore_index=True)) if kept else new
    summary = build_summary(run, table, final, record, settings.acc_threshold)
    costly = [name for name in names if ANALYSES[name].costly]
    if costly:  # the costly measures at the phase boundaries too, once they are known
        at = boundary_checkpoints(summary, epochs)
        todo = {name: at - set(table[table["measure"] == name]["epoch"]) for name in costly}
        more = sorted(set().union(*todo.values()))
        if more:
            log.info("%s at %d phase-boundary checkpoints %s", costly, len(more), more)
            extra = measure_batched(
                run,
                more,
                key_freqs=used,
                threshold=threshold,
                measures=costly,
                chunk_size=chunk_size,
                only=todo,
                llc=settings.llc,
            )
            table = sorted_rows(pd.concat([table, extra], ignore_index=True))
            summary = build_summary(run, table, final, record, settings.acc_threshold)
    atomic_write_text(run.path / files.ANALYSIS_TABLE, table.to_csv(index=False))
    write_json(run.path / files.SUMMARY, summary)
    if frames:
        write_frames(run, summary, threshold, chunk_size)
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
    threshold: float = NEURON_THRESHOLD,
    acc_threshold: float = ACC_THRESHOLD,
    key_freqs: Sequence[int] | None = None,
    progress: bool | Callable[[int, int], None] = False,
    chunk_size: int = DEFAULT_CHUNK,
    sharpness_every: int = DEFAULT_SHARPNESS_EVERY,
    *,
    settings: AnalysisSettings | None = None,
    frames: bool = True,
) -> pd.DataFrame:
    """Analyse every complete checkpoint of a run; write analysis.csv and summary.json,
    and (``frames``, for a task with a basis) the epoch-slider frames, frames.npz.

    settings: an :class:`~grokinterp.analysis.options.AnalysisSettings`; or its fields one
    by one: measures (default: every registered measure but the costly, opt-in ones such
    as ``sharpness``; the name ``"default"`` stands for that list), threshold (neuron
    cluster threshold), acc_threshold (for T_mem / T_grok), key_freqs (override the final
    checkpoint's key frequencies), sharpness_every (the costly measures run at every Nth
    checkpoint, the last one and the phase-boundary checkpoints only,
    :func:`costly_epochs`).  progress: True for a tqdm bar, or a callback
    ``(done, total)``.  Returns the whole tidy table.  See the module docstring of
    :mod:`grokinterp.analysis` for the incremental behaviour.
    """
    if settings is None:
        settings = AnalysisSettings(
            measures=measures,
            threshold=threshold,
            acc_threshold=acc_threshold,
            key_freqs=key_freqs,
            sharpness_every=sharpness_every,
        )
    run = run_or_path if isinstance(run_or_path, Run) else load_run(run_or_path)
    table, _ = _analyze(run, settings, progress, chunk_size, frames)
    return table


def analyze_path(
    path: str | Path,
    settings: AnalysisSettings | None = None,
    *,
    progress: bool | Callable[[int, int], None] = False,
    chunk_size: int = DEFAULT_CHUNK,
    frames: bool = True,
    **fields,
) -> dict[str, dict]:
    """Analyse a run directory, or every run directory directly inside a folder.

    Returns {run_dir: summary}.  settings: an :class:`AnalysisSettings`, or its fields as
    keyword arguments (``threshold=0.9``, ...), as :func:`analyze` takes them.
    """
    if settings is None:
        known = set(AnalysisSettings.__dataclass_fields__)
        extra = sorted(set(fields) - known)
        if extra:
            allowed = sorted(known | {"progress", "chunk_size", "frames"})
            raise TypeError(f"analyze_path got unknown option(s) {extra}; allowed: {allowed}")
        settings = AnalysisSettings(**fields)
    elif fields:
        raise TypeError(f"give settings or its fields, not both (got {sorted(fields)})")
    out = {}
    for run_dir in find_runs(path):
        run = load_run(run_dir)
        if not run.epochs:
            log.warning("%s: no complete checkpoints yet; skipped", run_dir)
            continue
        _, summary = _analyze(run, settings, progress, chunk_size, frames)
        out[str(run_dir)] = summary
    return out
