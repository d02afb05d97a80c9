"""s/run of ridge gradient descent: the iterative loop against the exact path
(:mod:`grokinterp.ridge_path`), on the same config (``grokinterp bench ridge``)."""

from __future__ import annotations

import time

import numpy as np

from grokinterp.models.config import ToyConfig
from grokinterp.ridge_path import exact_losses

__all__ = ["bench_ridge", "format_bench_ridge"]


def bench_ridge(cfg: ToyConfig | None = None, repeats: int = 3) -> dict:
    """Seconds per run of the iterative GD loop (train and test loss every epoch, no files)
    and of the exact path, on the same config, and their ratio."""
    from grokinterp.models.train import ToyTrainer, one_thread
    from grokinterp.toydata import make_toy_data

    cfg = cfg or ToyConfig(epochs=2000)
    data = make_toy_data(cfg)
    with one_thread():
        start = time.perf_counter()
        trainer = ToyTrainer(cfg, data)
        iterative = []
        for epoch in range(cfg.epochs + 1):
            iterative.append(trainer.row(epoch, True)["test_loss"])
            if epoch < cfg.epochs:
                trainer.step_epoch(epoch)
        t_iter = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _, _, test = exact_losses(cfg, data)
            times.append(time.perf_counter() - start)
    t_exact = min(times)
    return {
        "config": f"m={cfg.m}, n={cfg.n_train}, n_test={cfg.n_test}, epochs={cfg.epochs}",
        "iterative_s": t_iter,
        "exact_s": t_exact,
        "speedup": t_iter / t_exact,
        "max_rel_diff": float(np.max(np.abs(test - iterative) / np.abs(iterative))),
        "runs_per_hour_exact": 3600 / t_exact,
        "runs_per_hour_iterative": 3600 / t_iter,
    }


def format_bench_ridge(result: dict) -> str:
    return (
        f"ridge GD, {result['config']}: train and test loss at every epoch\n"
        f"  iterative: {result['iterative_s']:.3f} s/run ({result['runs_per_hour_iterative']:.0f}"
        f" runs/h)\n"
        f"  exact path: {result['exact_s']:.4f} s/run "
        f"({result['runs_per_hour_exact']:.0f} runs/h)\n"
        f"  speed-up: {result['speedup']:.0f}x; largest relative difference of the test "
        f"losses {result['max_rel_diff']:.1e}"
    )
