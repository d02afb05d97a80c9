"""A chunk of checkpoints of one run, and everything the registered measures read from it.

Weights come from stacked TransformerLens state dicts (a leading checkpoint axis C);
activations from one batched last-position forward pass over all p^2 inputs, computed
lazily and shared by every measure of the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch

from grokinterp.batched import LastPosition, last_position
from grokinterp.config import RunConfig
from grokinterp.data import Dataset
from grokinterp.fourier import FourierBasis
from grokinterp.measures import assign_neurons, logits_by_sum, neuron_freq_fractions
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.measures.llc import LLCSettings
from grokinterp.measures.losses import pair_cross_entropy
from grokinterp.tasks import Task, TaskBasis, get_task

DEFAULT_CHUNK = 16  # checkpoints per batched forward: peak ~1.2 GB at p=113, d_mlp=512


class Checkpoints:
    """A chunk of C checkpoints of one run, and everything the analyses read from them.

    Weights come from stacked TransformerLens state dicts; activations from the batched
    forward (or are given, as :func:`measure_hooked` does with TransformerLens hooks).
    """

    def __init__(
        self,
        cfg: RunConfig,
        dataset: Dataset,
        epochs: Sequence[int],
        states: dict[str, torch.Tensor],
        key_freqs: Sequence[int] = (),
        threshold: float = NEURON_THRESHOLD,
        forward: LastPosition | None = None,
        weights: dict[str, torch.Tensor] | None = None,
        llc: LLCSettings | None = None,
    ):
        self.cfg = cfg
        self.dataset = dataset
        self.epochs = list(epochs)
        self.states = states
        self.key_freqs = tuple(key_freqs)
        self.threshold = threshold
        self.llc = LLCSettings() if llc is None else llc  # the opt-in llc measure's SGLD
        self.task: Task = get_task(cfg.operation)
        # the group the circuit lives in (Z_p, or Z_{p-1} by discrete log); None: no basis,
        # and the measures that need one are skipped (docs/tasks.md)
        self.task_basis: TaskBasis | None = self.task.basis(cfg.p)
        self.basis: FourierBasis | None = (
            None if self.task_basis is None else self.task_basis.fourier
        )
        if forward is not None:
            self.__dict__["forward"] = forward
        if weights is not None:
            self.__dict__["weights"] = weights

    @cached_property
    def forward(self) -> LastPosition:
        return last_position(self.states, self.cfg)

    @cached_property
    def weights(self) -> dict[str, torch.Tensor]:
        """W_E (C, d_vocab, d), W_out (C, d_mlp, d), W_U (C, d, p), TransformerLens layout."""
        return {
            "W_E": self.states["embed.weight"],
            "W_out": self.states["blocks.0.mlp.out.weight"].transpose(-1, -2),
            "W_U": self.states["unembed.weight"].transpose(-1, -2),
        }

    @cached_property
    def neurons(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(fractions (C, d_mlp, K+1), best_freq, best_fraction, owner) per neuron, in the
        task's basis; None when the task has none."""
        if self.task_basis is None:
            return None
        fractions = neuron_freq_fractions(self.forward.post, self.task_basis)
        return (fractions, *assign_neurons(fractions, self.threshold))

    @cached_property
    def sums(self) -> torch.Tensor | None:
        """s of each basis pair in group coordinates, (n^2,) (for Z_p: s(a, b) of the p^2
        pairs), or None when the task has no basis."""
        return None if self.task_basis is None else self.task_basis.s

    @cached_property
    def basis_logits(self) -> torch.Tensor:
        """The float64 logits of the basis pairs, all p classes: (C, n^2, p)."""
        return self.task_basis.on_pairs(self.logits64)

    @cached_property
    def basis_labels(self) -> torch.Tensor:
        """The labels of the basis pairs, (n^2,)."""
        return self.task_basis.on_pairs(self.dataset.labels[:, None])[:, 0]

    def basis_split(self, split: str) -> torch.Tensor:
        """Positions, among the basis pairs, of the train or test pairs that are basis pairs."""
        idx = self.dataset.train_idx if split == "train" else self.dataset.test_idx
        return self.task_basis.positions(idx)

    @cached_property
    def logits64(self) -> torch.Tensor:
        return self.forward.logits.double()

    @cached_property
    def pair_losses(self) -> torch.Tensor:
        """Float64 cross-entropy of every pair: (C, p^2); its mean over pairs is
        :func:`grokinterp.measures.cross_entropy`."""
        return pair_cross_entropy(self.logits64, self.dataset.labels)

    @cached_property
    def pair_correct(self) -> torch.Tensor:
        """1.0 where the argmax is the label: (C, p^2) float64."""
        return (self.forward.logits.argmax(-1) == self.dataset.labels).double()

    @cached_property
    def by_sum(self) -> torch.Tensor:
        """Mean logits over the basis pairs of each s (C, n_s, p), float64."""
        return logits_by_sum(self.basis_logits, self.sums, self.task_basis.n)
