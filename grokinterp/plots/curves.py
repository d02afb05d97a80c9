"""Curves over training: each function takes the tidy analysis table (columns ``epoch,
measure, key, value``; see :mod:`grokinterp.analysis`) or the logged metrics, with the
phase boundaries and key frequencies of the run summary, and returns a Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.plots.style import (
    PALETTE,
    WIDTH,
    Phases,
    freq_color,
    log_range,
    new_figure,
    shade_phases,
    style_figure,
    trace_line,
)

# ---------------------------------------------------------------------------- table access


def measure_series(table: pd.DataFrame, measure: str, key: str | int = "") -> pd.Series:
    """One curve of the tidy table: values indexed by epoch (sorted, NaN dropped)."""
    rows = table[(table["measure"] == measure) & (table["key"].astype(str) == str(key))]
    if rows.empty:
        known = sorted(table.loc[table["measure"] == measure, "key"].astype(str).unique())
        raise KeyError(
            f"analysis table has no rows for measure={measure!r}, key={key!r}; "
            f"keys of that measure: {known[:12] or 'none (unknown measure)'}"
        )
    series = rows.set_index("epoch")["value"].astype(float).sort_index()
    return series[np.isfinite(series.values)]


def measure_wide(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """All keys of one measure as columns, epochs as rows.

    Keys that are all digits (frequencies) become ints and are sorted numerically.
    """
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise KeyError(f"analysis table has no rows for measure={measure!r}")
    wide = rows.pivot_table(index="epoch", columns="key", values="value", aggfunc="first")
    wide.columns = [int(c) if str(c).isdigit() else str(c) for c in wide.columns]
    numeric = sorted(c for c in wide.columns if isinstance(c, int))
    other = sorted(c for c in wide.columns if not isinstance(c, int))
    return wide[numeric + other].sort_index()


# ---------------------------------------------------------------------------- (1) losses


def loss_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Train and test loss (log scale) over epochs, with the three phases shaded."""
    fig = new_figure("Train and test loss", "epoch", "cross-entropy loss (nats)", log_y=True)
    fig.add_trace(trace_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    fig.add_trace(trace_line(measure_series(table, "test_loss"), "test loss", PALETTE["test"]))
    shade_phases(fig, phases)
    return fig


def metric_curves(metrics: Mapping[str, np.ndarray], phases: Phases | None = None) -> go.Figure:
    """Logged training curves (``Run.metrics``): loss (log scale) and accuracy, per epoch.

    Test values are logged only on evaluation epochs; NaNs are dropped per curve.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=["loss", "accuracy"],
    )
    epoch = np.asarray(metrics["epoch"])
    for row, kind in ((1, "loss"), (2, "acc")):
        for split in ("train", "test"):
            y = np.asarray(metrics[f"{split}_{kind}"], dtype=float)
            ok = np.isfinite(y)
            fig.add_trace(
                go.Scatter(
                    x=epoch[ok],
                    y=y[ok],
                    mode="lines",
                    name=split,  # one legend entry per split: solid loss, dotted accuracy
                    legendgroup=split,
                    showlegend=row == 1,
                    line={"color": PALETTE[split], "dash": "solid" if row == 1 else "dot"},
                ),
                row=row,
                col=1,
            )
    style_figure(fig, "Training curves: memorise first, generalise much later", height=700)
    fig.update_yaxes(type="log", title_text="cross-entropy (nats)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    shade_phases(fig, phases, subplots=True)
    return fig


# ---------------------------------------------------------------------------- (2) spectrum


def spectrum_heatmap(
    table: pd.DataFrame, measure: str = "embed_freq_norm", title: str | None = None
) -> go.Figure:
    """Norm of each Fourier frequency (rows) of W_E (or W_L) at every checkpoint (columns).

    Frequency 0 is the constant component; k >= 1 is the norm over the cos and sin rows.
    """
    wide = measure_wide(table, measure)
    freqs = [c for c in wide.columns if isinstance(c, int)]
    fig = go.Figure(
        go.Heatmap(
            x=wide.index.values,
            y=freqs,
            z=wide[freqs].values.T,
            colorscale=PALETTE["heatmap"],
            colorbar={"title": {"text": "norm"}},
            hovertemplate="epoch %{x}<br>frequency %{y}<br>norm %{z:.3g}<extra></extra>",
        )
    )
    what = "W_E" if measure.startswith("embed") else "W_L = W_out W_U"
    style_figure(fig, title or f"Fourier spectrum of {what} over training")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="frequency k (0 = constant)")
    return fig


# ---------------------------------------------------------------------------- (3) sparsity


def gini_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Gini coefficient of the Fourier-component norms of W_E and of W_L over epochs."""
    fig = new_figure(
        "Sparsity in the Fourier basis (Gini coefficient)",
        "epoch",
        "Gini coefficient (0 = uniform, 1 = one component)",
    )
    fig.add_trace(trace_line(measure_series(table, "gini_embed"), "W_E", PALETTE["embed"]))
    fig.add_trace(trace_line(measure_series(table, "gini_wl"), "W_L = W_out W_U", PALETTE["wl"]))
    shade_phases(fig, phases)
    return fig


def sharpness_curve(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Top Hessian eigenvalue of the train loss at the checkpoints where it was computed
    (the opt-in ``sharpness`` measure), with the train loss for scale (log axis).

    Near zero train loss the cross-entropy Hessian shrinks with the loss itself, so the two
    curves are drawn together: a fall in sharpness that only follows the loss is not a
    flatter solution as such.
    """
    sharp = measure_series(table, "sharpness")
    if sharp.empty:
        raise KeyError("sharpness (no checkpoint has a finite value)")
    fig = new_figure(
        "Sharpness: top Hessian eigenvalue of the train loss",
        "epoch",
        "sharpness (top eigenvalue); train loss (nats)",
        log_y=True,
    )
    positive = sharp[sharp > 0]
    fig.add_trace(
        go.Scatter(
            x=positive.index.values,
            y=positive.values,
            mode="lines+markers",
            name="sharpness",
            line={"color": PALETTE["norm"]},
            marker={"size": 7},
        )
    )
    fig.add_trace(trace_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (4) progress


def progress_losses(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Restricted, excluded, train and test loss together (log scale), phases shaded.

    Restricted loss (all p^2 pairs) keeps only the key frequencies' cos/sin(w_k(a+b))
    directions of the logits; excluded loss (training pairs) removes them.
    """
    fig = new_figure(
        "Progress measures: restricted and excluded loss",
        "epoch",
        "cross-entropy loss (nats)",
        log_y=True,
    )
    fig.add_trace(trace_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    fig.add_trace(trace_line(measure_series(table, "test_loss"), "test loss", PALETTE["test"]))
    fig.add_trace(
        trace_line(
            measure_series(table, "restricted_loss", "all"),
            "restricted loss (all pairs)",
            PALETTE["restricted"],
        )
    )
    fig.add_trace(
        trace_line(
            measure_series(table, "excluded_loss", "all"),
            "excluded loss (train pairs)",
            PALETTE["excluded"],
        )
    )
    shade_phases(fig, phases)
    return fig


def excluded_loss_per_frequency(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Excluded loss with each key frequency removed alone, and all together (log scale)."""
    fig = new_figure(
        "Excluded loss, one key frequency at a time",
        "epoch",
        "cross-entropy loss on train pairs (nats)",
        log_y=True,
    )
    fig.add_trace(trace_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    for k in sorted(key_freqs):
        fig.add_trace(
            trace_line(
                measure_series(table, "excluded_loss", k),
                f"without k={k}",
                freq_color(k, key_freqs),
            )
        )
    fig.add_trace(
        trace_line(
            measure_series(table, "excluded_loss", "all"),
            "without all key freqs",
            PALETTE["excluded"],
            line={"dash": "dash"},
        )
    )
    shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (5) weight norm


def weight_norm_decay(
    table: pd.DataFrame, fits: Mapping | None = None, phases: Phases | None = None
) -> go.Figure:
    """Total sum of squared weights, with the exponential fitted in each phase.

    ``fits`` is the summary's ``weight_norm_fits`` (computed in the analysis by
    :func:`grokinterp.analysis.summary.weight_norm_fits`): per phase the start, end, fitted
    value at the start and rate per epoch, and the pure-weight-decay rate 2 lr wd.  Each
    fit is drawn over its phase, with the weight-decay prediction from the same start
    value, so the two slopes can be compared; nothing is fitted here.
    """
    series = measure_series(table, "weight_norm_sq", "total")
    fig = new_figure("Sum of squared weights", "epoch", "sum of squared weights", log_y=True)
    fig.add_trace(trace_line(series, "sum of squared weights", PALETTE["norm"]))
    segments = list((fits or {}).get("fits", []))
    if segments:
        epochs = series.index.values.astype(float)
        predicted = float(fits["predicted_rate"])
        x, fitted, decay = [], [], []
        for seg in segments:
            t = epochs[(epochs >= seg["start"]) & (epochs <= seg["end"])]
            x += [*t, None]
            fitted += [*(seg["amplitude"] * np.exp(-seg["rate"] * (t - seg["start"]))), None]
            decay += [*(seg["amplitude"] * np.exp(-predicted * (t - seg["start"]))), None]
            fig.add_annotation(
                x=(seg["start"] + seg["end"]) / 2,
                y=float(np.log10(seg["amplitude"])),
                text=f"{seg['phase']}: {seg['rate']:.2e}/epoch",
                showarrow=False,
                yshift=16,
                font={"size": 11, "color": PALETTE["fit"]},
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=fitted,
                mode="lines",
                name="exponential fitted per phase",
                line={"color": PALETTE["fit"], "dash": "dash", "width": 2},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=decay,
                mode="lines",
                name=f"pure weight decay exp(-2·lr·wd·t): rate {predicted:.2e} / epoch",
                line={"color": PALETTE["theory"], "dash": "dot", "width": 2},
            )
        )
        fig.update_yaxes(range=log_range(series.values))
    shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (6) attention


def attention_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Per head: mean attention from '=' to a, b and '=' over epochs (keys like 'h0:a')."""
    wide = measure_wide(table, "attn_to")
    heads = sorted({c.split(":")[0] for c in wide.columns}, key=lambda h: int(h[1:]))
    fig = make_subplots(
        rows=1, cols=len(heads), shared_yaxes=True, subplot_titles=[f"head {h[1:]}" for h in heads]
    )
    for col, head in enumerate(heads, start=1):
        for target, colour in PALETTE["targets"].items():
            key = f"{head}:{target}"
            if key not in wide.columns:
                continue
            s = wide[key].dropna()
            fig.add_trace(
                go.Scatter(
                    x=s.index.values,
                    y=s.values,
                    mode="lines",
                    name=f"to {target}",
                    legendgroup=target,
                    showlegend=col == 1,
                    line={"color": colour},
                ),
                row=1,
                col=col,
            )
    style_figure(
        fig, "Attention from '=' to each input, per head", width=max(WIDTH, 300 * len(heads))
    )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="mean attention weight", range=[0, 1], row=1, col=1)
    shade_phases(fig, phases, subplots=True)
    return fig


def neurons_per_frequency(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Neurons owned by each frequency (fraction >= threshold) over epochs.

    A key frequency's curve leaving zero is that frequency's birth.
    """
    wide = measure_wide(table, "neurons_per_freq")
    fig = new_figure("Neurons per frequency over training", "epoch", "neurons (count)")
    freqs = [c for c in wide.columns if isinstance(c, int)]
    keys = set(int(k) for k in key_freqs)
    for k in freqs:
        s = wide[k].dropna()
        if k == 0:  # column 0 counts the neurons no frequency owns
            continue
        if k not in keys and not (s > 0).any():
            continue
        other = k not in keys
        names = {t.name for t in fig.data}
        fig.add_trace(
            go.Scatter(
                x=s.index.values,
                y=s.values,
                mode="lines",
                name="other frequencies" if other else f"k={k}",
                legendgroup="other frequencies" if other else f"k={k}",
                showlegend=not other or "other frequencies" not in names,
                hovertext=f"k={k}",
                line={"color": freq_color(k, key_freqs), "width": 1 if other else 2},
            )
        )
    shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (8) logits


def logit_structure(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Fraction of the logits' variance explained by cos(w_k(a+b-c)), over epochs.

    ``w_k = 2 pi k / p``; one curve per key frequency and one for all of them together.
    """
    fig = new_figure(
        "Logit structure: variance explained by cos(w_k(a+b-c))",
        "epoch",
        "fraction of logit variance explained",
    )
    for k in sorted(key_freqs):
        fig.add_trace(
            trace_line(
                measure_series(table, "logit_explained_var", k), f"k={k}", freq_color(k, key_freqs)
            )
        )
    fig.add_trace(
        trace_line(
            measure_series(table, "logit_explained_var", "all"),
            "all key frequencies",
            PALETTE["norm"],
            line={"width": 3},
        )
    )
    fig.update_yaxes(range=[0, 1.02])
    shade_phases(fig, phases)
    return fig
