"""The last-position forward pass for many checkpoints at once, and its hooked reference.

Analysis needs, for every checkpoint and all p^2 inputs, the logits, the post-ReLU MLP
activations and the attention pattern at '=' (position 2).  The query there always sees
the same token, and every key, value and attention output is a per-(position, token) table;
the residual stream after attention is a pattern-weighted sum of small (token, head,
d_model) tables, and the MLP and unembedding are then batched matrix products.
Checkpoints are stacked on a leading axis C, so one einsum serves a whole chunk.

:func:`hooked_last_position` computes the same three tensors for one model through
TransformerLens hooks (``run_with_cache``); the tests prove the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.config import RunConfig
from grokinterp.data import all_pairs, make_tokens


@dataclass(frozen=True)
class LastPosition:
    """Activations at '=' for all p^2 inputs i = a*p + b, per checkpoint (leading axis C).

    logits: (C, p^2, p), post: (C, p^2, d_mlp) post-activation MLP neurons,
    pattern: (C, p^2, n_heads, 3) attention from '=' to (a, b, '=').
    """

    logits: torch.Tensor
    post: torch.Tensor
    pattern: torch.Tensor


def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack TransformerLens state dicts on a new leading checkpoint axis."""
    if not states:
        raise ValueError("stack_states needs at least one state dict")
    keys = list(states[0])
    for i, st in enumerate(states):
        if list(st) != keys:
            raise ValueError(f"state dict {i} has keys {sorted(st)}, expected {sorted(keys)}")
    return {k: torch.stack([st[k].float() for st in states]) for k in keys}


def _linear(states: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    """x @ W^T + b for stacked nn.Linear weights: x (C, ..., in) -> (C, ..., out)."""
    weight = states[f"{name}.weight"]  # (C, out, in)
    out = torch.einsum("c...i,coi->c...o", x, weight)
    bias = states.get(f"{name}.bias")
    if bias is not None:
        out = out + bias.view(bias.shape[0], *([1] * (out.dim() - 2)), bias.shape[-1])
    return out


@torch.no_grad()
def last_position(states: dict[str, torch.Tensor], cfg: RunConfig) -> LastPosition:
    """Logits, MLP activations and attention at '=' for all p^2 inputs and C checkpoints.

    states: stacked state dicts (:func:`stack_states`).  Equals, per checkpoint,
    ``model(tokens)[:, -1]`` and the hooks ``blocks.0.mlp.hook_post[:, -1]`` and
    ``blocks.0.attn.hook_pattern[:, :, -1]`` (see :func:`hooked_last_position`).
    """
    p, n_heads, d_head = cfg.p, cfg.n_heads, cfg.d_head
    W_E, W_pos = states["embed.weight"], states["pos_embed.weight"]  # (C, V, d), (C, 3, d)
    n_ckpt = W_E.shape[0]
    resid_a = W_E[:, :p] + W_pos[:, 0:1]  # (C, p, d): token t at position 0
    resid_b = W_E[:, :p] + W_pos[:, 1:2]  # (C, p, d): token t at position 1
    resid_eq = W_E[:, p] + W_pos[:, 2]  # (C, d): '=' at position 2

    def heads(x: torch.Tensor, which: str) -> torch.Tensor:
        return _linear(states, f"blocks.0.attn.{which}", x).unflatten(-1, (n_heads, d_head))

    q = heads(resid_eq, "q")  # (C, h, dh)
    scale = math.sqrt(d_head)
    score_a = torch.einsum("cthe,che->cth", heads(resid_a, "k"), q) / scale  # (C, p, h)
    score_b = torch.einsum("cthe,che->cth", heads(resid_b, "k"), q) / scale
    score_eq = torch.einsum("che,che->ch", heads(resid_eq, "k"), q) / scale  # (C, h)
    shape = (n_ckpt, p, p, n_heads)
    scores = torch.stack(
        [
            score_a[:, :, None].expand(shape),
            score_b[:, None, :].expand(shape),
            score_eq[:, None, None].expand(shape),
        ],
        dim=-1,
    )  # (C, p_a, p_b, h, 3)
    pattern = scores.softmax(dim=-1)
    p_a, p_b, p_eq = pattern.unbind(-1)  # each (C, p_a, p_b, h)

    # per-(token, head) attention outputs: value vectors pushed through W_O
    W_O = states["blocks.0.attn.o.weight"].unflatten(-1, (n_heads, d_head))  # (C, d, h, dh)
    ov_a = torch.einsum("cthe,cdhe->cthd", heads(resid_a, "v"), W_O)  # (C, p, h, d)
    ov_b = torch.einsum("cthe,cdhe->cthd", heads(resid_b, "v"), W_O)
    ov_eq = torch.einsum("che,cdhe->chd", heads(resid_eq, "v"), W_O)  # (C, h, d)
    base = resid_eq + states["blocks.0.attn.o.bias"]  # (C, d): resid_mid before the heads
    resid_mid = (
        torch.einsum("cabh,cahd->cabd", p_a, ov_a)
        + torch.einsum("cabh,cbhd->cabd", p_b, ov_b)
        + (torch.einsum("cabh,chd->cabd", p_eq, ov_eq) + base[:, None, None])
    ).flatten(1, 2)  # (C, p^2, d)

    # MLP and unembedding as batched GEMMs, bias first (baddbmm accumulates in place)
    W_in = states["blocks.0.mlp.in.weight"]  # (C, d_mlp, d)
    b_in = states["blocks.0.mlp.in.bias"][:, None]  # (C, 1, d_mlp)
    pre = torch.baddbmm(b_in, resid_mid, W_in.transpose(1, 2))  # (C, p^2, d_mlp)
    post = F.relu_(pre) if cfg.act_fn == "relu" else F.gelu(pre)
    W_U = states["unembed.weight"]  # (C, p, d)
    W_L = W_U @ states["blocks.0.mlp.out.weight"]  # (C, p, d_mlp): neuron -> logit
    const = torch.einsum("cd,cod->co", states["blocks.0.mlp.out.bias"], W_U)
    const = (const + states["unembed.bias"])[:, None]  # (C, 1, p)
    logits = torch.baddbmm(const, resid_mid, W_U.transpose(1, 2))
    logits = torch.baddbmm(logits, post, W_L.transpose(1, 2))  # (C, p^2, p)
    return LastPosition(logits=logits, post=post, pattern=pattern.flatten(1, 2))


@torch.no_grad()
def hooked_last_position(model: TransformerBridge, p: int) -> LastPosition:
    """The reference: the same tensors for one model, through TransformerLens hooks.

    Runs ``model.run_with_cache`` on all p^2 token triples; returns tensors with C = 1.
    """
    a, b = all_pairs(p)
    tokens = make_tokens(a, b, p)
    logits, cache = model.run_with_cache(
        tokens, names_filter=["blocks.0.mlp.hook_post", "blocks.0.attn.hook_pattern"]
    )
    post = cache["blocks.0.mlp.hook_post"][:, -1]  # (p^2, d_mlp)
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1, :]  # (p^2, h, 3): query '='
    return LastPosition(logits=logits[:, -1][None], post=post[None], pattern=pattern[None])
