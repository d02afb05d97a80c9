"""Where a sweep's runs execute: a small protocol, a local process pool, the caller's process.

A backend has one method::

    run(sweep_dir, names, threads, on_result, on_start=None)

It runs :func:`grokinterp.sweep.worker.run_one` for every name, calls ``on_start(name)``
when a run starts and ``on_result(result)`` (run_one's dict) as each one finishes, in the
caller's thread, and returns when all have finished.  Backends never touch the manifest:
the coordinator records what the callbacks report.  ``grokinterp.sweep.ray_backend``
adds a Ray backend with the same protocol.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from grokinterp.sweep.manifest import FAILED
from grokinterp.sweep.worker import run_one

__all__ = ["Backend", "InlineBackend", "LocalBackend", "available_cores", "default_workers"]

log = logging.getLogger(__name__)

OnResult = Callable[[dict[str, Any]], None]
OnStart = Callable[[str], None]


class Backend(Protocol):
    def run(
        self,
        sweep_dir: str,
        names: Sequence[str],
        threads: int,
        on_result: OnResult,
        on_start: OnStart | None = None,
    ) -> None: ...


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(threads: int) -> int:
    """``cores // threads``, at least 1."""
    return max(1, available_cores() // max(1, threads))


def _died(name: str, attempts: int) -> dict[str, Any]:
    return {
        "name": name,
        "status": FAILED,
        "error": f"its worker process died {attempts} times (killed, or out of memory?); "
        f"rerun with --retry-failed to resume it from its last checkpoint",
        "traceback": None,
        "wall_s": float("nan"),
    }


class LocalBackend:
    """A pool of ``workers`` worker processes (spawn context: a fresh interpreter each, so
    no torch state is inherited), one run per process at a time.

    A worker that dies (killed, out of memory) breaks the pool; the runs it held are
    started again in a fresh pool, resuming from their last checkpoint, up to
    ``retries`` times each, then recorded as failed.
    """

    def __init__(self, workers: int | None = None, retries: int = 2):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.retries = retries

    def run(
        self,
        sweep_dir: str,
        names: Sequence[str],
        threads: int,
        on_result: OnResult,
        on_start: OnStart | None = None,
    ) -> None:
        queue = list(names)
        workers = min(self.workers or default_workers(threads), max(1, len(queue)))
        deaths: dict[str, int] = {}
        context = multiprocessing.get_context("spawn")
        while queue:
            requeue = []
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                running: dict[Future, str] = {}
                broken = False
                while queue or running:
                    # At most `workers` in flight, so a submitted run starts at once.
                    while queue and len(running) < workers and not broken:
                        name = queue.pop(0)
                        running[pool.submit(run_one, str(sweep_dir), name, threads)] = name
                        if on_start is not None:
                            on_start(name)
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True
                            deaths[name] = deaths.get(name, 0) + 1
                            if deaths[name] > self.retries:
                                on_result(_died(name, deaths[name]))
                            else:
                                log.warning("the worker running %s died; restarting it", name)
                                requeue.append(name)
                            continue
                        on_result(result)
                    if broken and not running:
                        break
            queue = requeue + queue


class InlineBackend:
    """Runs one at a time in the caller's process: no start-up cost, for tests and
    debugging (a crash of the run is a crash of the caller)."""

    def run(
        self,
        sweep_dir: str,
        names: Sequence[str],
        threads: int,
        on_result: OnResult,
        on_start: OnStart | None = None,
    ) -> None:
        import torch

        previous = torch.get_num_threads()
        try:
            for name in names:
                if on_start is not None:
                    on_start(name)
                on_result(run_one(str(sweep_dir), name, threads))
        finally:
            torch.set_num_threads(previous)
