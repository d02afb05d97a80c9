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
    excluded_logits,
    freq_projections,
    gini,
    logit_explained_variance,
    neuron_logit_map,
    neurons_per_freq,
    restricted_logit_table,
    restricted_loss,
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
    needs_basis: bool = False  # skipped, with the task's reason, when it has no Fourier basis
    version: int = 0
    costly: bool = False  # opt-in (not in DEFAULT_MEASURES); run on the asked checkpoints only
    uses_llc_settings: bool = False  # recomputed when AnalysisSettings.llc changes

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


def skip_reason(analysis: Analysis, ck_or_task) -> str | None:
    """Why ``analysis`` is not computed for a task (a :class:`~grokinterp.tasks.Task` or a
    chunk), or None if it is."""
    task = getattr(ck_or_task, "task", ck_or_task)
    if analysis.needs_basis and task.basis_kind is None:
        return task.no_basis_reason
    return None


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
    """Fourier components of W_E's token rows in the task's basis (for the discrete log,
    the rows of the nonzero residues in log order): (C, n)."""
    W_E = ck.weights["W_E"].double()
    if ck.task_basis.pairs is not None:
        W_E = W_E[:, ck.task_basis.residue]  # (C, n, d_model): row z is residue g^z
    return embedding_components(W_E, ck.basis)


def chunk_wl_components(ck: Checkpoints) -> torch.Tensor:
    """Fourier components of W_L's output columns in the task's basis: (C, n)."""
    W_L = neuron_logit_map(ck.weights["W_out"].double(), ck.weights["W_U"].double())
    if ck.task_basis.pairs is not None:
        W_L = W_L[..., ck.task_basis.residue]  # (C, d_mlp, n): column z is residue g^z
    return wl_components(W_L, ck.basis)


@register("embed_freq_norm", needs_basis=True)
def _embed_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(chunk_embed_components(ck))


@register("wl_freq_norm", needs_basis=True)
def _wl_freq_norm(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return _by_freq(chunk_wl_components(ck))


@register("gini_embed", needs_basis=True)
def _gini_embed(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(chunk_embed_components(ck))}


@register("gini_wl", needs_basis=True)
def _gini_wl(ck: Checkpoints) -> dict[str, torch.Tensor]:
    return {SCALAR: gini(chunk_wl_components(ck))}


@register("neurons_per_freq", uses_threshold=True, needs_basis=True)
def _neurons_per_freq(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.task_basis.n)  # (C, K+1); column 0: unowned
    return {str(k): counts[:, k].double() for k in range(1, counts.shape[-1])}


@register("n_key_freqs", uses_threshold=True, needs_basis=True)
def _n_key_freqs(ck: Checkpoints) -> dict[str, torch.Tensor]:
    counts = neurons_per_freq(ck.neurons[3], ck.task_basis.n)
    return {SCALAR: (counts[:, 1:] > 0).sum(-1).double()}


def _projections(ck: Checkpoints) -> torch.Tensor:
    """Per key frequency, the logits' projection as a function of s: (C, K, n, p)."""
    if "projections" not in ck.__dict__:
        ck.__dict__["projections"] = freq_projections(ck.by_sum, ck.basis, ck.key_freqs)
    return ck.__dict__["projections"]


@register("restricted_loss", uses_key_freqs=True, needs_basis=True)
def _restricted_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    # On the basis pairs (all p^2 for Z_p; a, b != 0 for the discrete log), all p classes.
    s, labels = ck.sums, ck.basis_labels
    table = restricted_logit_table(ck.basis_logits, s, ck.basis, ck.key_freqs, _projections(ck))
    train, test = ck.basis_split("train"), ck.basis_split("test")
    return {
        "all": restricted_loss(table, s, labels),
        "train": restricted_loss(table, s[train], labels[train]),
        "test": restricted_loss(table, s[test], labels[test]),
    }


@register("excluded_loss", uses_key_freqs=True, needs_basis=True)
def _excluded_loss(ck: Checkpoints) -> dict[str, torch.Tensor]:
    train = ck.basis_split("train")  # the training pairs that are basis pairs
    x, s, labels = ck.basis_logits[:, train], ck.sums[train], ck.basis_labels[train]
    proj = _projections(ck)  # (C, K, n, p)
    out = {"all": cross_entropy(excluded_logits(x, s, ck.basis, ck.key_freqs, proj), labels)}
    for j, k in enumerate(ck.key_freqs):
        one = excluded_logits(x, s, ck.basis, (k,), proj[:, j : j + 1])
        out[str(k)] = cross_entropy(one, labels)
    return out


@register("logit_explained_var", uses_key_freqs=True, needs_basis=True)
def _logit_explained_var(ck: Checkpoints) -> dict[str, torch.Tensor]:
    basis, logits, by_sum = ck.task_basis, ck.basis_logits, ck.by_sum
    if basis.pairs is not None:  # the classes in group coordinates (class 0 left out)
        logits, by_sum = logits[..., basis.residue], by_sum[..., basis.residue]
    frac = logit_explained_variance(logits, ck.sums, basis.n, ck.key_freqs, by_sum)
    out = {"all": frac.sum(-1)}
    out.update({str(k): frac[:, j] for j, k in enumerate(ck.key_freqs)})
    return out


@register("attn_to")
def _attn_to(ck: Checkpoints) -> dict[str, torch.Tensor]:
    pattern = ck.forward.pattern.double()  # (C, p^2, H, 3)
    if not ck.task.valid_mask(ck.cfg.p).all():  # div: the valid pairs only
        pattern = pattern[:, ck.dataset.valid_idx]
    mean = attention_to(pattern)  # (C, H, 3)
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
