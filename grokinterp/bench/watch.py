"""Benchmark of ``grokinterp watch``: seconds per iteration on random-weight checkpoints."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.bench.runs import write_random_run
from grokinterp.config import RunConfig
from grokinterp.watch import open_run, training_finished, watch

__all__ = ["bench_watch", "format_bench_watch"]


def bench_watch(cfg: RunConfig | None = None, n_checkpoints: int = 32) -> dict:
    """Seconds per ``grokinterp watch`` iteration on random-weight checkpoints (default p=113).

    Times the iterations a watcher meets: the first (every checkpoint but the last
    analysed, report written), one new checkpoint landing (incremental), one whose key
    frequencies changed (their three measures recomputed at every checkpoint), and an
    idle poll (nothing new).  HTML only, as the watcher writes.  Reports wall seconds
    (analysis and report) and the process's CPU seconds, which a machine shared with
    other work changes less.
    """

    def timed(path: Path, **opts) -> tuple:
        cpu = time.process_time()
        event = watch(path, once=True, **opts)
        return event, time.process_time() - cpu

    with tempfile.TemporaryDirectory() as tmp:
        run = write_random_run(cfg or RunConfig(), Path(tmp) / "run", n_checkpoints)
        last = files.checkpoint_path(run.path, run.epochs[-1])
        aside = Path(tmp) / last.name
        os.replace(last, aside)
        first, first_cpu = timed(run.path)
        os.replace(aside, last)
        new, new_cpu = timed(run.path)
        other = [1, 2, 3] if list(new.key_freqs) != [1, 2, 3] else [4, 5, 6]
        keys, keys_cpu = timed(run.path, analyze_opts={"key_freqs": other})
        start = time.perf_counter()
        for _ in range(10):
            opened, _ = open_run(run.path)
            training_finished(opened)
        idle_s = (time.perf_counter() - start) / 10
    return {
        "p": run.config.p,
        "n_checkpoints": len(new.epochs),
        "threads": torch.get_num_threads(),
        "iterations": {
            f"first ({len(first.epochs)} checkpoints)": (
                first.seconds,
                first.analysis_seconds,
                first_cpu,
            ),
            "one new checkpoint": (new.seconds, new.analysis_seconds, new_cpu),
            "key frequencies changed": (keys.seconds, keys.analysis_seconds, keys_cpu),
        },
        "idle_poll_s": idle_s,
    }


def format_bench_watch(result: dict) -> str:
    lines = [
        f"watch benchmark, p={result['p']}, {result['n_checkpoints']} random-weight "
        f"checkpoints, {result['threads']} threads; seconds per iteration: "
        "wall = analysis + report (CPU)"
    ]
    for name, (total, analysis, cpu) in result["iterations"].items():
        lines.append(
            f"  {name:<28} {total:8.2f} s = {analysis:7.2f} + {total - analysis:6.2f}"
            f"   ({cpu:.2f} s CPU)"
        )
    lines.append(f"  {'idle poll (nothing new)':<28} {result['idle_poll_s']:8.4f} s")
    return "\n".join(lines)
