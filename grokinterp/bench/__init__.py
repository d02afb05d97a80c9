"""Benchmarks, in one place (``grokinterp bench ...``).

:mod:`~grokinterp.bench.train` (epochs/s: the fast path against the TransformerLens demo
loop), :mod:`~grokinterp.bench.analyze` (s/checkpoint: batched against hooked; the
sharpness measure), :mod:`~grokinterp.bench.watch` (s per ``watch`` iteration),
:mod:`~grokinterp.bench.sweep` (runs/hour on each backend) and
:mod:`~grokinterp.bench.ensemble` (N runs as one vmapped model), :mod:`~grokinterp.bench.ridge`
(ridge GD: the iterative loop against the exact path), with
:mod:`~grokinterp.bench.runs` (run directories of random weights, no training).
"""

from grokinterp.bench.analyze import (
    bench_analyze,
    bench_sharpness,
    format_bench_analyze,
    format_bench_sharpness,
)
from grokinterp.bench.runs import write_random_run
from grokinterp.bench.train import bench_train, format_bench_train
from grokinterp.bench.watch import bench_watch, format_bench_watch

__all__ = [
    "bench_analyze",
    "bench_sharpness",
    "bench_train",
    "bench_watch",
    "format_bench_analyze",
    "format_bench_sharpness",
    "format_bench_train",
    "format_bench_watch",
    "write_random_run",
]
