"""Figures of a run: each function takes data and returns a ``plotly.graph_objects.Figure``.

Curves come from the tidy analysis table (columns ``epoch, measure, key, value``; see
:mod:`grokinterp.analysis`), phase boundaries and key frequencies from the run summary,
and single-checkpoint pictures from arrays the caller measured.  Nothing here recomputes a
measure or writes a file: :mod:`grokinterp.figures` saves them.

Colours are fixed by :data:`PALETTE`: one colour per curve kind, per phase and per
attention target, and per key frequency (in sorted order, so a frequency has the same
colour in every figure of a run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.phases import fit_weight_decay, predicted_sq_norm_rate

__all__ = [
    "PALETTE",
    "PHASE_NAMES",
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
    "metric_curves",
    "neuron_clusters",
    "neuron_picture",
    "neurons_per_frequency",
    "progress_losses",
    "spectrum_bar",
    "spectrum_heatmap",
    "weight_norm_decay",
]

PHASE_NAMES = ("memorisation", "circuit formation", "cleanup")

PALETTE: dict = {
    # curves
    "train": "#1F77B4",
    "test": "#D62728",
    "restricted": "#2CA02C",
    "excluded": "#9467BD",
    "embed": "#1F77B4",
    "wl": "#FF7F0E",
    "norm": "#333333",
    "fit": "#D62728",
    "theory": "#7F7F7F",
    # phases (translucent fills) and accuracy crossings
    "phases": {
        "memorisation": "rgba(31, 119, 180, 0.12)",
        "circuit formation": "rgba(255, 127, 14, 0.14)",
        "cleanup": "rgba(44, 160, 44, 0.13)",
    },
    "T_mem": "#1F77B4",
    "T_grok": "#D62728",
    # attention targets
    "targets": {"a": "#1F77B4", "b": "#FF7F0E", "=": "#7F7F7F"},
    # key frequencies in sorted order; every other frequency is grey
    "frequencies": (
        "#E41A1C",
        "#377EB8",
        "#4DAF4A",
        "#984EA3",
        "#FF7F00",
        "#A65628",
        "#F781BF",
        "#17BECF",
        "#BCBD22",
        "#525252",
    ),
    "other frequency": "#BBBBBB",
    "heatmap": "Viridis",
    "diverging": "RdBu",
}

FONT = {"family": "Helvetica, Arial, sans-serif", "size": 14}
WIDTH, HEIGHT = 900, 500


@dataclass(frozen=True)
class Phases:
    """Phase boundaries (epochs) of a run; ``None`` where the analysis found none.

    Memorisation runs from epoch 0 to ``memorisation_end``, circuit formation to
    ``circuit_end``, cleanup to ``cleanup_end``.  ``t_mem``/``t_grok`` are the 99%
    train/test accuracy crossings, drawn as dashed lines.
    """

    memorisation_end: float | None = None
    circuit_end: float | None = None
    cleanup_end: float | None = None
    t_mem: float | None = None
    t_grok: float | None = None

    def spans(self) -> list[tuple[str, float, float]]:
        """(name, start, end) of each phase whose end is known and after its start."""
        out, start = [], 0.0
        ends = (self.memorisation_end, self.circuit_end, self.cleanup_end)
        for name, end in zip(PHASE_NAMES, ends, strict=True):
            if end is None or not np.isfinite(end):
                break
            if end > start:
                out.append((name, start, float(end)))
            start = float(end)
        return out


def frequency_colors(key_freqs: Sequence[int]) -> dict[int, str]:
    """Colour of each key frequency: the palette in sorted frequency order."""
    colours = PALETTE["frequencies"]
    return {int(k): colours[i % len(colours)] for i, k in enumerate(sorted(key_freqs))}


def _freq_color(k: int, key_freqs: Sequence[int]) -> str:
    return frequency_colors(key_freqs).get(int(k), PALETTE["other frequency"])


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


# ---------------------------------------------------------------------------- helpers


def _figure(title: str, xaxis: str, yaxis: str, *, log_y: bool = False) -> go.Figure:
    fig = go.Figure()
    _style(fig, title)
    fig.update_xaxes(title_text=xaxis)
    fig.update_yaxes(title_text=yaxis, type="log" if log_y else "linear")
    return fig


def _style(fig: go.Figure, title: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    fig.update_layout(
        title={"text": title, "x": 0.5, "xanchor": "center"},
        font=FONT,
        template="plotly_white",
        width=width,
        height=height,
        legend={"bgcolor": "rgba(255,255,255,0.7)"},
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
    )


def _shade_phases(fig: go.Figure, phases: Phases | None, *, subplots: bool = False) -> None:
    """Translucent bands for the three phases and dashed lines at T_mem and T_grok."""
    if phases is None:
        return
    where = {"row": "all", "col": "all"} if subplots else {}
    for name, start, end in phases.spans():
        fig.add_vrect(
            x0=start,
            x1=end,
            fillcolor=PALETTE["phases"][name],
            line_width=0,
            layer="below",
            **where,
        )
        # labelled in the legend: band labels collide when a phase is short on the axis
        marker = {
            "symbol": "square",
            "size": 14,
            "color": PALETTE["phases"][name],
            "line": {"width": 0},
        }
        fig.add_trace(_legend_entry(f"phase: {name}", mode="markers", marker=marker))
    for label, epoch in (("T_mem", phases.t_mem), ("T_grok", phases.t_grok)):
        if epoch is not None and np.isfinite(epoch):
            fig.add_vline(
                x=epoch, line_dash="dash", line_width=1, line_color=PALETTE[label], **where
            )
            line = {"dash": "dash", "width": 1, "color": PALETTE[label]}
            fig.add_trace(_legend_entry(f"{label} = {epoch:g}", mode="lines", line=line))


def _legend_entry(name: str, **style) -> go.Scatter:
    """A trace with no data that only adds a legend entry (for shapes, which have none)."""
    return go.Scatter(x=[None], y=[None], name=name, legendgroup="phases", **style)


def _line(series: pd.Series, name: str, color: str, **kwargs) -> go.Scatter:
    return go.Scatter(
        x=series.index.values,
        y=series.values,
        mode="lines",
        name=name,
        line={"color": color, **kwargs.pop("line", {})},
        **kwargs,
    )


# ---------------------------------------------------------------------------- (1) losses


def loss_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Train and test loss (log scale) over epochs, with the three phases shaded."""
    fig = _figure("Train and test loss", "epoch", "cross-entropy loss (nats)", log_y=True)
    fig.add_trace(_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    fig.add_trace(_line(measure_series(table, "test_loss"), "test loss", PALETTE["test"]))
    _shade_phases(fig, phases)
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
                    name=f"{split} {'loss' if row == 1 else 'accuracy'}",
                    line={"color": PALETTE[split], "dash": "solid" if row == 1 else "dot"},
                ),
                row=row,
                col=1,
            )
    _style(fig, "Training curves: memorise first, generalise much later", height=700)
    fig.update_yaxes(type="log", title_text="cross-entropy (nats)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    _shade_phases(fig, phases, subplots=True)
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
    _style(fig, title or f"Fourier spectrum of {what} over training")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="frequency k (0 = constant)")
    return fig


