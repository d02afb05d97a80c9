"""StableMax, the softmax replacement of ``RunConfig.loss = "stablemax"``.

Prieto et al. (2025), "Grokking at the edge of numerical stability" (arXiv:2501.04697),
section 4; definition: docs/measures.md, "StableMax".  Softmax normalises exp(x); StableMax
normalises

    s(x) = x + 1        for x >= 0
    s(x) = 1 / (1 - x)  for x < 0,

which is continuous with continuous first derivative at 0, positive everywhere, and grows
linearly instead of exponentially, so the largest probability approaches 1 only as the
logits grow without bound, far past where a float32 softmax rounds to exactly one-hot:

    StableMax(x)_i = s(x_i) / sum_j s(x_j),   loss = -log StableMax(x)_label.
"""

from __future__ import annotations

import torch

__all__ = ["log_stablemax", "stablemax", "stablemax_cross_entropy", "stablemax_s"]


def stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """s(x): x + 1 where x >= 0, 1 / (1 - x) where x < 0 (elementwise).

    >>> stablemax_s(torch.tensor([-3.0, 0.0, 2.0])).tolist()
    [0.25, 1.0, 3.0]
    """
    # clamp the unused branch so neither branch divides by zero or overflows in autograd
    negative = 1 / (1 - x.clamp(max=0))
    return torch.where(x < 0, negative, x + 1)


def stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax probabilities along ``dim``: s(x) / sum s(x)."""
    s = stablemax_s(x)
    return s / s.sum(dim, keepdim=True)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax along ``dim``."""
    s = stablemax_s(x)
    return s.log() - s.sum(dim, keepdim=True).log()


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of -log StableMax(logits)_label: logits (N, p), labels (N,) -> scalar, in the
    logits' dtype."""
    logp = log_stablemax(logits, dim=-1)
    return -logp.gather(-1, labels[:, None]).mean()
