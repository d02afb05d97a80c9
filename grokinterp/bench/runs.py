"""Run directories without training, for benchmarks and tests: random weights that shrink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from grokinterp.config import RunConfig
from grokinterp.data import make_dataset
from grokinterp.model import build_model
from grokinterp.run import Run, load_run, save_checkpoint, write_run_files

__all__ = ["noisy_states", "write_random_run"]


def noisy_states(cfg: RunConfig, n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``n`` copies of the initial weights, the i-th scaled by 1 - i / (2 (n - 1)) and
    perturbed by N(0, 0.02^2) noise (a seeded generator)."""
    state = build_model(cfg).state_dict()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        scale = 1.0 - 0.5 * i / max(n - 1, 1)
        out.append(
            {k: scale * v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in state.items()}
        )
    return out


def write_random_run(cfg: RunConfig, out_dir: str | Path, n_checkpoints: int, seed: int = 0) -> Run:
    """A run directory whose checkpoints are the initial weights, shrunk and perturbed
    (:func:`noisy_states`), written through the run writer
    (:func:`grokinterp.run.write_run_files`, :func:`grokinterp.run.save_checkpoint`).

    For benchmarks and tests that need checkpoints without training; the metrics file
    holds only its header.
    """
    out = Path(out_dir)
    write_run_files(out, cfg, make_dataset(cfg).train_idx)
    epochs = np.unique(np.linspace(0, cfg.epochs, n_checkpoints).round().astype(int))
    for epoch, state in zip(epochs.tolist(), noisy_states(cfg, len(epochs), seed), strict=True):
        save_checkpoint(out, epoch, state)
    return load_run(out)
