"""The modular-arithmetic dataset: a pure function of (operation, p, frac_train, seed).

The tokens and labels cover the whole grid of p^2 pairs in the order i = a*p + b; the
train and test splits partition the task's valid pairs (all of them, except for ``div``,
which leaves out b = 0; see :mod:`grokinterp.tasks` and docs/tasks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokinterp.config import RunConfig
from grokinterp.tasks import get_task


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All p^2 pairs in row-major order: index i is the pair (a, b) = (i // p, i % p)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def apply_operation(operation: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """The registered task's answers (:func:`grokinterp.tasks.get_task`)."""
    return get_task(operation).label(a, b, p)


def make_tokens(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """Token triples [a, b, '='] with '=' = token p.  Shape (N, 3)."""
    return torch.stack([a, b, torch.full_like(a, p)], dim=1)


def split_indices(
    p: int, frac_train: float, seed: int, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of the valid pair indices; the first frac_train of it is train.

    valid: (p^2,) bool mask of the valid pairs (None: all p^2, the add/sub/mul case).
    Uses a local generator, so the global RNG is untouched. Indices are sorted within
    each split so a batch is in (a, b) order.
    """
    generator = torch.Generator().manual_seed(seed)
    if valid is None or bool(valid.all()):
        perm = torch.randperm(p * p, generator=generator)
        n_train = int(frac_train * p * p)
    else:
        idx = valid.nonzero().squeeze(1)  # (n_valid,) grid indices
        perm = idx[torch.randperm(len(idx), generator=generator)]
        n_train = int(frac_train * len(idx))
    return perm[:n_train].sort().values, perm[n_train:].sort().values


@dataclass(frozen=True)
class Dataset:
    """All p^2 examples and the split.  tokens: (p^2, 3), labels: (p^2,).

    The splits hold only valid pairs; a label at a pair outside them (div's b = 0) is a
    placeholder that nothing reads.
    """

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

    @property
    def valid_idx(self) -> torch.Tensor:
        """The valid pairs (train and test), sorted grid indices."""
        return torch.cat([self.train_idx, self.test_idx]).sort().values


def make_dataset(cfg: RunConfig, train_idx: torch.Tensor | None = None) -> Dataset:
    """The full dataset for a config; pass ``train_idx`` to use a stored split."""
    task = get_task(cfg.operation)
    a, b = all_pairs(cfg.p)
    tokens = make_tokens(a, b, cfg.p)
    labels = task.label(a, b, cfg.p)
    valid = task.valid_mask(cfg.p)  # (p^2,) bool
    if train_idx is None:
        train_idx, test_idx = split_indices(cfg.p, cfg.frac_train, cfg.data_seed, valid)
    else:
        mask = valid.clone()
        mask[train_idx] = False
        test_idx = mask.nonzero().squeeze(1)
    return Dataset(tokens=tokens, labels=labels, train_idx=train_idx, test_idx=test_idx)
