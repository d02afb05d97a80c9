"""Pictures of one checkpoint: the spectrum at one epoch, attention maps, neuron clusters,
the embedding in the Fourier basis, one neuron, and the logit profile."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.plots.curves import measure_wide
from grokinterp.plots.style import HEIGHT, PALETTE, WIDTH, freq_color, new_figure, style_figure


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
            marker_color=[freq_color(k, key_freqs) for k in freqs],
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
                font={"size": 12, "color": freq_color(k, key_freqs)},
            )
    what = "W_E" if measure.startswith("embed") else "W_L = W_out W_U"
    style_figure(
        fig, title or f"Fourier spectrum of {what} at epoch {epoch} (key frequencies marked)"
    )
    fig.update_xaxes(title_text="frequency k (0 = constant)")
    fig.update_yaxes(title_text="norm of Fourier component")
    fig.update_layout(showlegend=False)
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
        # exactly the p x p cells: no padding past p - 1 to fill the panel's aspect ratio
        fig.update_xaxes(range=[-0.5, p - 0.5], constrain="domain", row=1, col=h + 1)
        fig.update_yaxes(
            range=[p - 0.5, -0.5],  # reversed: a = 0 on top
            constrain="domain",
            scaleanchor=f"x{h + 1 if h else ''}",
            row=1,
            col=h + 1,
        )
    when = f" at epoch {epoch}" if epoch is not None else ""
    style_figure(
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
    threshold: float = NEURON_THRESHOLD,
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
        other = k not in keys
        fig.add_trace(
            go.Box(
                y=frac[sel],
                x=[f"k={k}"] * int(sel.sum()),
                name="other frequencies" if other else f"k={k} ({members} ≥ thr)",
                legendgroup="other frequencies" if other else f"k={k}",
                showlegend=not other or k == others[0],
                boxpoints="all",
                jitter=0.6,
                pointpos=0,
                marker={"size": 4, "opacity": 0.7},
                line={"width": 1},
                fillcolor="rgba(0,0,0,0)",
                marker_color=freq_color(k, key_freqs),
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
    style_figure(fig, f"MLP neurons by best frequency{when}{dead}")
    fig.update_xaxes(title_text="best frequency of the neuron", type="category")
    fig.update_yaxes(title_text="fraction of variance explained", range=[0, 1.05])
    fig.update_layout(showlegend=len(keys + others) <= 20)
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
    style_figure(
        fig, f"Embedding W_E in the Fourier basis{when}", height=max(HEIGHT, 6 * len(labels))
    )
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
    style_figure(fig, f"MLP neuron {neuron}{which}", width=1100, height=520)
    return fig


def logit_profile(curve: np.ndarray, key_freqs: Sequence[int] = ()) -> go.Figure:
    """Mean centred logit against d = (a + b - c) mod p, with each key frequency's cosine.

    curve: (p,) from :func:`grokinterp.circuit.logits_along_sum`.  The cosines
    cos(w_k d) are scaled to the curve by least squares, to show it is their sum.
    """
    y = np.asarray(curve, dtype=float)
    p = y.shape[0]
    d = np.arange(p)
    fig = new_figure(
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
                    line={"color": freq_color(k, key_freqs), "width": 1},
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
