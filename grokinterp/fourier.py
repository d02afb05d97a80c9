"""The Fourier basis of Z_n and the 2-D transforms built from it.

Definition: docs/measures.md, "Fourier basis of Z_p".

Rows of the basis ``F`` (n x n): the constant, then ``cos(2 pi k x / n)``,
``sin(2 pi k x / n)`` for k = 1 .. (n-1)//2, and, for even n only, the Nyquist row
``cos(pi x)`` (k = n/2, whose sine is identically 0), each normalised, so ``F`` is
orthonormal and ``F @ f`` gives the components of a function ``f`` of x in Z_n.  The 2-D
basis over (a, b) is ``F (x) F``; frequency k owns the 8 non-constant 2-D terms built only
from k (3 for the Nyquist frequency: cos a, cos b and their product).  n is p for the Z_p
tasks and p - 1 for the discrete-log basis of mul and div (docs/tasks.md).

The basis is built once per p (:func:`fourier_basis` is cached) and passed to the measures.

>>> basis = fourier_basis(5)
>>> basis.labels
('const', 'cos 1', 'sin 1', 'cos 2', 'sin 2')
>>> basis.freq_of_row.tolist()
[0, 1, 1, 2, 2]
>>> fourier_basis(4).labels
('const', 'cos 1', 'sin 1', 'cos 2')
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
        """Number of non-constant frequencies, p // 2 ((p - 1) / 2 for odd p)."""
        return self.p // 2

    @property
    def nyquist(self) -> int | None:
        """The Nyquist frequency p / 2 for even p (a cos row only), None for odd p."""
        return self.p // 2 if self.p % 2 == 0 else None

    def cos_rows(self, freqs: list[int] | tuple[int, ...]) -> torch.Tensor:
        """Indices of the cos rows of ``freqs`` (row 2k - 1 is cos k)."""
        return torch.tensor([2 * k - 1 for k in freqs], dtype=torch.long)

    def rows_of(self, freqs: list[int] | tuple[int, ...]) -> torch.Tensor:
        """Indices of the cos and sin rows of ``freqs``, in that order per frequency (the
        Nyquist frequency has its cos row only)."""
        return torch.tensor(
            [r for k in freqs for r in ((2 * k - 1,) if k == self.nyquist else (2 * k - 1, 2 * k))],
            dtype=torch.long,
        )

    def pair_matrix(self, freqs: list[int] | tuple[int, ...]) -> torch.Tensor:
        """(len(freqs), 2, p) float64: the cos and sin rows of each frequency, the sin row
        of the Nyquist frequency being 0 (so every frequency has two rows)."""
        if self.nyquist not in freqs:
            return self.matrix[self.rows_of(freqs)].unflatten(0, (len(freqs), 2))
        rows = [
            torch.stack([self.matrix[2 * k - 1], torch.zeros_like(self.matrix[0])])
            if k == self.nyquist
            else self.matrix[[2 * k - 1, 2 * k]]
            for k in freqs
        ]
        return torch.stack(rows)