def spectrum_bar(
    table: pd.DataFrame,
    key_freqs: Sequence[int],
    measure: str = "embed_freq_norm",
    epoch: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Fourier-component norms of W_E (or W_L) at one checkpoint (default: the last).

    Key frequencies get their palette colour and a label; the rest are grey.
    """
    wide = measure_wide(table, measure)
    epoch = int(wide.index.max()) if epoch is None else int(epoch)
    if epoch not in wide.index:
        raise KeyError(f"no {measure} values at epoch {epoch}; epochs: {list(wide.index[-5:])}")
    freqs = [c for c in wide.columns if isinstance(c, int)]
    values = wide.loc[epoch, freqs].values.astype(float)
    keys = set(int(k) for k in key_freqs)
    fig = go.Figure(
        go.Bar(
            x=freqs,
            y=values,
            name="norm",
            marker_color=[_freq_color(k, key_freqs) for k in freqs],
            hovertemplate="frequency %{x}<br>norm %{y:.3g}<extra></extra>",
        )
    )
    for k, v in zip(freqs, values, strict=True):
        if k in keys:
            fig.add_annotation(
                x=k,
                y=v,
                text=f"k={k}",
                showarrow=False,
                yshift=12,
                font={"size": 12, "color": _freq_color(k, key_freqs)},
            )
    what = "W_E" if measure.startswith("embed") else "W_L = W_out W_U"
    _style(fig, title or f"Fourier spectrum of {what} at epoch {epoch} (key frequencies marked)")
    fig.update_xaxes(title_text="frequency k (0 = constant)")
    fig.update_yaxes(title_text="norm of Fourier component")
    fig.update_layout(showlegend=False)
    return fig


# ---------------------------------------------------------------------------- (3) sparsity


def gini_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Gini coefficient of the Fourier-component norms of W_E and of W_L over epochs."""
    fig = _figure(
        "Sparsity in the Fourier basis (Gini coefficient)",
        "epoch",
        "Gini coefficient (0 = uniform, 1 = one component)",
    )
    fig.add_trace(_line(measure_series(table, "gini_embed"), "W_E", PALETTE["embed"]))
    fig.add_trace(_line(measure_series(table, "gini_wl"), "W_L = W_out W_U", PALETTE["wl"]))
    _shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (4) progress


def progress_losses(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Restricted, excluded, train and test loss together (log scale), phases shaded.

    Restricted loss (all p^2 pairs) keeps only the key frequencies' cos/sin(w_k(a+b))
    directions of the logits; excluded loss (training pairs) removes them.
    """
    fig = _figure(
        "Progress measures: restricted and excluded loss",
        "epoch",
        "cross-entropy loss (nats)",
        log_y=True,
    )
    fig.add_trace(_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    fig.add_trace(_line(measure_series(table, "test_loss"), "test loss", PALETTE["test"]))
    fig.add_trace(
        _line(
            measure_series(table, "restricted_loss", "all"),
            "restricted loss (all pairs)",
            PALETTE["restricted"],
        )
    )
    fig.add_trace(
        _line(
            measure_series(table, "excluded_loss", "all"),
            "excluded loss (train pairs)",
            PALETTE["excluded"],
        )
    )
    _shade_phases(fig, phases)
    return fig


def excluded_loss_per_frequency(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Excluded loss with each key frequency removed alone, and all together (log scale)."""
    fig = _figure(
        "Excluded loss, one key frequency at a time",
        "epoch",
        "cross-entropy loss on train pairs (nats)",
        log_y=True,
    )
    fig.add_trace(_line(measure_series(table, "train_loss"), "train loss", PALETTE["train"]))
    for k in sorted(key_freqs):
        fig.add_trace(
            _line(
                measure_series(table, "excluded_loss", k),
                f"without k={k}",
                _freq_color(k, key_freqs),
            )
        )
    fig.add_trace(
        _line(
            measure_series(table, "excluded_loss", "all"),
            "without all key freqs",
            PALETTE["excluded"],
            line={"dash": "dash"},
        )
    )
    _shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (5) weight norm


def weight_norm_decay(
    table: pd.DataFrame,
    lr: float,
    weight_decay: float,
    phases: Phases | None = None,
    fit_start: float | None = None,
) -> go.Figure:
    """Total sum of squared weights, with an exponential fitted after memorisation.

    The fit (:func:`grokinterp.phases.fit_weight_decay`) uses the checkpoints from
    ``fit_start`` (default: the end of memorisation, else T_mem) on.  The weight-decay
    prediction ``exp(-2 lr wd t)`` for the sum of squares
    (:func:`grokinterp.phases.predicted_sq_norm_rate`) is drawn from the fitted value at the
    start, so the two slopes can be compared.
    """
    series = measure_series(table, "weight_norm_sq", "total")
    fig = _figure("Sum of squared weights", "epoch", "sum of squared weights", log_y=True)
    fig.add_trace(_line(series, "sum of squared weights", PALETTE["norm"]))
    if fit_start is None and phases is not None:
        fit_start = next(
            (e for e in (phases.memorisation_end, phases.t_mem) if e is not None), None
        )
    epochs = series.index.values
    start = int(epochs.min() if fit_start is None else fit_start)
    try:
        fit = fit_weight_decay(epochs, series.values, start)
    except ValueError:
        fit = None
    if fit is not None:
        after = epochs >= start
        t = epochs[after]
        fig.add_trace(
            go.Scatter(
                x=t,
                y=fit.prediction[after],
                mode="lines",
                name=f"fit after epoch {start}: rate {fit.rate:.2e} / epoch",
                line={"color": PALETTE["fit"], "dash": "dash", "width": 2},
            )
        )
        rate = predicted_sq_norm_rate(lr, weight_decay)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=fit.amplitude * np.exp(-rate * (t - start)),
                mode="lines",
                name=f"pure weight decay exp(-2·lr·wd·t): rate {rate:.2e} / epoch",
                line={"color": PALETTE["theory"], "dash": "dot", "width": 2},
            )
        )
        fig.update_yaxes(range=_log_range(series.values))
    _shade_phases(fig, phases)
    return fig


