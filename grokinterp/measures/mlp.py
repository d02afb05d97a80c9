"""The progress measures of the mlp family (docs/mlp.md): the Fourier measures of the
transformer on the mlp's neurons and logits, and their parity analogues.

Modular tasks (Nanda et al. 2023's measures, read on the mlp):

- neurons: each hidden unit's activation over all p^2 pairs, in the task's basis; a unit
  belongs to its best frequency when that frequency's 8 terms hold >= ``threshold`` of its
  variance (:func:`grokinterp.measures.keyfreq.neuron_freq_fractions`).  The mlp's
  threshold is :data:`MLP_NEURON_THRESHOLD` = 0.75, not the transformer's 0.85: a unit of
  Gromov's quadratic network, (cos(w a + phi) + cos(w b + psi))^2, holds exactly 0.8 of its
  variance at w (its product term) and 0.2 at 2w (the squares).
- restricted and excluded loss: on the mlp's logits over all p^2 pairs, exactly as the
  transformer's (:mod:`grokinterp.measures.losses`).
- the embedding spectrum: token a's input weights are column a of W_in[:, :p] (b's of
  W_in[:, p:]); the Fourier components of the p x 2 width matrix [W_a | W_b] (rows in the
  basis's group order), grouped by frequency.

Sparse parity (Barak et al. 2022, "hidden progress"):

- ``relevant_weight_frac``: ||W_in[:, S]||^2 / ||W_in||^2, the first layer's weight mass
  on the k relevant bits S (k / n_bits at a uniform init, 1 for a network that reads S only);
- ``restricted_loss``: the loss of the network with W_in's columns off S set to zero (only
  the relevant coordinates' contribution kept); ``excluded_loss``: with those on S zeroed.
"""

from __future__ import annotations

import torch

from grokinterp.fourier import freq_norms
from grokinterp.measures.keyfreq import (
    assign_neurons,
    key_frequencies,
    neuron_freq_fractions,
    neurons_per_freq,
)
from grokinterp.measures.losses import (
    cross_entropy,
    excluded_logits,
    freq_projections,
    logits_by_sum,
    restricted_logit_table,
    restricted_loss,
)
from grokinterp.measures.sparsity import gini
from grokinterp.measures.spectra import embedding_components
from grokinterp.tasks import get_task

__all__ = [
    "MLP_NEURON_THRESHOLD",
    "mlp_fourier",
    "mlp_hidden_all_pairs",
    "parity_measures",
]

MLP_NEURON_THRESHOLD = 0.75


def _act(params: dict[str, torch.Tensor], pre: torch.Tensor) -> torch.Tensor:
    quadratic = "quadratic" in params and bool(params["quadratic"].flatten()[0])
    return pre * pre if quadratic else torch.relu(pre)


def mlp_hidden_all_pairs(params: dict[str, torch.Tensor], p: int):
    """Hidden activations (p^2, width) and logits (p^2, p) of every pair i = a*p + b.

    The pre-activation of pair (a, b) is W_in[:, a] + W_in[:, p + b] + b_in (one-hot
    inputs), so no input matrix is built.
    """
    W_in, b_in = params["W_in"].double(), params["b_in"].double()
    pre = W_in[:, :p].T[:, None, :] + W_in[:, p:].T[None, :, :] + b_in  # (p, p, width)
    acts = _act(params, pre.reshape(p * p, -1))
    return acts, acts @ params["W_out"].double().T


def mlp_fourier(
    params: dict[str, torch.Tensor],
    p: int,
    operation: str,
    train_idx: torch.Tensor,
    test_idx: torch.Tensor,
    key_freqs: list[int] | tuple[int, ...] | None = None,
    threshold: float = MLP_NEURON_THRESHOLD,
) -> dict:
    """The Fourier measures of one mlp checkpoint on a modular task with a basis.

    train_idx, test_idx: grid indices a*p + b of the splits.  key_freqs: those to restrict
    to; None: the frequencies owning neurons here.  Returns {"key_freqs", "neurons_per_freq"
    (counts, index k), "n_key_freqs" (frequencies owning neurons here), "embed_freq_norm"
    (index k), "gini_embed", "restricted_loss" {all, train, test}, "excluded_loss" {all,
    "<k>"}}.  ValueError for a task with no Fourier basis.
    """
    task = get_task(operation)
    basis = task.basis(p)
    if basis is None:
        raise ValueError(f"operation {operation!r} has no Fourier basis: {task.no_basis_reason}")
    acts, logits = mlp_hidden_all_pairs(params, p)
    labels = task.label(torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p), p)
    fractions = neuron_freq_fractions(acts, basis)
    owner = assign_neurons(fractions, threshold)[2]
    counts = neurons_per_freq(owner, basis.n)
    here = key_frequencies(counts)
    freqs = tuple(here if key_freqs is None else key_freqs)
    # the embedding: rows in the basis's group order (residue[z] for coordinate z)
    W_in = params["W_in"].double()
    embed = torch.cat([W_in[:, :p].T, W_in[:, p:].T], dim=1)[basis.residue]  # (n, 2 width)
    components = embedding_components(embed, basis.fourier)
    # restricted and excluded loss on the basis pairs, as the transformer's
    s, fourier = basis.s, basis.fourier
    x = basis.on_pairs(logits)
    y = basis.on_pairs(labels[:, None])[:, 0]
    proj = freq_projections(logits_by_sum(x, s, basis.n), fourier, freqs)
    table = restricted_logit_table(x, s, fourier, freqs, proj)
    train, test = basis.positions(train_idx), basis.positions(test_idx)
    excluded = {"all": cross_entropy(excluded_logits(x[train], s[train], fourier, freqs, proj),
                                     y[train])}  # fmt: skip
    for j, k in enumerate(freqs):
        one = excluded_logits(x[train], s[train], fourier, (k,), proj[j : j + 1])
        excluded[str(k)] = cross_entropy(one, y[train])
    return {
        "key_freqs": list(freqs),
        "neurons_per_freq": counts,
        "n_key_freqs": len(here),
        "embed_freq_norm": freq_norms(components),
        "gini_embed": float(gini(components)),
        "restricted_loss": {
            "all": float(restricted_loss(table, s, y)),
            "train": float(restricted_loss(table, s[train], y[train])),
            "test": float(restricted_loss(table, s[test], y[test])),
        },
        "excluded_loss": {k: float(v) for k, v in excluded.items()},
        "full_loss": float(cross_entropy(x, y)),
    }


def _logistic(z: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.softplus(-y * z).mean())


def parity_measures(
    params: dict[str, torch.Tensor], relevant: tuple[int, ...], x: torch.Tensor, y: torch.Tensor
) -> dict[str, float]:
    """The parity analogues on points x (N, n_bits), labels y (N,) +-1: relevant_weight_frac,
    restricted_loss (only the relevant bits' columns of W_in kept), excluded_loss (them
    removed) and the full loss, all logistic."""
    W_in = params["W_in"].double()
    mask = torch.zeros(W_in.shape[1], dtype=torch.bool)
    mask[list(relevant)] = True
    total = float((W_in**2).sum())

    def loss_with(W: torch.Tensor) -> float:
        pre = x.double() @ W.T + params["b_in"].double()
        z = (_act(params, pre) @ params["W_out"].double().T).squeeze(-1)
        return _logistic(z, y.double())

    return {
        "relevant_weight_frac": float((W_in[:, mask] ** 2).sum()) / total if total else 0.0,
        "restricted_loss": loss_with(W_in * mask),
        "excluded_loss": loss_with(W_in * ~mask),
        "full_loss": loss_with(W_in),
    }