@functools.lru_cache(maxsize=16)
def fourier_basis(p: int) -> FourierBasis:
    """The orthonormal Fourier basis of Z_p, p >= 2 (built once per p).

    For even p the last row is the Nyquist row cos(pi x) = (-1)^x, label ``cos p/2``.
    """
    if p < 2:
        raise ValueError(f"the Fourier basis needs p >= 2, got p={p}")
    x = torch.arange(p, dtype=torch.float64)
    rows, labels, freqs = [torch.ones(p, dtype=torch.float64)], ["const"], [0]
    for k in range(1, (p - 1) // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows += [torch.cos(angle), torch.sin(angle)]
        labels += [f"cos {k}", f"sin {k}"]
        freqs += [k, k]
    if p % 2 == 0:  # Nyquist: the sine row would be sin(pi x) = 0
        rows.append(torch.cos(math.pi * x).round())  # exactly (-1)^x
        labels.append(f"cos {p // 2}")
        freqs.append(p // 2)
    matrix = torch.stack(rows)
    matrix = matrix / matrix.norm(dim=1, keepdim=True)  # (p, p), orthonormal rows
    return FourierBasis(p=p, matrix=matrix, labels=tuple(labels), freq_of_row=torch.tensor(freqs))


def freq_norms(component_norms: torch.Tensor) -> torch.Tensor:
    """Group Fourier-component norms (..., p) by frequency -> (..., p // 2 + 1).

    Entry 0 is the constant component's norm; entry k is sqrt(|cos k|^2 + |sin k|^2)
    (|cos p/2| for the Nyquist frequency of an even p).
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
    constant of a times cos/sin of b, the 4 products; 3 terms for the Nyquist frequency of
    an even p).  k = 0: the constant-constant term.
    """
    freq = fourier_basis(p).freq_of_row
    fa, fb = freq[:, None], freq[None, :]
    mask = torch.zeros(p // 2 + 1, p, p, dtype=torch.bool)
    mask[0] = (fa == 0) & (fb == 0)
    for k in range(1, p // 2 + 1):
        mask[k] = ((fa == k) | (fa == 0)) & ((fb == k) | (fb == 0)) & ~mask[0]
    return mask


def freq_energy_pairs(x: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Squared norm of each column's components in each frequency's 2-D terms.

    x: (..., p^2, n), n functions of the pair i = a*p + b.  Returns (..., n, p//2 + 1) in
    float64: entry k >= 1 sums the squares of the 8 terms of frequency k, entry 0 is the
    constant-constant term; equal to summing ``fourier_2d(x)**2`` over
    :func:`freq_group_mask_2d` (tested), but computed from four 1-D marginals.

    Why that works: each of frequency k's 8 terms is a combination of cos/sin(w_k a),
    cos/sin(w_k b), cos/sin(w_k (a + b)) and cos/sin(w_k (a - b)), so, with the unnormalised
    DFT X[u, v], the 8 terms hold ``(2 / p^2)(|X[k,0]|^2 + |X[0,k]|^2 + |X[k,k]|^2 +
    |X[k,-k]|^2)`` (Parseval), and those four coefficients are the 1-D DFTs at k of the sums
    of x over b, over a, over a + b = s and over a - b = d.  Cost O(p^2 n), not O(p^3 n).
    For even p the Nyquist frequency k = p/2 = -k owns only the 3 coefficients X[k, 0],
    X[0, k] and X[k, k] = X[k, -k], each once: ``(1 / p^2)`` times their squares, with
    ``|DFT at p/2|^2 = p cos_{p/2}^2``, i.e. the squared cos components of the first three
    marginals over p.
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
    if p % 2 == 0:  # Nyquist: the a + b and a - b marginals give the same coefficient
        per_freq[..., -1] = comps[:3, ..., -1].pow(2).sum(0) / p
    return per_freq


def freq_norms_sq(components: torch.Tensor) -> torch.Tensor:
    """Group squared components (..., p) by frequency -> (..., p//2 + 1), sums of squares.

    For even p the last entry is the Nyquist cos row alone.
    """
    sq = components.pow(2)
    if sq.shape[-1] % 2 == 0:  # even p: constant, (cos k, sin k) pairs, Nyquist
        pairs = sq[..., 1:-1].unflatten(-1, (-1, 2)).sum(-1)
        return torch.cat([sq[..., :1], pairs, sq[..., -1:]], dim=-1)
    return torch.cat([sq[..., :1], sq[..., 1:].unflatten(-1, (-1, 2)).sum(-1)], dim=-1)


def freq_energy_2d(x: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """:func:`freq_energy_pairs` for functions on the (a, b) grid: (..., p, p) -> (..., p//2+1)."""
    return freq_energy_pairs(x.flatten(-2).unsqueeze(-1), basis).squeeze(-2)
