"""The table measures of mechanisms beyond the Fourier clock (docs/measures.md): clock or
pizza, softmax collapse and the logit scale, per-neuron IPR and phase alignment, and the
opt-in local learning coefficient.  Registered into :data:`~grokinterp.analysis.registry.
ANALYSES` on import (by :mod:`grokinterp.analysis.batch`); the definitions live in
:mod:`grokinterp.measures` (pizza, collapse, neuron_fourier, llc)."""

from __future__ import annotations

import torch

from grokinterp.analysis.checkpoints import Checkpoints
from grokinterp.analysis.registry import SCALAR, register
from grokinterp.forward import from_token_embeddings
from grokinterp.measures.collapse import collapse_fraction, logit_scale
from grokinterp.measures.llc import estimate_llc
from grokinterp.measures.neuron_fourier import neuron_ipr, ov_input_weights, phase_alignment
from grokinterp.measures.pizza import (
    distance_irrelevance,
    embedding_gradient_cosines,
    sample_triples,
)
from grokinterp.measures.spectra import neuron_logit_map

# Measures defined for (a + b) mod p with the residues as tokens; NaN for other tasks.
_ADDITION = ("add",)


def _nan(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: torch.full((len(ck.epochs),), float("nan"), dtype=torch.float64)}


def _train_logits(ck: Checkpoints) -> tuple[torch.Tensor, torch.Tensor]:
    idx = ck.dataset.train_idx
    return ck.forward.logits[:, idx], ck.dataset.labels[idx]  # (C, N, p), (N,)


@register("softmax_collapse")
def _softmax_collapse(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: collapse_fraction(*_train_logits(ck))}


@register("logit_scale")
def _logit_scale(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: logit_scale(_train_logits(ck)[0])}


@register("distance_irrelevance")
def _distance_irrelevance(ck: Checkpoints) -> dict[str, torch.Tensor]:
    if ck.cfg.operation not in _ADDITION:
        return _nan(ck)
    labels = ck.dataset.labels  # (p^2,): (a + b) mod p of the pairs a p + b
    correct = ck.logits64.gather(-1, labels.expand(len(ck.epochs), -1)[..., None])[..., 0]
    return {SCALAR: distance_irrelevance(correct, ck.cfg.p)}


@register("gradient_symmetricity", version=2)  # 2: 128 triples (were 512)
def _gradient_symmetricity(ck: Checkpoints) -> dict[str, torch.Tensor]:
    cfg = ck.cfg
    triples = sample_triples(cfg.p)  # (N, 3): a, b, c
    values = []
    for i in range(len(ck.epochs)):
        weights = {k: v[i].double() for k, v in ck.states.items()}
        W_E = weights["embed.weight"]
        eq = W_E[cfg.p].expand(len(triples), -1)  # '=' at position 2

        def logits(ea, eb, weights=weights, eq=eq):
            embeds = torch.stack([ea, eb, eq], dim=1)  # (N, 3, d)
            return from_token_embeddings(weights, embeds, cfg.n_heads, cfg.act_fn, cfg.attn_coeff)

        cos = embedding_gradient_cosines(
            logits, W_E[triples[:, 0]], W_E[triples[:, 1]], triples[:, 2]
        )
        values.append(cos.mean())
    return {SCALAR: torch.stack(values)}


def _neuron_tables(ck: Checkpoints) -> tuple[torch.Tensor, torch.Tensor]:
    theta = ov_input_weights(ck.states, ck.cfg.p)  # (C, d_mlp, p)
    W_L = neuron_logit_map(ck.weights["W_out"].double(), ck.weights["W_U"].double())
    return theta, W_L


@register("neuron_ipr")
def _neuron_ipr(ck: Checkpoints) -> dict[str, torch.Tensor]:
    if ck.cfg.operation not in _ADDITION:
        return _nan(ck)
    ipr = neuron_ipr(_neuron_tables(ck)[0])  # (C, d_mlp)
    return {SCALAR: ipr.mean(-1), "median": ipr.median(-1).values}


@register("phase_alignment")
def _phase_alignment(ck: Checkpoints) -> dict[str, torch.Tensor]:
    if ck.cfg.operation not in _ADDITION:
        return _nan(ck)
    align, weight = phase_alignment(*_neuron_tables(ck))  # (C, d_mlp) each
    weighted = (align * weight).sum(-1) / weight.sum(-1).clamp_min(1e-300)
    return {SCALAR: weighted, "unweighted": align.mean(-1)}


@register("llc", costly=True, uses_llc_settings=True)
def _llc(ck: Checkpoints) -> dict[str, torch.Tensor]:
    # Opt-in and costly (SGLD chains through devinterp): at every Nth checkpoint and the
    # phase boundaries only, as sharpness.
    found = [
        estimate_llc({k: v[i] for k, v in ck.states.items()}, ck.cfg, ck.dataset, ck.llc)
        for i in range(len(ck.epochs))
    ]
    keys = list(found[0])
    out = {k: torch.tensor([f[k] for f in found], dtype=torch.float64) for k in keys}
    out[SCALAR] = out.pop("mean")
    return out
