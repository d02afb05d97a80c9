"""Benchmarks: training (fast path vs the TransformerLens-demo loop), analysis, watching,
sharpness.

Analysis: the batched checkpoint path against a per-checkpoint hooked loop.

Both compute every registered measure for the same checkpoints in this process: the
batched path stacks ``chunk_size`` checkpoints and runs :func:`grokinterp.batched.last_position`
once per chunk; the reference loads each checkpoint as a TransformerLens model
(``run.model_at``) and reads activations with ``run_with_cache`` over all p^2 inputs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from grokinterp import files
from grokinterp.analysis import DEFAULT_CHUNK, measure_batched, measure_hooked
from grokinterp.config import RunConfig
from grokinterp.data import make_dataset
from grokinterp.model import build_model
from grokinterp.run import Run, load_run
from grokinterp.storage import atomic_write_text, metrics_header, save_tensors, write_json
from grokinterp.train import Trainer, cross_entropy, deterministic_algorithms

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


def write_random_run(cfg: RunConfig, out_dir: str | Path, n_checkpoints: int, seed: int = 0) -> Run:
    """A run directory whose checkpoints are the initial weights, shrunk and perturbed.

    For benchmarks and tests that need checkpoints without training; the metrics file
    holds only its header.
    """
    out = Path(out_dir)
    data = make_dataset(cfg)
    atomic_write_text(out / files.CONFIG, cfg.to_json() + "\n")
    write_json(out / files.SPLIT, {"train_idx": data.train_idx.tolist()})
    atomic_write_text(out / files.METRICS, metrics_header())
    state = build_model(cfg).state_dict()
    gen = torch.Generator().manual_seed(seed)
    epochs = np.unique(np.linspace(0, cfg.epochs, n_checkpoints).round().astype(int))
    for i, epoch in enumerate(epochs.tolist()):
        scale = 1.0 - 0.5 * i / max(len(epochs) - 1, 1)
        noisy = {
            k: scale * v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in state.items()
        }
        meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(epoch)}
        save_tensors(files.checkpoint_path(out, epoch), noisy, meta)
    return load_run(out)


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
        measure_batched(run, epochs[:1], key_freqs)  # warm-up (allocations, thread pool)

        start = time.perf_counter()
        batched = measure_batched(run, epochs, key_freqs, chunk_size=chunk_size)
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


def _reference_epoch(trainer: Trainer, epoch: int) -> None:
    """One epoch as the TransformerLens grokking demo runs it: the plain forward on all
    positions, and the test loss evaluated every epoch."""
    lr = trainer.cfg.lr
    logits = trainer.model(trainer.train_tokens)[:, -1]
    loss = cross_entropy(logits, trainer.train_labels, trainer.loss_dtype)
    trainer._step(loss, lr)
    with torch.no_grad():
        test_logits = trainer.model(trainer.test_tokens)[:, -1]
        cross_entropy(test_logits, trainer.test_labels, trainer.loss_dtype).item()


def _time_epochs(step, n_epochs: int, warmup: int) -> float:
    for epoch in range(warmup):
        step(epoch)
    start = time.perf_counter()
    for epoch in range(warmup, warmup + n_epochs):
        step(epoch)
    return n_epochs / (time.perf_counter() - start)


def bench_train(cfg: RunConfig | None = None, n_epochs: int = 100, warmup: int = 5) -> dict:
    """Epochs per second of both loops, measured in this process, and their ratio.

    Neither writes checkpoints: this measures the arithmetic of training only.
    """
    cfg = cfg or RunConfig()
    data = make_dataset(cfg)
    with deterministic_algorithms():  # as grokinterp.train.train runs
        fast = Trainer(cfg.replace(fast_path=True), data)
        fast_rate = _time_epochs(
            lambda e: fast.epoch(e, evaluate=e % cfg.eval_every == 0), n_epochs, warmup
        )
        reference = Trainer(cfg.replace(fast_path=False), data)
        ref_rate = _time_epochs(lambda e: _reference_epoch(reference, e), n_epochs, warmup)
    return {
        "p": cfg.p,
        "epochs_timed": n_epochs,
        "threads": torch.get_num_threads(),
        "fast_epochs_per_s": fast_rate,
        "reference_epochs_per_s": ref_rate,
        "speedup": fast_rate / ref_rate,
    }


def format_bench_train(result: dict) -> str:
    return (
        f"train benchmark, p={result['p']}, {result['epochs_timed']} epochs each, "
        f"{result['threads']} threads\n"
        f"  fast path (last position, eval every {RunConfig().eval_every} epochs): "
        f"{result['fast_epochs_per_s']:8.2f} epochs/s\n"
        f"  reference (TL forward on all positions, test loss every epoch):   "
        f"{result['reference_epochs_per_s']:8.2f} epochs/s\n"
        f"  speedup: {result['speedup']:.2f}x"
    )


def bench_watch(cfg: RunConfig | None = None, n_checkpoints: int = 32) -> dict:
    """Seconds per ``grokinterp watch`` iteration on random-weight checkpoints (default p=113).

    Times the iterations a watcher meets: the first (every checkpoint but the last
    analysed, report written), one new checkpoint landing (incremental), one whose key
    frequencies changed (their three measures recomputed at every checkpoint), and an
    idle poll (nothing new).  HTML only, as the watcher writes.  Reports wall seconds
    (analysis and report) and the process's CPU seconds, which a machine shared with
    other work changes less.
    """
    from grokinterp.watch import _open, _training_finished, watch

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
            opened, _ = _open(run.path)
            _training_finished(opened)
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
    gen = torch.Generator().manual_seed(seed)
    seconds, iterations, values = [], [], []
    for i in range(n_checkpoints):
        scale = 1.0 - 0.5 * i / max(n_checkpoints - 1, 1)
        noisy = {
            k: scale * v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in state.items()
        }
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
