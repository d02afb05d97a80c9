"""Benchmarks of the analysis: the batched checkpoint path against a per-checkpoint hooked
loop, and the opt-in sharpness measure.

Both paths compute every registered measure for the same checkpoints in this process: the
batched path stacks ``chunk_size`` checkpoints and runs :func:`grokinterp.batched.last_position`
once per chunk; the reference loads each checkpoint as a TransformerLens model
(``run.model_at``) and reads activations with ``run_with_cache`` over all p^2 inputs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from grokinterp.analysis import DEFAULT_CHUNK, measure_batched, measure_hooked
from grokinterp.bench.runs import noisy_states, write_random_run
from grokinterp.config import RunConfig
from grokinterp.data import make_dataset
from grokinterp.model import build_model
from grokinterp.run import Run, load_run

__all__ = [
    "bench_analyze",
    "bench_sharpness",
    "format_bench_analyze",
    "format_bench_sharpness",
]


def bench_analyze(
    run_or_cfg: Run | RunConfig | str | Path | None = None,
    n_checkpoints: int = 16,
    n_reference: int = 4,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict:
    """Seconds per checkpoint of the batched analysis and of the hooked per-checkpoint loop.

    run_or_cfg: a run (or its path) to time on its latest ``n_checkpoints`` checkpoints;
    a config (default: ``RunConfig()``, p=113) for random-weight checkpoints written to a
    temporary folder.  The reference loop is slow, so it times ``n_reference`` of them.
    Also reports the largest difference between the two paths' values.
    """
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(run_or_cfg, Run):
            run = run_or_cfg
        elif isinstance(run_or_cfg, (str, Path)):
            run = load_run(run_or_cfg)
        else:
            run = write_random_run(run_or_cfg or RunConfig(), Path(tmp) / "run", n_checkpoints)
        epochs = run.epochs[-n_checkpoints:]
        key_freqs = [1, 2, 3]
        measure_batched(run, epochs[:1], key_freqs=key_freqs)  # warm-up (allocations, thread pool)

        start = time.perf_counter()
        batched = measure_batched(run, epochs, key_freqs=key_freqs, chunk_size=chunk_size)
        batched_s = (time.perf_counter() - start) / len(epochs)

        ref_epochs = epochs[-n_reference:]
        start = time.perf_counter()
        hooked = [
            measure_hooked(run.model_at(e), run.config, run.dataset, e, key_freqs)
            for e in ref_epochs
        ]
        reference_s = (time.perf_counter() - start) / len(ref_epochs)

    same = batched[batched["epoch"].isin(ref_epochs)].reset_index(drop=True)
    ref = np.concatenate([h["value"].to_numpy() for h in hooked])
    scale = np.maximum(np.abs(ref), 1e-6)
    return {
        "p": run.config.p,
        "d_mlp": run.config.d_mlp,
        "n_checkpoints": len(epochs),
        "n_reference": len(ref_epochs),
        "chunk_size": chunk_size,
        "threads": torch.get_num_threads(),
        "batched_s_per_checkpoint": batched_s,
        "reference_s_per_checkpoint": reference_s,
        "speedup": reference_s / batched_s,
        "max_rel_diff": float(np.max(np.abs(same["value"].to_numpy() - ref) / scale)),
        "source": str(run.path) if isinstance(run_or_cfg, (Run, str, Path)) else "random weights",
    }


def format_bench_analyze(result: dict) -> str:
    return (
        f"analyze benchmark, p={result['p']}, d_mlp={result['d_mlp']}, "
        f"{result['threads']} threads, checkpoints from {result['source']}\n"
        f"  batched ({result['chunk_size']} checkpoints per forward, "
        f"{result['n_checkpoints']} timed): "
        f"{result['batched_s_per_checkpoint']:8.3f} s/checkpoint\n"
        f"  reference (model_at + run_with_cache per checkpoint, {result['n_reference']} timed): "
        f"{result['reference_s_per_checkpoint']:8.3f} s/checkpoint\n"
        f"  speedup: {result['speedup']:.1f}x; largest relative difference "
        f"{result['max_rel_diff']:.1e}"
    )


def bench_sharpness(cfg: RunConfig | None = None, n_checkpoints: int = 2, seed: int = 0) -> dict:
    """Seconds per checkpoint of the ``sharpness`` measure (default: p = 113, default model).

    Times :func:`grokinterp.measures.sharpness.train_loss_sharpness` at its default
    tolerance on ``n_checkpoints`` random-initialisation checkpoints (the initial weights,
    shrunk and perturbed as :func:`write_random_run` does); no training is needed.
    """
    from grokinterp.measures.sharpness import (
        DEFAULT_MAX_ITER,
        DEFAULT_TOL,
        train_loss_sharpness,
        trainable_keys,
    )

    cfg = cfg or RunConfig()
    data = make_dataset(cfg)
    state = build_model(cfg).state_dict()
    seconds, iterations, values = [], [], []
    for noisy in noisy_states(cfg, n_checkpoints, seed):
        start = time.perf_counter()
        value, used = train_loss_sharpness(noisy, cfg, data)
        seconds.append(time.perf_counter() - start)
        iterations.append(used)
        values.append(value)
    n_params = sum(state[k].numel() for k in trainable_keys(cfg))
    return {
        "p": cfg.p,
        "d_model": cfg.d_model,
        "d_mlp": cfg.d_mlp,
        "n_params": int(n_params),
        "n_train": int(len(data.train_idx)),
        "n_checkpoints": n_checkpoints,
        "threads": torch.get_num_threads(),
        "tol": DEFAULT_TOL,
        "max_iter": DEFAULT_MAX_ITER,
        "s_per_checkpoint": float(np.mean(seconds)),
        "iterations": iterations,
        "s_per_hvp": float(sum(seconds) / max(sum(iterations), 1)),
        "values": values,
    }


def format_bench_sharpness(result: dict) -> str:
    return (
        f"sharpness benchmark, p={result['p']}, d_model={result['d_model']}, "
        f"d_mlp={result['d_mlp']}, {result['n_params']} trainable parameters, "
        f"{result['n_train']} training pairs, float64, {result['threads']} threads\n"
        f"  {result['s_per_checkpoint']:8.2f} s/checkpoint over {result['n_checkpoints']} "
        f"random-init checkpoints (power iterations {result['iterations']}, tol "
        f"{result['tol']:g}, at most {result['max_iter']})\n"
        f"  {result['s_per_hvp']:8.3f} s per Hessian-vector product; top eigenvalues "
        + ", ".join(f"{v:.4g}" for v in result["values"])
    )
