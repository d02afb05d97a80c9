"""The sweep folder and its manifest: which runs there are and where each one stands.

A sweep folder::

    SWEEP/
      spec.toml        the spec as given (a copy)
      manifest.json    the parsed spec, and per run: config, status, error, wall time
      runs/<name>/     one ordinary run directory per run (grokinterp train's layout)
      runs.csv         the table of runs                        (grokinterp analyze SWEEP)
      figures/         figures across runs and report.html      (grokinterp figures SWEEP)
      .lock            held by the one coordinator writing the manifest
      .locks/<name>    held by the worker of each run (one writer per run directory)

A run's status is ``pending`` (not started), ``running``, ``done`` (trained and analysed,
grokked), ``censored`` (trained to the epochs cap without grokking, then analysed) or
``failed`` (with its error).  Only the coordinator (:func:`grokinterp.sweep.run_sweep`)
writes the manifest, atomically, and a lock keeps a second coordinator out; workers only
write their own run directory.  A run left ``running`` by a killed coordinator is
resumed from its last checkpoint by the next one.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from grokinterp import files
from grokinterp.config import RunConfig
from grokinterp.storage import RunFileError, atomic_write_text, read_json, write_json
from grokinterp.sweep.spec import SpecError, SweepSpec

__all__ = [
    "MANIFEST",
    "STATUSES",
    "Manifest",
    "SweepExistsError",
    "SweepLockedError",
    "is_sweep",
    "read_manifest",
    "run_dir",
]

# the folder's file names (grokinterp.files)
MANIFEST = files.MANIFEST
SPEC_COPY = files.SPEC_COPY
RUNS_DIR = files.RUNS_DIR
RUNS_TABLE = files.RUNS_TABLE
LOCK = files.SWEEP_LOCK
LOCKS_DIR = files.SWEEP_LOCKS_DIR
MANIFEST_FORMAT = "grokinterp-sweep-v1"

PENDING, RUNNING, DONE, FAILED, CENSORED = "pending", "running", "done", "failed", "censored"
STATUSES = (PENDING, RUNNING, DONE, FAILED, CENSORED)
FINISHED = (DONE, CENSORED)


class SweepExistsError(SpecError):
    """The sweep folder already holds a different sweep; the message lists the differences."""


class SweepLockedError(RuntimeError):
    """Another coordinator is running on this sweep folder."""


def is_sweep(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def run_dir(sweep_dir: str | Path, name: str) -> Path:
    return Path(sweep_dir) / RUNS_DIR / name


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    """The manifest as a dict (read-only use: workers, tables, figures)."""
    path = Path(sweep_dir) / MANIFEST
    data = read_json(path)
    runs, order = data.get("runs"), data.get("order")
    if (
        data.get("format") != MANIFEST_FORMAT
        or not isinstance(runs, dict)
        or not isinstance(order, list)
        or sorted(order) != sorted(runs)
    ):
        raise RunFileError(f"{path}: not a {MANIFEST_FORMAT} manifest")
    data["runs"] = {name: runs[name] for name in order}  # the file's keys are sorted
    return data


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Lines like ``grid.lr: [0.001] -> [0.001, 0.003]`` for every key that differs."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"{key}: {a[key]!r} -> (absent)")
        elif key not in a:
            lines.append(f"{key}: (absent) -> {b[key]!r}")
        elif a[key] != b[key]:
            lines.append(f"{key}: {a[key]!r} -> {b[key]!r}")
    return lines


class Manifest:
    """The coordinator's handle on a sweep folder: open with :meth:`open`, then ``with``.

    Entering the ``with`` block takes the folder's lock; every :meth:`update` rewrites
    manifest.json atomically.
    """

    def __init__(self, sweep_dir: Path, data: dict[str, Any]):
        self.path = Path(sweep_dir)
        self.data = data
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, sweep_dir: str | Path, spec: SweepSpec, spec_text: str) -> Manifest:
        """Create the sweep folder for ``spec``, or open it if it holds the same spec.

        A folder holding a different spec is refused, listing the differences.
        """
        sweep_dir = Path(sweep_dir)
        runs = spec.runs()
        if is_sweep(sweep_dir):
            data = read_manifest(sweep_dir)
            diffs = spec_differences(data.get("spec", {}), spec.to_dict())
            if diffs:
                raise SweepExistsError(
                    f"{sweep_dir} holds a different sweep; differences (stored -> given):\n  "
                    + "\n  ".join(diffs)
                    + "\nchoose another --out, or use the stored spec "
                    f"{sweep_dir / SPEC_COPY}"
                )
            return cls(sweep_dir, data)
        if sweep_dir.exists() and any(p.name not in (LOCK, LOCKS_DIR) for p in sweep_dir.iterdir()):
            raise SweepExistsError(
                f"{sweep_dir} exists, is not empty and holds no sweep ({MANIFEST}); "
                f"choose another --out"
            )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / SPEC_COPY, spec_text)
        data = {
            "format": MANIFEST_FORMAT,
            "spec": spec.to_dict(),
            "order": list(runs),  # expansion order (JSON keys are written sorted)
            "runs": {
                name: {"config": cfg.to_dict(), "status": PENDING, "error": None}
                for name, cfg in runs.items()
            },
        }
        manifest = cls(sweep_dir, data)
        manifest.save()  # last: a folder with a manifest is a sweep
        return manifest

    # locking: one coordinator per folder
    def __enter__(self) -> Manifest:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SweepLockedError(
                f"{self.path}: another 'grokinterp sweep' is running on this folder; wait "
                f"for it to finish (or stop it) and run again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self.data = read_manifest(self.path)  # as the previous coordinator left it
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # reading
    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    def config(self, name: str) -> RunConfig:
        from grokinterp.models.config import config_from_dict

        return config_from_dict(self.runs[name]["config"])  # a RunConfig or a ToyConfig

    def names(self, *statuses: str) -> list[str]:
        return [n for n, r in self.runs.items() if r["status"] in statuses]

    def counts(self) -> dict[str, int]:
        return {s: len(self.names(s)) for s in STATUSES}

    def todo(self, retry_failed: bool = False) -> list[str]:
        """Runs to start: pending, left running by a killed coordinator, and failed ones
        with ``retry_failed``; finished runs are skipped."""
        wanted = (PENDING, RUNNING, FAILED) if retry_failed else (PENDING, RUNNING)
        return self.names(*wanted)

    # writing (the coordinator only)
    def update(self, name: str, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not in {STATUSES}")
        entry = self.runs[name]
        entry["status"] = status
        entry["error"] = fields.pop("error", None)
        entry.update(fields)
        entry["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.save()

    def save(self) -> None:
        write_json(self.path / MANIFEST, self.data)
