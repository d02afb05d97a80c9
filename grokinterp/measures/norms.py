"""Weight norms: sum of squared weights, total and per tensor.

Definition: docs/measures.md, "Weight norms".

After memorisation the weight decay shrinks the norm about as exp(-lr wd t)
(Nanda et al. 2023, sections 5.1-5.2; the fit is
:func:`grokinterp.phases.fit_weight_decay`).
"""

from __future__ import annotations

import torch

# TransformerLens state-dict key -> the weight's TransformerLens property name
WEIGHT_NAMES = {
    "embed.weight": "W_E",
    "pos_embed.weight": "W_pos",
    "blocks.0.attn.q.weight": "W_Q",
    "blocks.0.attn.q.bias": "b_Q",
    "blocks.0.attn.k.weight": "W_K",
    "blocks.0.attn.k.bias": "b_K",
    "blocks.0.attn.v.weight": "W_V",
    "blocks.0.attn.v.bias": "b_V",
    "blocks.0.attn.o.weight": "W_O",
    "blocks.0.attn.o.bias": "b_O",
    "blocks.0.mlp.in.weight": "W_in",
    "blocks.0.mlp.in.bias": "b_in",
    "blocks.0.mlp.out.weight": "W_out",
    "blocks.0.mlp.out.bias": "b_out",
    "unembed.weight": "W_U",
    "unembed.bias": "b_U",
}


def weight_norms_sq(
    state: dict[str, torch.Tensor], n_batch_dims: int = 0
) -> dict[str, torch.Tensor]:
    """Sum of squares of every tensor of a state dict, and their total.

    state: TransformerLens state dict, each tensor with ``n_batch_dims`` leading batch axes.
    Returns {'total': (...), 'W_E': (...), ...} in float64, keyed by property name (unknown
    keys keep their state-dict name).
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        squares = tensor.double().pow(2)
        out[WEIGHT_NAMES.get(key, key)] = squares.flatten(n_batch_dims).sum(-1)
    out = {"total": sum(out.values()), **out}
    return out
