"""Key frequencies from the MLP neurons (docs/measures.md, "Key frequencies and neuron clusters").

Nanda et al. (2023), section 4.2: after grokking, each MLP neuron's activation at '=' is
(almost) a function of a few 2-D Fourier terms of a single frequency k, so neurons cluster
by frequency, and the frequencies that own clusters are the circuit's key frequencies.

Definition: centre each neuron's post-ReLU activation at the last position over all p^2
inputs, take its 2-D Fourier transform over (a, b), and compute the fraction of its
variance in each frequency's 8 terms (:func:`grokinterp.fourier.freq_group_mask_2d`).
A neuron belongs to its best frequency when that fraction is >= ``threshold`` (0.85);
the key frequencies are those that own at least one neuron.
"""

from __future__ import annotations

import torch

from grokinterp.fourier import fourier_basis, freq_energy_pairs
from grokinterp.tasks import TaskBasis

NEURON_THRESHOLD = 0.85  # a neuron belongs to its best frequency from this fraction on


def neuron_freq_fractions(acts: torch.Tensor, basis: int | TaskBasis) -> torch.Tensor:
    """Fraction of each neuron's variance in each frequency's 8 2-D Fourier terms.

    acts: (..., p^2, n_neurons) over inputs i = a*p + b.  basis: the task's basis
    (:meth:`grokinterp.tasks.Task.basis`), or an int p for Z_p.  In a basis of Z_n the
    activations are read on its n^2 basis pairs in group coordinates (for the discrete log,
    the pairs with a, b != 0, reindexed by (log a, log b)) and centred there.  Returns
    (..., n_neurons, n//2 + 1) float64 with column k for frequency k; column 0 (the constant
    term) is 0 because the activations are centred.  A dead neuron (zero variance) gets NaN
    in every column.
    """
    if isinstance(basis, int):
        fourier = fourier_basis(basis)
    else:
        acts, fourier = basis.on_pairs(acts), basis.fourier  # (..., n^2, n_neurons)
    energy = freq_energy_pairs(acts, fourier)  # (..., n, K+1)
    # p^2 * variance of each neuron: its squared norm minus the constant term
    sq_norm = acts.pow(2).sum(-2).double()  # (..., n); float32 sum: ~1e-7 relative error
    total = sq_norm - energy[..., 0]
    frac = energy / total.unsqueeze(-1)
    frac[..., 0] = 0.0
    dead = total <= 1e-6 * sq_norm  # no variance beyond float32 round-off
    return torch.where(dead.unsqueeze(-1), torch.full_like(frac, float("nan")), frac)


def assign_neurons(
    fractions: torch.Tensor, threshold: float = NEURON_THRESHOLD
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each neuron's best frequency, that frequency's fraction, and the neuron's owner.

    fractions: (..., n, K+1) from :func:`neuron_freq_fractions`.  Returns (best_freq,
    best_fraction, owner) where owner is best_freq if best_fraction >= threshold, else 0.
    Dead neurons (NaN) get best_freq 0 and fraction NaN.
    """
    filled = torch.nan_to_num(fractions, nan=-1.0)
    best_frac, best = filled.max(dim=-1)
    dead = torch.isnan(fractions).all(dim=-1)
    best = torch.where(dead, torch.zeros_like(best), best)
    best_frac = torch.where(dead, torch.full_like(best_frac, float("nan")), best_frac)
    owner = torch.where(best_frac >= threshold, best, torch.zeros_like(best))
    return best, best_frac, owner


def neurons_per_freq(owner: torch.Tensor, p: int) -> torch.Tensor:
    """Number of neurons each frequency owns: owner (..., n) -> (..., p//2 + 1) long.

    p: the length of the basis group (p for Z_p, p - 1 for the discrete log).  Column k
    counts the neurons owned by frequency k; column 0 counts the unowned ones.
    """
    n_k = p // 2 + 1
    one_hot = torch.nn.functional.one_hot(owner.long(), n_k)  # (..., n, K+1)
    return one_hot.sum(-2)


def key_frequencies(counts: torch.Tensor) -> list[int]:
    """Sorted frequencies k >= 1 that own at least one neuron; counts: ((p+1)/2,)."""
    return [k for k in range(1, counts.shape[-1]) if int(counts[k]) > 0]
