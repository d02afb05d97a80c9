"""The last-position forward over many checkpoints at once, and its hooked reference.

Analysis needs, for every checkpoint and all p^2 inputs, the logits, the post-ReLU MLP
activations and the attention pattern at '=' (position 2).  :func:`last_position` stacks
checkpoints on a leading axis C and runs :func:`grokinterp.forward.last_position` (the
forward pass training uses) over all pairs at once.

:func:`hooked_last_position` computes the same three tensors for one model through
TransformerLens hooks (``run_with_cache``); the tests prove the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformer_lens.model_bridge import TransformerBridge

from grokinterp import forward
from grokinterp.config import RunConfig
from grokinterp.data import all_pairs, make_tokens
from grokinterp.forward import LastPosition

__all__ = ["LastPosition", "hooked_last_position", "last_position", "stack_states"]


def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack TransformerLens state dicts on a new leading checkpoint axis."""
    if not states:
        raise ValueError("stack_states needs at least one state dict")
    keys = list(states[0])
    for i, st in enumerate(states):
        if list(st) != keys:
            raise ValueError(f"state dict {i} has keys {sorted(st)}, expected {sorted(keys)}")
    return {k: torch.stack([st[k].float() for st in states]) for k in keys}


@torch.no_grad()
def last_position(states: dict[str, torch.Tensor], cfg: RunConfig) -> LastPosition:
    """Logits, MLP activations and attention at '=' for all p^2 inputs and C checkpoints.

    states: stacked state dicts (:func:`stack_states`).  The forward pass is
    :func:`grokinterp.forward.last_position`, the one training uses.  Equals, per
    checkpoint, ``model(tokens)[:, -1]`` and the hooks ``blocks.0.mlp.hook_post[:, -1]`` and
    ``blocks.0.attn.hook_pattern[:, :, -1]`` (see :func:`hooked_last_position`).
    """
    a, b = all_pairs(cfg.p)
    return forward.last_position(
        states, a, b, cfg.n_heads, cfg.act_fn, activations=True, attn_coeff=cfg.attn_coeff
    )


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
