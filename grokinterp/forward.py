"""The one last-position forward pass, for training and for analysis.

The model sees [a, b, '='] and is read only at '=' (position 2).  The query there always
sees the same token, so the query, and the keys and values of each (position, token), are
small tables; attention, the MLP and the unembedding then run for one position per input
instead of three.

:func:`last_position` takes TransformerLens-keyed weights (``embed.weight``,
``blocks.0.attn.q.weight``, ..., ``unembed.weight``; nn.Linear layout (out, in)):

- training passes the model's own Parameters (:func:`grokinterp.model.tl_parameters`),
  so autograd flows, and the training pairs (a, b);
- analysis passes state dicts stacked on a leading checkpoint axis C
  (:func:`grokinterp.batched.stack_states`) and all p^2 pairs, and asks for the MLP
  activations and the attention pattern too.

Without a leading axis every linear map is ``F.linear``, the training op: the training
trajectory does not depend on this module serving analysis as well.  The tests check it
against ``model(tokens)[:, -1]`` and TransformerLens' ``run_with_cache`` hooks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import einops
import torch
import torch.nn.functional as F

__all__ = ["LastPosition", "last_position"]


@dataclass(frozen=True)
class LastPosition:
    """Activations at '=' for N inputs, with the weights' leading axes (C for a stack).

    logits: (..., N, p); post: (..., N, d_mlp) post-activation MLP neurons;
    pattern: (..., N, n_heads, 3) attention from '=' to (a, b, '=').  ``post`` and
    ``pattern`` are None unless asked for.
    """

    logits: torch.Tensor
    post: torch.Tensor | None = None
    pattern: torch.Tensor | None = None


def _linear(weights: Mapping[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    """x @ W^T + b for the nn.Linear ``name``; W (out, in), or (C, out, in) stacked."""
    weight = weights[f"{name}.weight"]
    bias = weights.get(f"{name}.bias")
    if weight.dim() == 2:
        return F.linear(x, weight, bias)  # training (and one checkpoint)
    out = torch.einsum("c...i,coi->c...o", x, weight)  # x (C, ..., in) -> (C, ..., out)
    if bias is not None:
        out = out + bias.view(bias.shape[0], *([1] * (out.dim() - 2)), bias.shape[-1])
    return out


def last_position(
    weights: Mapping[str, torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    n_heads: int,
    act_fn: str = "relu",
    activations: bool = False,
) -> LastPosition:
    """Logits at '=' for inputs [a, b, '='] (and, if ``activations``, post and pattern).

    weights: TransformerLens-keyed tensors, each (..., out, in) with the same leading axes
    (none, or C checkpoints); ``unembed.bias`` and any other bias may be absent.
    a, b: (N,) token indices.  Equals ``model(make_tokens(a, b, p))[:, -1]`` per checkpoint.
    """
    W_E, W_pos = weights["embed.weight"], weights["pos_embed.weight"]  # (..., V, d), (..., 3, d)
    p = weights["unembed.weight"].shape[-2]
    d_head = weights["blocks.0.attn.q.weight"].shape[-2] // n_heads
    n = a.shape[0]

    resid_a = W_E[..., :p, :] + W_pos[..., 0:1, :]  # (..., p, d): position 0 holding token t
    resid_b = W_E[..., :p, :] + W_pos[..., 1:2, :]  # (..., p, d): position 1 holding token t
    resid_eq = W_E[..., p, :] + W_pos[..., 2, :]  # (..., d): position 2 always holds '='

    def heads(x: torch.Tensor, which: str) -> torch.Tensor:
        return _linear(weights, f"blocks.0.attn.{which}", x).unflatten(-1, (n_heads, d_head))

    q = heads(resid_eq, "q")  # (..., h, dh)
    scale = math.sqrt(d_head)
    score_a = einops.einsum(heads(resid_a, "k"), q, "... t h dh, ... h dh -> ... t h") / scale
    score_b = einops.einsum(heads(resid_b, "k"), q, "... t h dh, ... h dh -> ... t h") / scale
    score_eq = einops.einsum(heads(resid_eq, "k"), q, "... h dh, ... h dh -> ... h") / scale
    score_eq = score_eq[..., None, :].expand(*score_eq.shape[:-1], n, n_heads)
    scores = torch.stack([score_a[..., a, :], score_b[..., b, :], score_eq], dim=-1)
    pattern = scores.softmax(dim=-1)  # (..., N, h, 3)

    v_a, v_b, v_eq = heads(resid_a, "v"), heads(resid_b, "v"), heads(resid_eq, "v")
    z = (
        pattern[..., 0:1] * v_a[..., a, :, :]
        + pattern[..., 1:2] * v_b[..., b, :, :]
        + pattern[..., 2:3] * v_eq[..., None, :, :]
    )  # (..., N, h, dh)
    attn_out = _linear(weights, "blocks.0.attn.o", z.flatten(-2))  # (..., N, d)

    resid_mid = resid_eq[..., None, :] + attn_out  # (..., N, d)
    pre = _linear(weights, "blocks.0.mlp.in", resid_mid)  # (..., N, d_mlp)
    if act_fn == "relu":  # in place when nothing needs the pre-activations (analysis)
        post = F.relu(pre, inplace=not pre.requires_grad)
    else:
        post = F.gelu(pre)
    resid_post = resid_mid + _linear(weights, "blocks.0.mlp.out", post)
    logits = _linear(weights, "unembed", resid_post)  # (..., N, p)
    if not activations:
        return LastPosition(logits)
    return LastPosition(logits, post, pattern)
