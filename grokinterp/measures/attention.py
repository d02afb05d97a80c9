"""Attention from '=' to the inputs (docs/measures.md, "Attention from '='").

``pattern`` is the attention pattern of the query at '=' (position 2): shape
(..., p^2, n_heads, 3) over inputs i = a*p + b, the last axis being the key position
(a, b, '=').  From TransformerLens: ``cache['blocks.0.attn.hook_pattern'][:, :, 2, :]``
moved to (N, heads, key).
"""

from __future__ import annotations

import torch

TARGETS = ("a", "b", "=")


def attention_to(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from '=' to a, b and '=' over all inputs: (..., N, H, 3) -> (..., H, 3)."""
    return pattern.mean(dim=-3)


def attention_to_a_map(pattern: torch.Tensor, p: int) -> torch.Tensor:
    """Attention from '=' to a for every input: (..., p^2, H, 3) -> (..., H, p, p) [h, a, b]."""
    to_a = pattern[..., 0]  # (..., p^2, H)
    return to_a.unflatten(-2, (p, p)).movedim(-1, -3)
