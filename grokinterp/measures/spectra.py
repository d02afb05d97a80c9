"""Fourier spectra of the embedding and of the neuron-logit map.

Definition: docs/measures.md, "Embedding and W_L spectra".

Nanda et al. (2023), section 4: the embedding W_E and the neuron-logit map
W_L = W_out @ W_U become sparse in the Fourier basis, each using only the key frequencies.
"""

from __future__ import annotations

import torch

from grokinterp.fourier import FourierBasis


def embedding_components(W_E: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Norms of the rows of ``F @ W_E[:p]``: one norm per Fourier component.

    W_E: (..., d_vocab, d_model) (the '=' row, if present, is dropped) -> (..., p), in
    basis-row order (constant, cos 1, sin 1, ...).  Group by frequency with
    :func:`grokinterp.fourier.freq_norms`.
    """
    p = basis.p
    f = basis.matrix.to(W_E.dtype)
    return torch.einsum("kt,...td->...kd", f, W_E[..., :p, :]).norm(dim=-1)


def neuron_logit_map(W_out: torch.Tensor, W_U: torch.Tensor) -> torch.Tensor:
    """W_L = W_out @ W_U: how each neuron writes to each output logit.

    W_out: (..., d_mlp, d_model), W_U: (..., d_model, p) -> (..., d_mlp, p).
    """
    return W_out @ W_U


def wl_components(W_L: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Norms of W_L's Fourier components along the output index.

    W_L: (..., d_mlp, p).  Each output-side component c is ``W_L @ F[c]`` (a d_mlp-vector);
    returns its norm, (..., p) in basis-row order.
    """
    f = basis.matrix.to(W_L.dtype)
    return torch.einsum("...nt,kt->...kn", W_L, f).norm(dim=-1)
