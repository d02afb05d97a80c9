"""The Fourier basis of Z_p and the 2-D transforms built from it.

Definition: docs/measures.md, "Fourier basis of Z_p".

Rows of the basis ``F`` (p x p): the constant, then ``cos(2 pi k x / p)``,
``sin(2 pi k x / p)`` for k = 1 .. (p-1)/2, each normalised, so ``F`` is orthonormal and
``F @ f`` gives the components of a function ``f`` of x in Z_p.  The 2-D basis over (a, b)
is ``F (x) F``; frequency k owns the 8 non-constant 2-D terms built only from k.

The basis is built once per p (:func:`fourier_basis` is cached) and passed to the measures.

>>> basis = fourier_basis(5)
>>> basis.labels
('const', 'cos 1', 'sin 1', 'cos 2', 'sin 2')
>>> basis.freq_of_row.tolist()
[0, 1, 1, 2, 2]
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

__all__ = [
    "FourierBasis",
    "fourier_basis",
    "fourier_2d",
    "freq_energy_2d",
    "freq_group_mask_2d",
    "freq_energy_pairs",
    "freq_norms",
    "freq_norms_sq",
]


@dataclass(frozen=True)
class FourierBasis:
    """The orthonormal Fourier basis of Z_p.  Treat the tensors as read-only (shared).

    matrix: (p, p) float64, rows as in the module docstring.
    freq_of_row: (p,) long, 0 for the constant row and k for the cos k / sin k rows.
    """

    p: int
    matrix: torch.Tensor
    labels: tuple[str, ...]
    freq_of_row: torch.Tensor

    @property
    def n_freqs(self) -> int:
        """Number of non-constant frequencies, (p - 1) / 2."""
        return (self.p - 1) // 2

    def cos_rows(self, freqs: list[int] | tuple[int, ...]) -> torch.Tensor:
        """Indices of the cos rows of ``freqs`` (row 2k - 1 is cos k)."""
        return torch.tensor([2 * k - 1 for k in freqs], dtype=torch.long)

    def rows_of(self, freqs: list[int] | tuple[int, ...]) -> torch.Tensor:
        """Indices of the cos and sin rows of ``freqs``, in that order per frequency."""
        return torch.tensor([r for k in freqs for r in (2 * k - 1, 2 * k)], dtype=torch.long)


@functools.lru_cache(maxsize=16)
def fourier_basis(p: int) -> FourierBasis:
    """The orthonormal Fourier basis of Z_p for odd p (built once per p)."""
    if p < 3 or p % 2 == 0:
        raise ValueError(f"the Fourier basis needs an odd p >= 3 (no Nyquist row), got p={p}")
    x = torch.arange(p, dtype=torch.float64)
    rows, labels, freqs = [torch.ones(p, dtype=torch.float64)], ["const"], [0]
    for k in range(1, (p - 1) // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows += [torch.cos(angle), torch.sin(angle)]
        labels += [f"cos {k}", f"sin {k}"]
        freqs += [k, k]
    matrix = torch.stack(rows)
    matrix = matrix / matrix.norm(dim=1, keepdim=True)  # (p, p), orthonormal rows
    return FourierBasis(p=p, matrix=matrix, labels=tuple(labels), freq_of_row=torch.tensor(freqs))


def freq_norms(component_norms: torch.Tensor) -> torch.Tensor:
    """Group Fourier-component norms (..., p) by frequency -> (..., (p+1)/2).

    Entry 0 is the constant component's norm; entry k is sqrt(|cos k|^2 + |sin k|^2).
    """
    return freq_norms_sq(component_norms).sqrt()


def fourier_2d(x: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Components of functions of (a, b) in the basis F (x) F: ``F x F^T``.

    x: (..., p, p) indexed [a, b] -> (..., p, p) indexed [row of F for a, row of F for b].
    """
    f = basis.matrix.to(x.dtype)
    return torch.einsum("ia,...ab,jb->...ij", f, x, f)


@functools.lru_cache(maxsize=16)
def freq_group_mask_2d(p: int) -> torch.Tensor:
    """(K+1, p, p) bool: entry [k] marks the 2-D terms of frequency k in ``fourier_2d``.

    k >= 1: the 8 terms built only from k (cos/sin of a times the constant of b, the
    constant of a times cos/sin of b, the 4 products).  k = 0: the constant-constant term.
    """
    freq = fourier_basis(p).freq_of_row
    fa, fb = freq[:, None], freq[None, :]
    mask = torch.zeros((p + 1) // 2, p, p, dtype=torch.bool)
    mask[0] = (fa == 0) & (fb == 0)
    for k in range(1, (p + 1) // 2):
        mask[k] = ((fa == k) | (fa == 0)) & ((fb == k) | (fb == 0)) & ~mask[0]
    return mask


def freq_energy_pairs(x: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Squared norm of each column's components in each frequency's 2-D terms.

    x: (..., p^2, n), n functions of the pair i = a*p + b.  Returns (..., n, (p+1)/2) in
    float64: entry k >= 1 sums the squares of the 8 terms of frequency k, entry 0 is the
    constant-constant term; equal to summing ``fourier_2d(x)**2`` over
    :func:`freq_group_mask_2d` (tested), but computed from four 1-D marginals.

    Why that works: each of frequency k's 8 terms is a combination of cos/sin(w_k a),
    cos/sin(w_k b), cos/sin(w_k (a + b)) and cos/sin(w_k (a - b)), so, with the unnormalised
    DFT X[u, v], the 8 terms hold ``(2 / p^2)(|X[k,0]|^2 + |X[0,k]|^2 + |X[k,k]|^2 +
    |X[k,-k]|^2)`` (Parseval), and those four coefficients are the 1-D DFTs at k of the sums
    of x over b, over a, over a + b = s and over a - b = d.  Cost O(p^2 n), not O(p^3 n).
    """
    p = basis.p
    x2 = x.unflatten(-2, (p, p))  # (..., p_a, p_b, n)
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    shape = (*x.shape[:-2], p, x.shape[-1])
    marginals = torch.stack(
        [
            x2.sum(-2),  # over b: a function of a
            x2.sum(-3),  # over a: a function of b
            x.new_zeros(shape).index_add_(-2, (a + b) % p, x),  # over a + b = s
            x.new_zeros(shape).index_add_(-2, (a - b) % p, x),  # over a - b = d
        ]
    ).double()  # (4, ..., p, n)
    comps = torch.einsum("rt,m...tn->m...nr", basis.matrix, marginals)  # (4, ..., n, p)
    # |DFT at k|^2 = (p / 2)(cos_k^2 + sin_k^2) with orthonormal rows; then times 2 / p^2
    per_freq = freq_norms_sq(comps).sum(0) / p  # (..., n, K+1)
    per_freq[..., 0] = comps[0, ..., 0] ** 2 / p  # the constant term: from one marginal only
    return per_freq


def freq_norms_sq(components: torch.Tensor) -> torch.Tensor:
    """Group squared components (..., p) by frequency -> (..., (p+1)/2), sums of squares."""
    sq = components.pow(2)
    return torch.cat([sq[..., :1], sq[..., 1:].unflatten(-1, (-1, 2)).sum(-1)], dim=-1)


def freq_energy_2d(x: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """:func:`freq_energy_pairs` for functions on the (a, b) grid: (..., p, p) -> (..., (p+1)/2)."""
    return freq_energy_pairs(x.flatten(-2).unsqueeze(-1), basis).squeeze(-2)
