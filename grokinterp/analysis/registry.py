"""The registry of table measures, and the adapters that compute them on a chunk.

Each adapter maps a :class:`~grokinterp.analysis.checkpoints.Checkpoints` chunk to
``{key: values (C,)}``; the definitions themselves live in :mod:`grokinterp.measures`
(one module per concept).  Register a new measure with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from grokinterp.analysis.checkpoints import Checkpoints
from grokinterp.analysis.fingerprint import code_fingerprint
from grokinterp.fourier import freq_norms
from grokinterp.measures import (
    attention_to,
    cross_entropy,
    embedding_components,
    freq_projections,
    gini,
    logit_explained_variance,
    neuron_logit_map,
    neurons_per_freq,
    wl_components,
)
from grokinterp.measures.attention import TARGETS
from grokinterp.measures.norms import weight_norms_sq
from grokinterp.measures.sharpness import train_loss_sharpness

SCALAR = ""  # the key of measures with one value per checkpoint


@dataclass(frozen=True)
class Analysis:
    """One table measure: ``compute`` maps a chunk to {key: values (C,)}.

    ``version`` is an explicit number to bump when a change the fingerprint cannot see
    (in torch, say) changes the values; the cache keeps a measure's stored rows only while
    its :attr:`fingerprint` is unchanged.
    """

    name: str
    compute: Callable[[Checkpoints], dict[str, torch.Tensor]]
    uses_threshold: bool = False
    uses_key_freqs: bool = False
    needs_sums: bool = False
    version: int = 0
    costly: bool = False  # opt-in (not in DEFAULT_MEASURES); run on the asked checkpoints only

    @property
    def fingerprint(self) -> str:
        """Hash of the source of ``compute`` and of the grokinterp code it reaches
        (the chunk's members it reads, the forward pass, the measure functions)."""
        return code_fingerprint(
            self.compute,
            context=(Checkpoints,),
            always=(Checkpoints.__init__,),
            version=self.version,
        )


ANALYSES: dict[str, Analysis] = {}


def default_measures() -> list[str]:
    """The measures computed when none are named: every registered one but the costly."""
    return [name for name, a in ANALYSES.items() if not a.costly]


def register(name: str, version: int = 0, **flags: bool) -> Callable:
    """Add an analysis to the registry under its table measure name."""

    def wrap(fn: Callable[[Checkpoints], dict[str, torch.Tensor]]) -> Callable:
        if name in ANALYSES:
            raise ValueError(f"analysis {name!r} is already registered")
        ANALYSES[name] = Analysis(name, fn, version=version, **flags)
        return fn

    return wrap


def _split_mean(ck: Checkpoints, per_pair: torch.Tensor, split: str) -> torch.Tensor:
    idx = ck.dataset.train_idx if split == "train" else ck.dataset.test_idx
    return per_pair[:, idx].mean(-1)


@register("train_loss")
def _train_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_losses, "train")}


@register("test_loss")
def _test_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_losses, "test")}


@register("train_acc")
def _train_acc(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_correct, "train")}


@register("test_acc")
def _test_acc(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: _split_mean(ck, ck.pair_correct, "test")}


def _by_freq(component_norms: torch.Tensor) -> dict[str, torch.Tensor]:
    grouped = freq_norms(component_norms.double())  # (C, K+1)
    return {str(k): grouped[:, k] for k in range(grouped.shape[-1])}


def chunk_embed_components(ck: Checkpoints) -> torch.Tensor:
    return embedding_components(ck.weights["W_E"].double(), ck.basis)


def chunk_wl_components(ck: Checkpoints) -> torch.Tensor:
    W_L = neuron_logit_map(ck.weights["W_out"].double(), ck.weights["W_U"].double())
    return wl_components(W_L, ck.basis)


@register("embed_freq_norm")
def _embed_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(chunk_embed_components(ck))


@register("wl_freq_norm")
def _wl_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(chunk_wl_components(ck))


@register("gini_embed")
def _gini_embed(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(chunk_embed_components(ck))}


@register("gini_wl")
def _gini_wl(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(chunk_wl_components(ck))}


@register("neurons_per_freq", uses_threshold=True)
def _neurons_per_freq(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.cfg.p)  # (C, K+1); column 0: unowned
    return {str(k): counts[:, k].double() for k in range(1, counts.shape[-1])}


@register("n_key_freqs", uses_threshold=True)
def _n_key_freqs(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.cfg.p)
    return {SCALAR: (counts[:, 1:] > 0).sum(-1).double()}


def _projections(ck: Checkpoints) -> torch.Tensor:
    """Per key frequency, the logits' projection as a function of s: (C, K, p, p)."""
    if "projections" not in ck.__dict__:
        ck.__dict__["projections"] = freq_projections(ck.by_sum, ck.basis, ck.key_freqs)
    return ck.__dict__["projections"]


@register("restricted_loss", uses_key_freqs=True, needs_sums=True)
def _restricted_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    # The restricted logits depend on (a, b) only through s, so take the log-softmax of
    # the (s, c) table once: the same values as restricted_logits, p times less work.
    table = _projections(ck).sum(1) + ck.logits64.mean(dim=-2, keepdim=True)  # (C, p_s, p)
    logp = table.log_softmax(dim=-1)
    data = ck.dataset

    def loss(idx: torch.Tensor | None = None) -> torch.Tensor:
        s, labels = (ck.sums, data.labels) if idx is None else (ck.sums[idx], data.labels[idx])
        return -logp[:, s, labels].mean(-1)

    return {"all": loss(), "train": loss(data.train_idx), "test": loss(data.test_idx)}


@register("excluded_loss", uses_key_freqs=True, needs_sums=True)
def _excluded_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    train = ck.dataset.train_idx
    x = ck.logits64[:, train]
    labels = ck.dataset.labels[train]
    proj = _projections(ck)[..., ck.sums[train], :]  # (C, K, N_train, p)
    out = {"all": cross_entropy(x - proj.sum(1), labels)}
    for j, k in enumerate(ck.key_freqs):
        out[str(k)] = cross_entropy(x - proj[:, j], labels)
    return out


@register("logit_explained_var", uses_key_freqs=True, needs_sums=True)
def _logit_explained_var(ck: Checkpoints) -> dict[str, torch.Tensor]:
    frac = logit_explained_variance(ck.logits64, ck.sums, ck.cfg.p, ck.key_freqs, ck.by_sum)
    out = {"all": frac.sum(-1)}
    out.update({str(k): frac[:, j] for j, k in enumerate(ck.key_freqs)})
    return out


@register("attn_to")
def _attn_to(ck: Checkpoints) -> dict[str, torch.Tensor]:
    mean = attention_to(ck.forward.pattern.double())  # (C, H, 3)
    return {
        f"h{h}:{target}": mean[:, h, t]
        for h in range(mean.shape[1])
        for t, target in enumerate(TARGETS)
    }


@register("weight_norm_sq")
def _weight_norm_sq(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return weight_norms_sq(ck.states, n_batch_dims=1)


@register("sharpness", costly=True)
def _sharpness(ck: Checkpoints) -> dict[str, torch.Tensor]:
    # Opt-in and costly (power iteration on Hessian-vector products, float64): the
    # pipeline asks for it at every Nth checkpoint and the phase boundaries only.
    found = [
        train_loss_sharpness({k: v[i] for k, v in ck.states.items()}, ck.cfg, ck.dataset)
        for i in range(len(ck.epochs))
    ]
    values = torch.tensor([f[0] for f in found], dtype=torch.float64)
    iterations = torch.tensor([float(f[1]) for f in found], dtype=torch.float64)
    return {SCALAR: values, "iterations": iterations}
