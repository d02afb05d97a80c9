"""Softmax collapse and the logit scale.

Prieto, Barsbey, Mediano and Birdal (2025), "Grokking at the edge of numerical stability"
(arXiv:2501.04697), section 3, and their code (the repository
LucasPrietoAl/grokking-at-the-edge-of-numerical-stability, ``logger.py``,
``compute_softmax_collapse``).  Definitions: docs/measures.md, "Softmax collapse".

Once the correct logit exceeds the others by more than about 17 (float32), every
exp(x_j - x_max) but the largest rounds away against 1, the float32 softmax is exactly
one-hot, the cross-entropy of that sample is exactly 0 and so is its gradient: learning
from it stops.

- **collapse fraction**: the fraction of samples whose float32 softmax is exactly one-hot
  at the correct label: the label is the argmax and the float32 sum of exp(x_j - x_max)
  equals 1 exactly (the reference's test, restricted to samples classified correctly).
- **logit scale**: the mean over samples of the largest logit.
"""

from __future__ import annotations

import torch

__all__ = ["collapse_fraction", "logit_scale", "softmax_collapsed"]


def softmax_collapsed(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample, True where the float32 softmax is exactly one-hot at the label.

    logits (..., N, p), labels (N,) -> (..., N) bool.  The logits are rounded to float32
    first (the training loss's precision in Prieto et al.).

    >>> softmax_collapsed(torch.tensor([[30.0, 0.0, 0.0], [10.0, 0.0, 0.0]]),
    ...                   torch.tensor([0, 0])).tolist()
    [True, False]
    """
    x = logits.float()
    top = x.amax(-1, keepdim=True)
    one = torch.exp(x - top).sum(-1) == 1  # every other term lost against the max's 1
    return one & (x.argmax(-1) == labels)


def collapse_fraction(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of the N samples with a collapsed softmax: (..., N, p) -> (...) float64."""
    return softmax_collapsed(logits, labels).double().mean(-1)


def logit_scale(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the N samples of the largest logit: (..., N, p) -> (...) float64."""
    return logits.double().amax(-1).mean(-1)
