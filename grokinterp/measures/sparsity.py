"""Sparsity of a spectrum: the Gini coefficient (docs/measures.md, "Gini sparsity").

Nanda et al. (2023) track the Gini coefficient of the Fourier-component norms of W_E and
W_L: it rises as the model concentrates its weights on a few key frequencies.
"""

from __future__ import annotations

import torch


def gini(x: torch.Tensor) -> torch.Tensor:
    """Gini coefficient of non-negative values along the last axis.

    With x sorted ascending, ``G = sum_i (2i - n - 1) x_i / (n sum_i x_i)`` for i = 1..n:
    0 for an all-equal vector, 1 - 1/n for a one-hot vector; 0 for an all-zero vector.

    >>> float(gini(torch.tensor([0.0, 0.0, 3.0])))  # doctest: +ELLIPSIS
    0.666...
    """
    x = x.double()
    n = x.shape[-1]
    xs = x.sort(dim=-1).values
    i = torch.arange(1, n + 1, dtype=x.dtype)
    total = xs.sum(-1)
    g = ((2 * i - n - 1) * xs).sum(-1) / (n * total)
    return torch.where(total > 0, g, torch.zeros_like(g))
