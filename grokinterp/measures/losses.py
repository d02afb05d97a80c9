"""Losses and the Fourier-restricted and -excluded logits.

Definitions: docs/measures.md, "Restricted loss", "Excluded loss" and "Plain curves".

Nanda et al. (2023), section 5.1.  The final-position logits, seen as p functions of the
input pair (one per output c), are split into their component along the key-frequency
directions cos(w_k s), sin(w_k s) with ``s = a + b mod p`` and ``w_k = 2 pi k / p``, and
the rest.  These p^2-vectors are orthogonal to each other and to the constant, and each
value of s is hit by exactly p pairs, so the projection of a logit column L[:, c] onto them
is the projection of T[s, c] = mean of L over the pairs with that s (:func:`logits_by_sum`)
onto the same directions in Z_p, read back at s(a, b).

- Restricted logits: the projection plus each output's mean over (a, b).
- Excluded logits: the logits minus the projection (no mean added back).

All in float64: the losses after memorisation are far below float32's resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grokinterp.fourier import FourierBasis
from grokinterp.measures.stablemax import stablemax_cross_entropy
from grokinterp.tasks import get_task


def pair_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each pair in float64: logits (..., N, p), labels (N,) -> (..., N)."""
    logp = logits.double().log_softmax(dim=-1)
    index = labels.expand(*logp.shape[:-1]).unsqueeze(-1)
    return -logp.gather(-1, index).squeeze(-1)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in float64: logits (..., N, p), labels (N,) -> (...)."""
    return pair_cross_entropy(logits, labels).mean(-1)


def training_loss(
    logits: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype, loss: str = "softmax"
) -> torch.Tensor:
    """The training objective: mean cross-entropy of logits (N, p), computed in ``dtype``
    (``RunConfig.loss_dtype``; float64 by default: the tiny losses after memorisation
    underflow in float32, as Nanda et al. note).  torch's fused kernel, for autograd;
    the measures use :func:`cross_entropy`, always float64.  ``loss`` (``RunConfig.loss``):
    "softmax" (cross-entropy) or "stablemax" (:func:`~grokinterp.measures.stablemax.
    stablemax_cross_entropy`, the same negative log-likelihood with StableMax)."""
    if loss == "stablemax":
        return stablemax_cross_entropy(logits.to(dtype), labels)
    return F.cross_entropy(logits.to(dtype), labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of argmax hits: logits (..., N, p), labels (N,) -> (...) float64."""
    return (logits.argmax(dim=-1) == labels).double().mean(-1)


def sum_index(p: int, operation: str = "add") -> torch.Tensor:
    """s(a, b) for the p^2 pairs i = a*p + b: (a + b) mod p, or (a - b) mod p for 'sub'.

    The key-frequency directions are cos/sin(w_k s); over the grid of all p^2 pairs they
    are defined for the tasks whose basis is Z_p itself.  For mul and div, s lives on the
    basis pairs in discrete-log coordinates: use ``get_task(op).basis(p).s``.
    """
    basis = get_task(operation).basis(p)
    if basis is None or basis.pairs is not None:
        raise ValueError(
            f"the key-frequency directions cos/sin(w_k s) over all p^2 pairs are defined for "
            f"operation 'add' or 'sub', not {operation!r} (see grokinterp.tasks)"
        )
    return basis.s


def logits_by_sum(logits: torch.Tensor, s: torch.Tensor, p: int) -> torch.Tensor:
    """T[s, c]: mean of the logits over the p pairs with s(a, b) = s, in float64.

    logits: (..., p^2, p_out), s: (p^2,) -> (..., p, p_out).
    """
    x = logits.double()
    out = x.new_zeros(*x.shape[:-2], p, x.shape[-1])
    return out.index_add_(-2, s, x) / p


def freq_projections(
    by_sum: torch.Tensor, basis: FourierBasis, freqs: list[int] | tuple[int, ...]
) -> torch.Tensor:
    """Component of T (a function of s) along cos/sin(w_k s), separately for each k.

    by_sum: (..., p, p_out) from :func:`logits_by_sum` -> (..., len(freqs), p, p_out).
    The projection of the logits themselves is ``result[..., j, s(a, b), :]``.
    """
    if not freqs:
        return by_sum.new_zeros(*by_sum.shape[:-2], 0, *by_sum.shape[-2:])
    f = basis.pair_matrix(freqs).to(by_sum.dtype)  # (K, 2, p); Nyquist: sin row 0
    coef = torch.einsum("kjs,...sc->...kjc", f, by_sum)  # (..., K, 2, p_out)
    return torch.einsum("kjs,...kjc->...ksc", f, coef)


def _projections(
    x: torch.Tensor, s: torch.Tensor, basis: FourierBasis, freqs, projections
) -> torch.Tensor:
    if projections is None:
        projections = freq_projections(logits_by_sum(x, s, basis.p), basis, freqs)
    return projections


def restricted_logit_table(
    logits: torch.Tensor,
    s: torch.Tensor,
    basis: FourierBasis,
    freqs: list[int] | tuple[int, ...],
    projections: torch.Tensor | None = None,
) -> torch.Tensor:
    """The restricted logits as a function of s: (..., p^2, p) -> (..., p, p) float64.

    The logits' projection onto the key-frequency directions depends on the pair only
    through s, and so do the restricted logits: row s holds those of every pair with that
    s (:func:`restricted_logits` reads them back per pair).  ``projections``: the
    :func:`freq_projections` of these logits, if already computed.
    """
    x = logits.double()
    return _projections(x, s, basis, freqs, projections).sum(-3) + x.mean(dim=-2, keepdim=True)


def restricted_logits(
    logits: torch.Tensor, s: torch.Tensor, basis: FourierBasis, freqs: list[int] | tuple[int, ...]
) -> torch.Tensor:
    """The logits' projection onto the key-frequency directions plus each output's mean.

    logits: (..., p^2, p) -> (..., p^2, p) float64.  Cross-entropy on all pairs (and on the
    train and test pairs) is the restricted loss (:func:`restricted_loss`).
    """
    return restricted_logit_table(logits, s, basis, freqs)[..., s, :]


def restricted_loss(table: torch.Tensor, s: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The restricted loss: float64 cross-entropy of the restricted logits of the pairs with
    sums ``s`` (N,) and ``labels`` (N,), from their :func:`restricted_logit_table` (..., p, p).

    Equal to ``cross_entropy(restricted_logits(...), labels)`` on those pairs; the
    log-softmax is taken once per s instead of once per pair.
    """
    return -table.log_softmax(dim=-1)[..., s, labels].mean(-1)


def excluded_logits(
    logits: torch.Tensor,
    s: torch.Tensor,
    basis: FourierBasis,
    freqs: list[int] | tuple[int, ...],
    projections: torch.Tensor | None = None,
) -> torch.Tensor:
    """The logits minus their projection onto the key-frequency directions (no mean added).

    logits: (..., p^2, p) -> (..., p^2, p) float64.  Cross-entropy on the training pairs is
    the excluded loss; with no frequencies it is the training loss.  ``projections``: the
    :func:`freq_projections` (..., K, p, p) to remove, if already computed (for example of
    all pairs, with ``logits`` and ``s`` those of the training pairs only).
    """
    x = logits.double()
    return x - _projections(x, s, basis, freqs, projections).sum(-3)[..., s, :]
