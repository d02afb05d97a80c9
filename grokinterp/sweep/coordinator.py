"""Running a sweep: the one coordinator that hands runs to a backend and keeps the manifest.

:func:`run_sweep` is idempotent: run it again with the same spec and it skips finished
runs (done, censored), resumes the ones a kill interrupted from their last checkpoint,
and retries failed ones only with ``retry_failed``.  A resumed run ends byte-identical
to an uninterrupted one on the same machine with the same ``threads``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokinterp.sweep.backends import Backend, LocalBackend
from grokinterp.sweep.manifest import FAILED, FINISHED, RUNNING, Manifest
from grokinterp.sweep.spec import load_spec

__all__ = ["DEFAULT_ROOT", "SweepProgress", "run_sweep"]

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("sweeps")


@dataclass
class SweepProgress:
    """What a progress display needs; passed to ``on_update`` after every change."""

    total: int  # runs in the sweep
    todo: int  # runs this invocation set out to run
    counts: dict[str, int]  # runs per status, over the whole sweep
    running: list[str] = field(default_factory=list)
    finished: int = 0  # of the todo runs, finished (any status) in this invocation
    elapsed_s: float = 0.0
    last: dict[str, Any] | None = None  # the latest result, if the update is one

    @property
    def eta_s(self) -> float | None:
        """Remaining time at this invocation's pace so far (None before a run finishes)."""
        if not self.finished:
            return None
        return self.elapsed_s / self.finished * (self.todo - self.finished)


_RESULT_FIELDS = ("wall_s", "T_mem", "T_grok", "end_epoch", "disk_bytes", "traceback")


def run_sweep(
    spec_path: str | Path,
    out: str | Path | None = None,
    *,
    threads: int = 1,
    workers: int | None = None,
    backend: Backend | None = None,
    retry_failed: bool = False,
    on_update: Callable[[SweepProgress], None] | None = None,
) -> Path:
    """Run (or continue) the sweep of a TOML spec; returns the sweep folder.

    out: the sweep folder (default ``sweeps/<spec name>``).  threads: torch threads per
    run.  workers: processes of the default :class:`LocalBackend` (default
    ``cores // threads``); ignored when ``backend`` is given.  Every spec and config
    error is raised before any run starts.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    spec, text = load_spec(spec_path)
    sweep_dir = Path(out) if out is not None else DEFAULT_ROOT / spec.name
    backend = backend if backend is not None else LocalBackend(workers)
    manifest = Manifest.open(sweep_dir, spec, text)
    with manifest:
        todo = manifest.todo(retry_failed=retry_failed)
        skipped_failed = len(manifest.names(FAILED)) if not retry_failed else 0
        if skipped_failed:
            log.warning("%d failed run(s) skipped; rerun them with --retry-failed", skipped_failed)
        state = SweepProgress(total=len(manifest.runs), todo=len(todo), counts=manifest.counts())
        start = time.perf_counter()

        def notify(last: dict[str, Any] | None = None) -> None:
            state.counts = manifest.counts()
            state.elapsed_s = time.perf_counter() - start
            state.last = last
            if on_update is not None:
                on_update(state)

        def on_start(name: str) -> None:
            manifest.update(name, RUNNING, threads=threads)
            state.running.append(name)
            notify()

        def on_result(result: dict[str, Any]) -> None:
            name = result["name"]
            extra = {k: result.get(k) for k in _RESULT_FIELDS if k in result}
            manifest.update(name, result["status"], error=result.get("error"), **extra)
            if name in state.running:
                state.running.remove(name)
            state.finished += 1
            if result["status"] not in FINISHED:
                log.warning("run %s failed: %s", name, result.get("error"))
            notify(result)

        notify()
        if todo:
            backend.run(str(sweep_dir), todo, threads, on_result, on_start)
    return sweep_dir
