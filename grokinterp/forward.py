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

__all__ = [
    "DropoutMasks",
    "LastPosition",
    "draw_dropout_masks",
    "from_token_embeddings",
    "last_position",
    "mix_uniform",
]


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


def mix_uniform(pattern: torch.Tensor, attn_coeff: float) -> torch.Tensor:
    """``attn_coeff`` x pattern + (1 - attn_coeff) x uniform attention over the last axis
    (``RunConfig.attn_coeff``, Zhong et al. 2023).  At '=' the query sees all three
    positions, so uniform is 1/3 each.  attn_coeff = 1 returns ``pattern`` itself."""
    if attn_coeff == 1:
        return pattern
    return attn_coeff * pattern + (1 - attn_coeff) / pattern.shape[-1]


@dataclass(frozen=True)
class DropoutMasks:
    """Dropout multipliers for N inputs, each 0 (dropped) or 1 / (1 - rate) (kept).

    GPT-2-style dropout, restricted to what the logits at '=' read:
    embed (N, 3, d_model): the residual stream after the embedding sum at positions
    (a, b, '='), which feeds the keys and values of a and b and everything at '=';
    pattern (N, n_heads, 3): the attention pattern from '=';
    attn_out (N, d_model) and mlp_out (N, d_model): the attention and MLP outputs at '='.
    Dropout elsewhere (outputs at positions a and b) cannot reach the logits at '='.
    """

    embed: torch.Tensor
    pattern: torch.Tensor
    attn_out: torch.Tensor
    mlp_out: torch.Tensor


def draw_dropout_masks(
    n: int, d_model: int, n_heads: int, rate: float, generator: torch.Generator
) -> DropoutMasks:
    """Masks for N inputs: each unit kept with probability 1 - rate, kept ones scaled by
    1 / (1 - rate).  Uniform draws on the CPU from ``generator``, in the order embed,
    pattern, attn_out, mlp_out, so the masks do not depend on the device."""
    scale = 1.0 / (1.0 - rate)

    def mask(*shape: int) -> torch.Tensor:
        keep = torch.rand(shape, generator=generator) >= rate
        return keep.to(torch.float32) * scale

    return DropoutMasks(
        mask(n, 3, d_model), mask(n, n_heads, 3), mask(n, d_model), mask(n, d_model)
    )


def last_position_dropped(
    weights: Mapping[str, torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    n_heads: int,
    masks: DropoutMasks,
    act_fn: str = "relu",
    attn_coeff: float = 1.0,
) -> torch.Tensor:
    """Logits at '=' (N, p) of a training step with dropout ``masks`` (unstacked weights).

    The fast path's per-token tables cannot carry a per-input embedding mask, so every
    input computes its own queries, keys and values; otherwise the same arithmetic as
    :func:`last_position`.  With all-ones masks the two agree to float rounding.
    """
    W_E = weights["embed.weight"]  # (V, d)
    tokens = torch.stack([a, b, torch.full_like(a, W_E.shape[0] - 1)], dim=1)  # (N, 3)
    return from_token_embeddings(weights, W_E[tokens], n_heads, act_fn, attn_coeff, masks)


def from_token_embeddings(
    weights: Mapping[str, torch.Tensor],
    token_embeds: torch.Tensor,
    n_heads: int,
    act_fn: str = "relu",
    attn_coeff: float = 1.0,
    masks: DropoutMasks | None = None,
) -> torch.Tensor:
    """Logits at '=' (N, p) from each input's own token embeddings (N, 3, d) (rows of W_E,
    before the positional embedding is added), unstacked weights.

    The per-input path of :func:`last_position_dropped` (``masks`` None: no dropout), for
    measures that differentiate with respect to the embeddings of one input (gradient
    symmetricity, :mod:`grokinterp.measures.pizza`).
    """
    d_head = weights["blocks.0.attn.q.weight"].shape[-2] // n_heads
    resid = token_embeds + weights["pos_embed.weight"]  # (N, 3, d)
    if masks is not None:
        resid = resid * masks.embed  # dropout after the embedding sum

    def heads(x: torch.Tensor, which: str) -> torch.Tensor:
        return _linear(weights, f"blocks.0.attn.{which}", x).unflatten(-1, (n_heads, d_head))

    q = heads(resid[:, 2], "q")  # (N, h, dh)
    k, v = heads(resid, "k"), heads(resid, "v")  # (N, 3, h, dh)
    scores = einops.einsum(k, q, "n s h dh, n h dh -> n h s") / math.sqrt(d_head)
    pattern = mix_uniform(scores.softmax(dim=-1), attn_coeff)  # (N, h, 3)
    if masks is not None:
        pattern = pattern * masks.pattern  # dropout on the pattern
    z = einops.einsum(pattern, v, "n h s, n s h dh -> n h dh")
    attn_out = _linear(weights, "blocks.0.attn.o", z.flatten(-2))  # (N, d)
    if masks is not None:
        attn_out = attn_out * masks.attn_out
    resid_mid = resid[:, 2] + attn_out
    pre = _linear(weights, "blocks.0.mlp.in", resid_mid)  # (N, d_mlp)
    post = F.relu(pre) if act_fn == "relu" else F.gelu(pre)
    mlp_out = _linear(weights, "blocks.0.mlp.out", post)
    resid_post = resid_mid + (mlp_out if masks is None else mlp_out * masks.mlp_out)
    return _linear(weights, "unembed", resid_post)  # (N, p)


def last_position(
    weights: Mapping[str, torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    n_heads: int,
    act_fn: str = "relu",
    activations: bool = False,
    attn_coeff: float = 1.0,
) -> LastPosition:
    """Logits at '=' for inputs [a, b, '='] (and, if ``activations``, post and pattern).

    weights: TransformerLens-keyed tensors, each (..., out, in) with the same leading axes
    (none, or C checkpoints); ``unembed.bias`` and any other bias may be absent.
    a, b: (N,) token indices.  Equals ``model(make_tokens(a, b, p))[:, -1]`` per checkpoint.
    attn_coeff: ``RunConfig.attn_coeff`` (:func:`mix_uniform`); the pattern returned is the
    mixed one, the one the values are averaged with.
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
    pattern = mix_uniform(scores.softmax(dim=-1), attn_coeff)  # (..., N, h, 3)

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
