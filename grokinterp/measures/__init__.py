"""Progress measures (docs/measures.md): one module per concept, pure functions.

Every function takes weights or activations with optional leading batch axes (one per
checkpoint, for example) and returns tensors; none does I/O or plotting.  The forward pass
that produces the activations is in :mod:`grokinterp.batched`.
"""

from grokinterp.measures.attention import attention_to, attention_to_a_map
from grokinterp.measures.keyfreq import (
    assign_neurons,
    key_frequencies,
    neuron_freq_fractions,
    neurons_per_freq,
)
from grokinterp.measures.logits import logit_explained_variance, logits_along_sum
from grokinterp.measures.losses import (
    accuracy,
    cross_entropy,
    excluded_logits,
    freq_projections,
    logits_by_sum,
    pair_cross_entropy,
    restricted_logit_table,
    restricted_logits,
    restricted_loss,
    sum_index,
    training_loss,
)
from grokinterp.measures.norms import WEIGHT_NAMES, weight_norms_sq
from grokinterp.measures.sparsity import gini
from grokinterp.measures.spectra import (
    embedding_components,
    neuron_logit_map,
    wl_components,
)

__all__ = [
    "WEIGHT_NAMES",
    "accuracy",
    "assign_neurons",
    "attention_to",
    "attention_to_a_map",
    "cross_entropy",
    "embedding_components",
    "excluded_logits",
    "freq_projections",
    "gini",
    "key_frequencies",
    "logit_explained_variance",
    "logits_along_sum",
    "logits_by_sum",
    "neuron_freq_fractions",
    "neuron_logit_map",
    "neurons_per_freq",
    "pair_cross_entropy",
    "restricted_logit_table",
    "restricted_logits",
    "restricted_loss",
    "sum_index",
    "training_loss",
    "weight_norms_sq",
    "wl_components",
]
