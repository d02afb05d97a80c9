"""One run of a sweep, in whichever process a backend gives it: train (or resume), analyse.

:func:`run_one` is a top-level function of plain arguments, so any backend can ship it to
another process (a spawn pool, a Ray task).  It writes only inside its run directory and
reports back as a dict; the coordinator alone writes the manifest.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grokinterp import files
from grokinterp.config import RunConfig
from grokinterp.models.config import config_from_dict
from grokinterp.sweep.manifest import (
    CENSORED,
    DONE,
    FAILED,
    LOCKS_DIR,
    read_manifest,
    run_dir,
)

__all__ = ["run_one"]

log = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """Give torch ``threads`` intra-op threads (and as many inter-op, where still allowed)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only allowed before the first parallel work of a process
        pass


def train_and_analyze(cfg: RunConfig, out: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``out`` (resuming what is there), analyse it; return its summary."""
    from grokinterp.analysis import analyze_path
    from grokinterp.training import train

    if (out / files.CONFIG).is_file():
        train(cfg, out, resume=True)
    else:
        if out.exists():  # killed before the run's config was written: nothing to keep
            shutil.rmtree(out)
        train(cfg, out)
    # No slider frames: a sweep is read through its table of runs, and the frames would
    # nearly double a sparse-schedule run's analysis; 'grokinterp analyze RUN' adds them
    # later (the table is reused).
    return analyze_path(out, frames=False)[str(out)]


def run_one(sweep_dir: str, name: str, threads: int) -> dict[str, Any]:
    """Train (or resume from the last checkpoint) then analyse run ``name`` of a sweep.

    Returns ``{"name", "status", "error", "wall_s", "T_mem", "T_grok", "end_epoch",
    "disk_bytes", "traceback"}``: status ``done`` (grokked), ``censored`` (reached the
    epochs cap without grokking) or ``failed`` (``error`` says why; nothing is raised).
    """
    start = time.perf_counter()
    result: dict[str, Any] = {"name": name, "status": FAILED, "error": None, "traceback": None}
    out = run_dir(sweep_dir, name)
    try:
        set_threads(threads)
        cfg = config_from_dict(read_manifest(sweep_dir)["runs"][name]["config"])
        with _run_lock(Path(sweep_dir), name):
            summary = train_and_analyze(cfg, out)
        phases = summary.get("phases", {})
        t_grok = (phases.get("T_grok") or {}).get("epoch")
        result.update(
            status=DONE if t_grok is not None else CENSORED,
            T_mem=(phases.get("T_mem") or {}).get("epoch"),
            T_grok=t_grok,
            end_epoch=summary.get("final_epoch"),
        )
    except Exception as err:  # noqa: BLE001  (a failed run is recorded, not raised)
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
        log.warning("run %s failed: %s", name, result["error"])
    result["wall_s"] = time.perf_counter() - start
    result["disk_bytes"] = _disk_bytes(out)
    return result


@contextmanager
def _run_lock(sweep_dir: Path, name: str) -> Iterator[None]:
    """Hold the run's lock: a worker orphaned by a killed coordinator finishes its run
    before a new worker resumes it, so a run directory never has two writers."""
    folder = sweep_dir / LOCKS_DIR
    folder.mkdir(exist_ok=True)
    with open(folder / name, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # waits for an older holder
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _disk_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
