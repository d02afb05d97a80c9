"""Benchmark of training: epochs per second of the fast path against the loop of the
TransformerLens grokking demo (the plain forward on all positions, test loss every epoch)."""

from __future__ import annotations

import time

import torch

from grokinterp.config import RunConfig
from grokinterp.data import make_dataset
from grokinterp.measures.losses import training_loss
from grokinterp.training import Trainer, deterministic_algorithms

__all__ = ["bench_train", "format_bench_train", "time_epochs"]


def _reference_epoch(trainer: Trainer, epoch: int) -> None:
    """One epoch as the TransformerLens grokking demo runs it: the plain forward on all
    positions, and the test loss evaluated every epoch."""
    lr = trainer.cfg.lr
    logits = trainer.model(trainer.train_tokens)[:, -1]
    loss = training_loss(logits, trainer.train_labels, trainer.loss_dtype)
    trainer.optimizer_step(loss, lr)
    with torch.no_grad():
        test_logits = trainer.model(trainer.test_tokens)[:, -1]
        training_loss(test_logits, trainer.test_labels, trainer.loss_dtype).item()


def time_epochs(step, n_epochs: int, warmup: int) -> float:
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
    with deterministic_algorithms():  # as grokinterp.training.train runs
        fast = Trainer(cfg.replace(fast_path=True), data)
        fast_rate = time_epochs(
            lambda e: fast.epoch(e, evaluate=e % cfg.eval_every == 0), n_epochs, warmup
        )
        reference = Trainer(cfg.replace(fast_path=False), data)
        ref_rate = time_epochs(lambda e: _reference_epoch(reference, e), n_epochs, warmup)
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
