"""Watching a run while it trains: analyse new checkpoints as they land, rewrite the report.

:func:`watch` polls ``RUN/checkpoints/`` every ``interval`` seconds (no extra dependency,
works on any file system).  When the set of complete checkpoints changes it runs
:func:`grokinterp.analysis.analyze`, which only computes the checkpoints it has not
analysed yet, and rewrites ``RUN/figures/report.html`` (HTML only: no PNG/SVG export, for
speed).  While the run trains the report carries ``<meta http-equiv="refresh">`` so an open
browser tab reloads itself; once the run is complete the watcher writes the final analysis
and a report without it, then returns.

It works beside ``grokinterp train`` because every run file is renamed into place
atomically (:mod:`grokinterp.storage`): a checkpoint is either absent or complete.  It
waits for a run directory that does not exist yet or has no checkpoint yet, and keeps
watching a run whose trainer was killed (``grokinterp train --resume`` continues it).

Key frequencies.  Until the run ends, the key frequencies are those of the latest
analysed checkpoint.  When a new checkpoint changes them, ``analyze`` recomputes the
measures that use them (``restricted_loss``, ``excluded_loss``, ``logit_explained_var``)
at every checkpoint analysed so far, so such an iteration costs about as much as a first
analysis of those measures; the other measures are computed for the new checkpoints only.
:class:`WatchEvent` says when that happened (``key_freqs_changed``).

Forecast.  While the run trains, each report also carries the current forecast of T_grok
and its interval (:func:`grokinterp.forecast.forecast_or_not_yet`, docs/forecast.md), or
"not yet" with the reason (not memorised, a plateau still too short, a restricted loss
not falling, estimates that disagree), or the observed T_grok once test accuracy has
reached it; :class:`WatchEvent` carries it too (``forecast``).  It costs seconds at
p = 113 (the restricted loss at up to 40 plateau checkpoints), so it is recomputed at most
every :data:`FORECAST_EVERY_S` seconds, except a "not yet" that took under
:data:`FORECAST_CHEAP_S` (no plateau measured yet), which is recomputed at every update;
the block says up to which epoch its data go.  ``forecast=False`` leaves it out.

Interrupting (Ctrl-C, ``KeyboardInterrupt``) is safe at any moment: every file is written
to a temporary name and renamed, so each file on disk is complete, the previous version
or the new one, and the watcher removes any temporary file of its own before the
interrupt propagates.  A report written while the run trained keeps reloading itself
after the watcher stops; ``grokinterp figures RUN`` or the next watch rewrites it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grokinterp import files
from grokinterp.config import OptionError
from grokinterp.forecast import forecast_or_not_yet
from grokinterp.models.config import is_toy
from grokinterp.run import Run, load_run
from grokinterp.storage import RunFileError, read_json, read_metrics

__all__ = ["MIN_REFRESH_S", "WatchEvent", "watch"]

log = logging.getLogger(__name__)

MIN_REFRESH_S = 5  # a report reloads at most this often: each reload redraws every figure
FORECAST_EVERY_S = 60  # the live forecast is recomputed at most this often (seconds at p = 113)
FORECAST_CHEAP_S = 2.0  # ... unless it was a "not yet" this quick (no plateau measured yet)


@dataclass(frozen=True)
class WatchEvent:
    """What one watch iteration did.

    kind: ``"waiting"`` (no run or no checkpoint yet), ``"analysed"`` (new checkpoints of
    a run still training) or ``"done"`` (the run is complete; final analysis and report).
    message: one line for a person.  epochs: the analysed checkpoints.  new: how many of
    them this iteration added.  refresh: the report's reload period in seconds (None in the
    final report).  seconds: wall time of the analysis and report; analysis_seconds: of the
    analysis alone.  forecast: the live forecast of T_grok
    (:class:`grokinterp.forecast.Forecast`, possibly "not yet"), None in the final report
    or with ``forecast=False``.
    """

    kind: str
    message: str
    epochs: tuple[int, ...] = ()
    new: int = 0
    key_freqs: tuple[int, ...] = ()
    key_freqs_changed: bool = False
    report: Path | None = None
    refresh: int | None = None
    seconds: float = 0.0
    analysis_seconds: float = 0.0
    forecast: object = None  # a grokinterp.forecast.Forecast


def _key_freqs_stored(run_dir: Path) -> tuple[int, ...] | None:
    """The key frequencies the stored analysis used, or None without one."""
    try:
        summary = read_json(run_dir / files.SUMMARY)
    except RunFileError:
        return None
    used = summary.get("settings", {}).get("key_freqs_used")
    return None if used is None else tuple(int(k) for k in used)


def training_finished(run) -> bool:
    """The final checkpoint is on disk and the trainer logged its last metrics row.

    The trainer saves the final checkpoint before it logs the final row, and the phase
    summary reads the metrics, so the watcher waits for both.  A run without any metrics
    row (e.g. :func:`grokinterp.bench.write_random_run`) is finished at its last checkpoint.
    """
    if not run.is_complete:
        return False
    try:
        rows = read_metrics(run.path / files.METRICS)
    except RunFileError:
        return True
    return not rows or rows[-1]["epoch"] >= run.config.epochs


def _remove_own_temporaries(run_dir: Path) -> None:
    """Temporary files of the watcher's writes (never the trainer's checkpoints)."""
    patterns = [f".{files.ANALYSIS_TABLE}.*.tmp", f".{files.SUMMARY}.*.tmp"]
    leftovers = [p for pattern in patterns for p in run_dir.glob(pattern)]
    leftovers += list((run_dir / files.FIGURES_DIR).glob(".*.tmp"))
    for path in leftovers:
        path.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted write", path)


def open_run(run_dir: Path) -> tuple[Run | None, str | None]:
    """The run, or None and why there is nothing to analyse yet."""
    if not (run_dir / files.CONFIG).is_file():
        return None, f"no {files.CONFIG} yet"
    run = load_run(run_dir)  # the trainer writes config.json last, after split.json
    if not run.epochs:
        return None, "no checkpoint yet"
    return run, None


def _update(
    run: Run,
    done: bool,
    refresh: int | None,
    formats: tuple[str, ...],
    analysed: tuple[int, ...],
    analyze_opts: dict,
    found=None,
) -> WatchEvent:
    """Analyse the run (incrementally) and rewrite its figures and report."""
    from grokinterp.analysis import analyze
    from grokinterp.figures import write_figures
    from grokinterp.figures.forecast import forecast_section

    run_dir = run.path
    start = time.perf_counter()
    before = _key_freqs_stored(run_dir)
    # the slider frames cost seconds at p = 113: measured once, for the final report
    table = analyze(run, **{**analyze_opts, "frames": done})
    analysis_seconds = time.perf_counter() - start
    summary = read_json(run_dir / files.SUMMARY)
    sections = [forecast_section(found)] if found is not None else []
    # the slider figures cost seconds at p = 113: drawn once, in the final report
    written = write_figures(
        run_dir, formats=formats, refresh=refresh, sliders=done, sections=sections
    )
    seconds = time.perf_counter() - start

    epochs = tuple(sorted(int(e) for e in table["epoch"].unique()))
    keys = tuple(int(k) for k in summary.get("key_frequencies", []))
    changed = before is not None and before != keys
    new = len(set(epochs) - set(analysed))
    report = next((p for p in written if p.name == files.REPORT), None)
    total = run.config.epochs
    head = (
        f"training complete: final analysis of {len(epochs)} checkpoints"
        if done
        else f"epoch {epochs[-1]:,} of {total:,}: {len(epochs)} checkpoints analysed (+{new})"
    )
    message = f"{head} in {seconds:.1f} s; key frequencies {list(keys) or 'none yet'}"
    if changed:
        message += f" (were {list(before)}: their measures recomputed at every checkpoint)"
    if found is not None:
        message += f"; {found}"
    return WatchEvent(
        kind="done" if done else "analysed",
        message=message,
        epochs=epochs,
        new=new,
        key_freqs=keys,
        key_freqs_changed=changed,
        report=report,
        refresh=refresh,
        seconds=seconds,
        analysis_seconds=analysis_seconds,
        forecast=found,
    )


def watch(
    run_dir: str | Path,
    interval: float = 10.0,
    *,
    once: bool = False,
    formats: Iterable[str] = ("html",),
    on_update: Callable[[WatchEvent], None] | None = None,
    stop_when_done: bool = True,
    timeout: float | None = None,
    analyze_opts: dict | None = None,
    forecast: bool = True,
) -> WatchEvent:
    """Analyse a run's new checkpoints as they land and keep its report up to date.

    Polls every ``interval`` seconds.  Each time the set of complete checkpoints changes,
    it analyses the run (incrementally) and rewrites ``RUN/figures/report.html``, which
    reloads itself every ``max(interval, MIN_REFRESH_S)`` seconds while the run trains.
    When training is finished it writes the final analysis and a report that does not
    reload, calls ``on_update`` and returns that event (``stop_when_done=False`` keeps
    polling instead).  ``once``: one pass over what is there now, report without reload,
    then return; a run with no checkpoint then raises :class:`RunFileError`.

    on_update: called with each :class:`WatchEvent` (waiting messages only when the
    reason changes).  timeout: raise :class:`TimeoutError` at the first poll that finds
    nothing new after this many seconds.
    analyze_opts: keyword arguments for :func:`grokinterp.analysis.analyze`.  formats:
    figure formats (default HTML only).  forecast: put the live forecast of T_grok in each
    report while the run trains.  Ctrl-C raises ``KeyboardInterrupt`` with every file
    complete (see the module docstring).
    """
    run_dir = Path(run_dir)
    formats = tuple(formats)
    if not interval > 0:
        raise OptionError(f"interval must be a positive number of seconds, got {interval}")
    if timeout is not None and not timeout > 0:
        raise OptionError(f"timeout must be a positive number of seconds, got {timeout}")
    refresh_s = max(MIN_REFRESH_S, math.ceil(interval))
    opts = dict(analyze_opts or {})
    deadline = None if timeout is None else time.monotonic() + timeout
    notify = on_update or (lambda event: None)

    analysed: tuple[int, ...] = ()
    last_state = None
    last_wait = None
    last_event: WatchEvent | None = None
    live, live_at, live_cost = None, -math.inf, 0.0  # the live forecast, when, its seconds
    try:
        while True:
            worked = False
            run, reason = open_run(run_dir)
            if run is None:
                if once:
                    raise RunFileError(f"{run_dir}: {reason}; nothing to analyse (drop --once)")
                if reason != last_wait:
                    message = f"waiting for {run_dir}: {reason}"
                    last_event = WatchEvent(kind="waiting", message=message)
                    log.info("%s", last_event.message)
                    notify(last_event)
                last_wait, last_state = reason, None
            else:
                last_wait = None
                done = training_finished(run)
                if (tuple(run.epochs), done) != last_state:
                    refresh = None if done or once else refresh_s
                    if not forecast or done or is_toy(run.config):  # it reads a transformer
                        live = None
                    elif (
                        time.monotonic() - live_at >= FORECAST_EVERY_S
                        or live is None
                        or (live.status == "not yet" and live_cost < FORECAST_CHEAP_S)
                    ):  # a "not yet" after measuring the plateau costs what a forecast does
                        started = time.monotonic()
                        live = forecast_or_not_yet(run)
                        live_at = time.monotonic()
                        live_cost = live_at - started
                    last_event = _update(run, done, refresh, formats, analysed, opts, live)
                    analysed = last_event.epochs
                    log.info("%s", last_event.message)
                    notify(last_event)
                    last_state = (last_event.epochs, done)
                    worked = True
                if once or (done and stop_when_done):
                    return last_event
            # a timeout ends a poll that found nothing new, never one with work done
            if not worked and deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"watch {run_dir}: no finished run after {timeout:g} s "
                    f"(last: {last_event.message if last_event else 'nothing yet'})"
                )
            time.sleep(interval)
    except KeyboardInterrupt:
        _remove_own_temporaries(run_dir)
        raise
