"""Benchmark: N mlp runs trained as one stack against N single runs (``grokinterp bench stacked``).

Both ways write complete run directories (metrics, checkpoints), so the times include
everything a sweep's training pays except the process start-up; the analysis of a run
is the same either way and left out.  ``single`` is N runs of
:func:`grokinterp.models.train.train_toy` one after another in this process: what each
worker of the sweep's process pool does, per core.  The pool runs ``cores`` of them at
once; so does a pool of stacks, so the ratio per core is the ratio on any number of cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from grokinterp.models.config import ToyConfig
from grokinterp.models.stacked import train_stacked
from grokinterp.models.train import train_toy

__all__ = ["STUDY_MLP", "bench_stacked", "format_bench_stacked"]

# The mlp of the study (docs/experiments.md,
# "(p) The delay law at scale: MLPs, sparse parity and phase diagrams").
STUDY_MLP = ToyConfig(family="mlp", dataset="modular", p=31, operation="add", frac_train=0.6,
                      width=64, activation="quadratic", optimizer="adamw", lr=0.01,
                      weight_decay=1.0, epochs=500, eval_every=10,
                      checkpoints="every:100")  # fmt: skip


def _configs(base: ToyConfig, n: int) -> list[ToyConfig]:
    return [base.replace(init_seed=i, data_seed=i, lr=base.lr * (1 + 0.01 * i)) for i in range(n)]


def bench_stacked(base: ToyConfig = STUDY_MLP, sizes: tuple[int, ...] = (1, 8, 32)) -> dict:
    """Seconds for N runs of ``base`` (seeds and lr varied) singly and as one stack."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            cfgs = _configs(base, n)
            start = time.perf_counter()
            train_stacked(cfgs, [Path(tmp) / f"stack{n}-{i}" for i in range(n)])
            stacked = time.perf_counter() - start
            n_single = min(n, 4)  # singles cost the same each: time a few, scale
            start = time.perf_counter()
            for i, cfg in enumerate(cfgs[:n_single]):
                train_toy(cfg, Path(tmp) / f"single{n}-{i}")
            single = (time.perf_counter() - start) * n / n_single
            rows.append({"n": n, "single_s": single, "stacked_s": stacked,
                         "ratio": single / stacked,
                         "runs_per_hour_single": 3600 * n / single,
                         "runs_per_hour_stacked": 3600 * n / stacked})  # fmt: skip
    return {"config": base.to_dict(), "rows": rows}


def format_bench_stacked(result: dict) -> str:
    cfg = result["config"]
    lines = [
        f"mlp p={cfg['p']} width={cfg['width']} {cfg['activation']} frac={cfg['frac_train']}, "
        f"{cfg['epochs']} epochs, one thread; single = N runs one after another",
        f"{'N':>4} {'single s':>10} {'stacked s':>10} {'ratio':>7} {'runs/h single':>14} "
        f"{'runs/h stacked':>15}",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['n']:>4} {r['single_s']:>10.2f} {r['stacked_s']:>10.2f} {r['ratio']:>7.2f} "
            f"{r['runs_per_hour_single']:>14.0f} {r['runs_per_hour_stacked']:>15.0f}"
        )
    return "\n".join(lines)
