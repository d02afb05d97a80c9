"""Logit structure: variance explained by cos(w_k(a + b - c)).

Definition: docs/measures.md, "Logit structure".

Nanda et al. (2023), section 4.1: the trained model's logits are close to
``sum_k alpha_k cos(w_k (a + b - c))`` over the key frequencies.

Definition used here.  Softmax ignores a shift of all logits of one input, so the logits
are first centred over the output c for each input: ``Lc[a, b, c] = L[a, b, c] -
mean_c' L[a, b, c']``.  The directions ``u_k[a, b, c] = cos(w_k (s(a, b) - c))`` (one p^3
pattern per key frequency, zero-mean over c, mutually orthogonal for distinct k) span a
subspace; the fraction explained by k is ``<Lc, u_k>^2 / (|u_k|^2 |Lc|^2)`` and the fraction
explained by the key frequencies is the sum over k (the squared norm of Lc's projection onto
their span over |Lc|^2).  It is 1 exactly when the centred logits are a combination of the
u_k.
"""

from __future__ import annotations

import math

import torch

from grokinterp.measures.losses import logits_by_sum


def logit_explained_variance(
    logits: torch.Tensor,
    s: torch.Tensor,
    p: int,
    freqs: list[int] | tuple[int, ...],
    by_sum: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fraction of the centred logits' variance along cos(w_k(s - c)), per frequency.

    logits: (..., p^2, p), s: (p^2,) the pair's s(a, b) -> (..., len(freqs)) float64.
    In a basis of Z_n (the discrete log, p = n = p_task - 1) pass the logits of the n^2
    basis pairs and n classes in group coordinates; an even n's Nyquist frequency n/2 is
    allowed.
    ``by_sum``: ``logits_by_sum(logits, s, p)`` if already computed.
    """
    x = logits.double()
    centred_sq = x.pow(2).sum((-2, -1)) - p * x.mean(-1).pow(2).sum(-1)  # |Lc|^2, (...)
    if by_sum is None:
        by_sum = logits_by_sum(x, s, p)
    by_sum = by_sum - by_sum.mean(-1, keepdim=True)  # T of the centred logits
    out = []
    idx = torch.arange(p, dtype=torch.float64)
    for k in freqs:
        w = 2 * math.pi * k / p
        pattern = torch.cos(w * (idx[:, None] - idx[None, :]))  # (p_s, p_c): cos(w (s - c))
        inner = p * (by_sum * pattern).sum((-2, -1))  # <Lc, u_k>: each s has p pairs
        norm_sq = p**3 if 2 * k == p else p**3 / 2  # |u_k|^2; Nyquist: cos^2 = 1 everywhere
        out.append(inner.pow(2) / norm_sq / centred_sq)
    if not out:
        return x.new_zeros(*x.shape[:-2], 0)
    return torch.stack(out, dim=-1)


def logits_along_sum(logits: torch.Tensor, s: torch.Tensor, n: int) -> torch.Tensor:
    """Mean centred logit against d = (s - z) mod n: (..., n^2, n) -> (..., n) float64.

    logits: the logits of the n^2 basis pairs over the n classes, both in group coordinates
    (for Z_p, all p^2 pairs i = a*p + b and the p classes, with s = a + b or a - b mod p;
    for the discrete log, the pairs and classes != 0 in log order); s: (n^2,) each pair's
    s.  Logits that are a sum of cos(w_k (s - z)) depend on (pair, class) only through d
    and peak at d = 0, the right answer: this curve shows that shape.
    """
    x = logits.double()
    centred = x - x.mean(-1, keepdim=True)  # (..., n^2, n), centred over the classes
    d = (s[:, None] - torch.arange(n)[None, :]) % n  # (n^2, n)
    out = x.new_zeros(*x.shape[:-2], n)
    return out.index_add_(-1, d.flatten(), centred.flatten(-2)) / n**2
