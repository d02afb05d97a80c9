"""Looking inside one checkpoint: the pieces of the Fourier-multiplication circuit.

Helpers for notebook 02 (and anyone reading a single model).  Activations come from a
TransformerLens ``run_with_cache`` over all p^2 inputs; the Fourier maths is in
:mod:`grokinterp.fourier` and the measures in :mod:`grokinterp.measures`.

The algorithm (Nanda et al. 2023, section 4), with ``w_k = 2 pi k / p``:

1. the embedding maps a to cos(w_k a), sin(w_k a) for a few key frequencies k;
2. attention and the MLP form products, giving
   ``cos(w_k(a+b)) = cos(w_k a)cos(w_k b) - sin(w_k a)sin(w_k b)`` (and the sin analogue);
3. the unembedding reads ``cos(w_k(a+b-c)) = cos(w_k(a+b))cos(w_k c) + sin(w_k(a+b))sin(w_k c)``,
   which is largest, for every k at once, at c = (a + b) mod p.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.data import all_pairs, make_tokens
from grokinterp.fourier import FourierBasis, fourier_2d
from grokinterp.measures.attention import attention_to_a_map
from grokinterp.measures.logits import logits_along_sum as measure_logits_along_sum
from grokinterp.measures.losses import sum_index

__all__ = [
    "CircuitActivations",
    "circuit_activations",
    "embedding_in_fourier_basis",
    "logits_along_sum",
    "neuron_fourier_2d",
    "representative_neurons",
    "trig_direction",
]

PATTERN_HOOK = "blocks.0.attn.hook_pattern"
NEURON_HOOK = "blocks.0.mlp.hook_post"


@dataclass(frozen=True)
class CircuitActivations:
    """One model's activations on every input (a, b), arranged on the (a, b) grid.

    attention_to_a: (n_heads, p, p), [h, a, b] = head h's attention from '=' to a.
    neurons: (p, p, d_mlp), post-ReLU MLP activations at '='.
    logits: (p, p, p), [a, b, c] = logit of c at '='.
    """

    attention_to_a: torch.Tensor
    neurons: torch.Tensor
    logits: torch.Tensor


@torch.no_grad()
def circuit_activations(model: TransformerBridge, p: int) -> CircuitActivations:
    """Run the model on all p^2 inputs [a, b, '='] and keep what the circuit story needs."""
    a, b = all_pairs(p)
    tokens = make_tokens(a, b, p)  # (p^2, 3)
    logits, cache = model.run_with_cache(
        tokens, names_filter=lambda name: name in (PATTERN_HOOK, NEURON_HOOK)
    )
    pattern = cache[PATTERN_HOOK][:, :, -1, :]  # (p^2, H, key): the query at '='
    return CircuitActivations(
        attention_to_a=attention_to_a_map(pattern, p).float(),
        neurons=cache[NEURON_HOOK][:, -1, :].unflatten(0, (p, p)).float(),
        logits=logits[:, -1, :].unflatten(0, (p, p)).float(),
    )


def embedding_in_fourier_basis(W_E: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """``F @ W_E[:p]``: (p, d_model), one row per Fourier component (constant, cos 1, ...).

    A sparse picture (a few bright rows) means the embedding uses only a few frequencies.
    """
    p = basis.p
    return basis.matrix.to(W_E.dtype) @ W_E[:p]


def neuron_fourier_2d(neurons: torch.Tensor, basis: FourierBasis) -> torch.Tensor:
    """Each neuron's activation over (a, b) in the 2-D basis F (x) F.

    neurons: (p, p, n) -> (n, p, p) with [n, i, j] the coefficient of (row i of F for a)
    times (row j of F for b).  A neuron of frequency k lights up the constant, cos k and
    sin k rows/columns and their products, i.e. the terms of cos(w_k(a+b)), sin(w_k(a+b)).
    """
    centred = neurons - neurons.mean(dim=(0, 1), keepdim=True)
    return fourier_2d(centred.movedim(-1, 0).double(), basis)


def trig_direction(p: int, k: int, kind: str = "cos") -> torch.Tensor:
    """cos or sin of w_k (a + b - c) on the (a, b, c) grid: (p, p, p), float64."""
    idx = torch.arange(p, dtype=torch.float64)
    angle = 2 * torch.pi * k / p * (idx[:, None, None] + idx[None, :, None] - idx[None, None, :])
    if kind == "cos":
        return torch.cos(angle)
    if kind == "sin":
        return torch.sin(angle)
    raise ValueError(f"kind must be 'cos' or 'sin', got {kind!r}")


def logits_along_sum(logits: torch.Tensor) -> torch.Tensor:
    """Mean centred logit as a function of d = (a + b - c) mod p: (p, p, p) -> (p,).

    If the logits are a sum of cos(w_k(a+b-c)) they depend on (a, b, c) only through d,
    peaking at d = 0 (the right answer): this curve shows that shape.  The (a + b) mod p
    case of :func:`grokinterp.measures.logits_along_sum`, which takes any task's basis.
    """
    p = logits.shape[-1]
    return measure_logits_along_sum(logits.flatten(0, 1), sum_index(p, "add"), p)


def representative_neurons(
    best_freq: Sequence[int], frac_explained: Sequence[float], freqs: Sequence[int]
) -> dict[int, int]:
    """For each frequency, the neuron it explains best (highest fraction), if any.

    best_freq, frac_explained: per neuron, as in the run summary.  Frequencies no neuron
    has as its best are left out.
    """
    best = np.asarray(best_freq)
    frac = np.nan_to_num(np.asarray(frac_explained, dtype=float), nan=-1.0)
    out = {}
    for k in freqs:
        members = np.flatnonzero(best == k)
        if members.size:
            out[int(k)] = int(members[np.argmax(frac[members])])
    return out
