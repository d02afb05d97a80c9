"""Every figure: each function takes data and returns a ``plotly.graph_objects.Figure``.

Curves come from the tidy analysis table (columns ``epoch, measure, key, value``; see
:mod:`grokinterp.analysis`), phase boundaries and key frequencies from the run summary,
and single-checkpoint pictures from arrays the caller measured.  Nothing here recomputes a
measure or writes a file: :mod:`grokinterp.figures` saves them.

Where things live: :mod:`~grokinterp.plots.style` (the one palette, font, phase shading),
:mod:`~grokinterp.plots.curves` (curves over training),
:mod:`~grokinterp.plots.checkpoint` (pictures of one checkpoint),
:mod:`~grokinterp.plots.sliders` (one-checkpoint pictures with an epoch slider, from the
frames ``analyze`` stored), :mod:`~grokinterp.plots.sweep` (across the runs of a sweep),
:mod:`~grokinterp.plots.laws` (the grokking-delay laws),
:mod:`~grokinterp.plots.forecast` (the forecast's evaluation) and
:mod:`~grokinterp.plots.toys` (the toy model families: curves, block norms, the 1/lambda
law, measured against the ridge bound).
"""

from grokinterp.plots.checkpoint import (
    attention_maps,
    embedding_fourier,
    logit_profile,
    neuron_clusters,
    neuron_picture,
    spectrum_bar,
)
from grokinterp.plots.curves import (
    attention_curves,
    excluded_loss_per_frequency,
    gini_curves,
    logit_structure,
    loss_curves,
    measure_series,
    measure_wide,
    metric_curves,
    neurons_per_frequency,
    progress_losses,
    sharpness_curve,
    spectrum_heatmap,
    weight_norm_decay,
)
from grokinterp.plots.mechanisms import (
    MECHANISM_PANELS,
    mechanism_curves,
    sweep_mechanism_curves,
    timing_curves,
)
from grokinterp.plots.style import (
    FONT,
    HEIGHT,
    PALETTE,
    PHASE_NAMES,
    WIDTH,
    Phases,
    frequency_colors,
)

__all__ = [
    "FONT",
    "MECHANISM_PANELS",
    "HEIGHT",
    "PALETTE",
    "PHASE_NAMES",
    "WIDTH",
    "Phases",
    "attention_curves",
    "attention_maps",
    "embedding_fourier",
    "excluded_loss_per_frequency",
    "frequency_colors",
    "gini_curves",
    "logit_profile",
    "logit_structure",
    "loss_curves",
    "measure_series",
    "measure_wide",
    "mechanism_curves",
    "metric_curves",
    "neuron_clusters",
    "neuron_picture",
    "neurons_per_frequency",
    "progress_losses",
    "sharpness_curve",
    "spectrum_bar",
    "spectrum_heatmap",
    "sweep_mechanism_curves",
    "timing_curves",
    "weight_norm_decay",
]
