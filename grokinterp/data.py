"""The modular-arithmetic dataset: a pure function of (operation, p, frac_train, seed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokinterp.config import RunConfig


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All p^2 pairs in row-major order: index i is the pair (a, b) = (i // p, i % p)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def apply_operation(operation: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    if operation == "add":
        return (a + b) % p
    if operation == "sub":
        return (a - b) % p
    if operation == "mul":
        return (a * b) % p
    raise ValueError(f"unknown operation {operation!r}; allowed: 'add', 'sub', 'mul'")


def make_tokens(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """Token triples [a, b, '='] with '=' = token p.  Shape (N, 3)."""
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)


def split_indices(p: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of the p^2 pair indices; the first frac_train of it is train.

    Uses a local generator, so the global RNG is untouched. Indices are sorted within
    each split so a batch is in (a, b) order.
    """
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(p * p, generator=generator)
    n_train = int(frac_train * p * p)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


@dataclass(frozen=True)
class Dataset:
    """All p^2 examples and the split.  tokens: (p^2, 3), labels: (p^2,)."""

    tokens: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor

    @property
    def train_tokens(self) -> torch.Tensor:
        return self.tokens[self.train_idx]

    @property
    def train_labels(self) -> torch.Tensor:
        return self.labels[self.train_idx]

    @property
    def test_tokens(self) -> torch.Tensor:
        return self.tokens[self.test_idx]

    @property
    def test_labels(self) -> torch.Tensor:
        return self.labels[self.test_idx]


def make_dataset(cfg: RunConfig, train_idx: torch.Tensor | None = None) -> Dataset:
    """The full dataset for a config; pass ``train_idx`` to use a stored split."""
    a, b = all_pairs(cfg.p)
    tokens = make_tokens(a, b, cfg.p)
    labels = apply_operation(cfg.operation, a, b, cfg.p)
    if train_idx is None:
        train_idx, test_idx = split_indices(cfg.p, cfg.frac_train, cfg.data_seed)
    else:
        mask = torch.ones(cfg.p * cfg.p, dtype=torch.bool)
        mask[train_idx] = False
        test_idx = mask.nonzero().squeeze(1)
    return Dataset(tokens=tokens, labels=labels, train_idx=train_idx, test_idx=test_idx)