def _log_range(values: np.ndarray) -> list[float]:
    """A log-axis range around the data, so a steep prediction does not squash it."""
    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = np.log10(v.min()), np.log10(v.max())
    pad = max(0.1 * (hi - lo), 0.05)
    return [lo - pad, hi + pad]


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
    _style(fig, "Attention from '=' to each input, per head", width=max(WIDTH, 300 * len(heads)))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="mean attention weight", range=[0, 1], row=1, col=1)
    _shade_phases(fig, phases, subplots=True)
    return fig


def attention_maps(maps: np.ndarray, epoch: int | None = None) -> go.Figure:
    """Attention from '=' to a, for every input (a, b), one heatmap per head.

    ``maps``: array (n_heads, p, p), ``maps[h, a, b]`` = head h's attention to position a.
    """
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
        raise ValueError(f"attention maps must have shape (n_heads, p, p), got {maps.shape}")
    n_heads, p = maps.shape[0], maps.shape[1]
    fig = make_subplots(
        rows=1,
        cols=n_heads,
        subplot_titles=[f"head {h}" for h in range(n_heads)],
        horizontal_spacing=0.03,
    )
    for h in range(n_heads):
        fig.add_trace(
            go.Heatmap(
                z=maps[h],
                x=np.arange(p),
                y=np.arange(p),
                zmin=0,
                zmax=1,
                colorscale=PALETTE["heatmap"],
                showscale=h == n_heads - 1,
                colorbar={"title": {"text": "attn to a"}},
                hovertemplate="a %{y}, b %{x}<br>attention to a %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=h + 1,
        )
        fig.update_yaxes(
            autorange="reversed", scaleanchor=f"x{h + 1 if h else ''}", row=1, col=h + 1
        )
    when = f" at epoch {epoch}" if epoch is not None else ""
    _style(
        fig,
        f"Attention from '=' to a for every input (a, b){when}",
        width=max(WIDTH, 280 * n_heads + 120),
        height=420,
    )
    fig.update_xaxes(title_text="b")
    fig.update_yaxes(title_text="a", row=1, col=1)
    return fig


# ---------------------------------------------------------------------------- (7) neurons


def neuron_clusters(
    best_freq: Sequence[int],
    frac_explained: Sequence[float],
    key_freqs: Sequence[int],
    threshold: float = 0.85,
    epoch: int | None = None,
) -> go.Figure:
    """Each MLP neuron's fraction of variance explained by its best frequency, by frequency.

    One column of points per frequency (key frequencies first, in colour); the dashed line
    is the cluster threshold.  Neurons whose fraction is NaN (dead: no variance) are left
    out and counted in the title.
    """
    best = np.asarray(best_freq, dtype=float)
    frac = np.asarray(frac_explained, dtype=float)
    if best.shape != frac.shape:
        raise ValueError(f"best_freq {best.shape} and frac_explained {frac.shape} differ in shape")
    alive = np.isfinite(frac) & np.isfinite(best)
    keys = sorted(int(k) for k in key_freqs)
    others = sorted(set(best[alive].astype(int).tolist()) - set(keys))
    fig = go.Figure()
    for k in keys + others:
        sel = alive & (best == k)
        members = int((frac[sel] >= threshold).sum())
        fig.add_trace(
            go.Box(
                y=frac[sel],
                x=[f"k={k}"] * int(sel.sum()),
                name=f"k={k} ({members} ≥ thr)",
                boxpoints="all",
                jitter=0.6,
                pointpos=0,
                marker={"size": 4, "opacity": 0.7},
                line={"width": 1},
                fillcolor="rgba(0,0,0,0)",
                marker_color=_freq_color(k, key_freqs),
            )
        )
    fig.add_hline(
        y=threshold,
        line_dash="dash",
        line_color="#555555",
        annotation_text=f"cluster threshold {threshold:g}",
        annotation_position="bottom right",
    )
    n_dead = int((~alive).sum())
    when = f" at epoch {epoch}" if epoch is not None else ""
    dead = f"; {n_dead} dead neurons left out" if n_dead else ""
    _style(fig, f"MLP neurons by best frequency{when}{dead}")
    fig.update_xaxes(title_text="best frequency of the neuron", type="category")
    fig.update_yaxes(title_text="fraction of variance explained", range=[0, 1.05])
    fig.update_layout(showlegend=len(keys + others) <= 20)
    return fig


def neurons_per_frequency(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Neurons owned by each frequency (fraction >= threshold) over epochs.

    A key frequency's curve leaving zero is that frequency's birth.
    """
    wide = measure_wide(table, "neurons_per_freq")
    fig = _figure("Neurons per frequency over training", "epoch", "neurons (count)")
    freqs = [c for c in wide.columns if isinstance(c, int)]
    keys = set(int(k) for k in key_freqs)
    for k in freqs:
        s = wide[k].dropna()
        if k == 0:  # column 0 counts the neurons no frequency owns
            continue
        if k not in keys and not (s > 0).any():
            continue
        fig.add_trace(
            go.Scatter(
                x=s.index.values,
                y=s.values,
                mode="lines",
                name=f"k={k}",
                line={"color": _freq_color(k, key_freqs), "width": 2 if k in keys else 1},
            )
        )
    _shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- (8) logits


def logit_structure(
    table: pd.DataFrame, key_freqs: Sequence[int], phases: Phases | None = None
) -> go.Figure:
    """Fraction of the logits' variance explained by cos(w_k(a+b-c)), over epochs.

    ``w_k = 2 pi k / p``; one curve per key frequency and one for all of them together.
    """
    fig = _figure(
        "Logit structure: variance explained by cos(w_k(a+b-c))",
        "epoch",
        "fraction of logit variance explained",
    )
    for k in sorted(key_freqs):
        fig.add_trace(
            _line(
                measure_series(table, "logit_explained_var", k), f"k={k}", _freq_color(k, key_freqs)
            )
        )
    fig.add_trace(
        _line(
            measure_series(table, "logit_explained_var", "all"),
            "all key frequencies",
            PALETTE["norm"],
            line={"width": 3},
        )
    )
    fig.update_yaxes(range=[0, 1.02])
    _shade_phases(fig, phases)
    return fig


# ---------------------------------------------------------------------------- one checkpoint


def embedding_fourier(
    matrix: np.ndarray, labels: Sequence[str], epoch: int | None = None
) -> go.Figure:
    """``F @ W_E[:p]`` as a heatmap: Fourier component (rows) x residual dimension.

    matrix: (p, d_model) from :func:`grokinterp.circuit.embedding_in_fourier_basis`.
    """
    z = np.asarray(matrix, dtype=float)
    lim = float(np.abs(z).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            y=list(labels),
            x=np.arange(z.shape[1]),
            zmid=0,
            zmin=-lim,
            zmax=lim,
            colorscale=PALETTE["diverging"],
            colorbar={"title": {"text": "weight"}},
            hovertemplate="%{y}<br>dim %{x}<br>%{z:.3f}<extra></extra>",
        )
    )
    when = f" at epoch {epoch}" if epoch is not None else ""
    _style(fig, f"Embedding W_E in the Fourier basis{when}", height=max(HEIGHT, 6 * len(labels)))
    fig.update_xaxes(title_text="residual-stream dimension")
    fig.update_yaxes(title_text="Fourier component of the input token", autorange="reversed")
    return fig


def neuron_picture(
    activation: np.ndarray,
    fourier: np.ndarray,
    labels: Sequence[str],
    neuron: int,
    freq: int | None = None,
) -> go.Figure:
    """One neuron: its activation over (a, b) and the same in the 2-D Fourier basis.

    activation: (p, p) [a, b]; fourier: (p, p) [component of a, component of b] from
    :func:`grokinterp.circuit.neuron_fourier_2d`; labels: the basis row names.
    """
    act, four = np.asarray(activation, dtype=float), np.asarray(fourier, dtype=float)
    p = act.shape[0]
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=["activation over (a, b)", "2-D Fourier components"],
    )
    fig.add_trace(
        go.Heatmap(
            z=act,
            x=np.arange(p),
            y=np.arange(p),
            colorscale=PALETTE["heatmap"],
            colorbar={"x": 0.43, "title": {"text": "act"}},
            hovertemplate="a %{y}, b %{x}<br>%{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    lim = float(np.abs(four).max()) or 1.0
    fig.add_trace(
        go.Heatmap(
            z=four,
            x=list(labels),
            y=list(labels),
            zmid=0,
            zmin=-lim,
            zmax=lim,
            colorscale=PALETTE["diverging"],
            colorbar={"title": {"text": "coef"}},
            hovertemplate="a: %{y}, b: %{x}<br>%{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    for col in (1, 2):
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_xaxes(title_text="b", row=1, col=1)
    fig.update_yaxes(title_text="a", row=1, col=1)
    fig.update_xaxes(title_text="component of b", row=1, col=2)
    fig.update_yaxes(title_text="component of a", row=1, col=2)
    which = f" (frequency {freq})" if freq is not None else ""
    _style(fig, f"MLP neuron {neuron}{which}", width=1100, height=520)
    return fig


def logit_profile(curve: np.ndarray, key_freqs: Sequence[int] = ()) -> go.Figure:
    """Mean centred logit against d = (a + b - c) mod p, with each key frequency's cosine.

    curve: (p,) from :func:`grokinterp.circuit.logits_along_sum`.  The cosines
    cos(w_k d) are scaled to the curve by least squares, to show it is their sum.
    """
    y = np.asarray(curve, dtype=float)
    p = y.shape[0]
    d = np.arange(p)
    fig = _figure(
        "Logits depend on (a + b − c) mod p only, peaking at the answer",
        "d = (a + b − c) mod p",
        "mean centred logit",
    )
    fig.add_trace(
        go.Scatter(
            x=d,
            y=y,
            mode="lines+markers",
            name="logits",
            line={"color": PALETTE["norm"], "width": 3},
            marker={"size": 5},
        )
    )
    if len(key_freqs):
        basis = np.stack([np.cos(2 * np.pi * k * d / p) for k in sorted(key_freqs)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        for i, (c, k) in enumerate(zip(coef, sorted(key_freqs), strict=True)):
            fig.add_trace(
                go.Scatter(
                    x=d,
                    y=c * basis[:, i],
                    mode="lines",
                    name=f"{c:.2f}·cos(w_{k} d)",
                    line={"color": _freq_color(k, key_freqs), "width": 1},
                )
            )
        fig.add_trace(
            go.Scatter(
                x=d,
                y=basis @ coef,
                mode="lines",
                name="sum of the cosines",
                line={"color": PALETTE["fit"], "dash": "dash", "width": 2},
            )
        )
    return fig
