"""Epoch-slider figures: one-checkpoint pictures with a plotly slider over training.

Each function takes the :class:`grokinterp.analysis.frames.Frames` that ``analyze``
stored (in the task's basis: Z_p, or Z_{p-1} by discrete log for mul and div) and returns
a ``plotly.graph_objects.Figure`` with one frame per epoch (named by the epoch) and a
slider labelled by epoch; the figure starts on the last frame.  :func:`slider_figures`
returns all four.

Size.  Frames are stored as plotly typed arrays (binary, base64 in the HTML): values are
float32 rounded to 3 significant digits and the attention maps are whole percent in
uint8 (one byte per input and head), so the attention slider of a p = 113 run with 4 heads
and 60 frames is a few MB instead of tens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.analysis.frames import Frames
from grokinterp.plots.style import FONT, PALETTE, WIDTH, frequency_colors

__all__ = [
    "attention_slider",
    "embedding_spectrum_slider",
    "logit_profile_slider",
    "neuron_clusters_slider",
    "round_sig",
    "slider_figures",
]

HEIGHT = 560  # taller than the static figures: the slider sits below the axes
OTHER = PALETTE["other frequency"]


def round_sig(x: np.ndarray, digits: int = 3) -> np.ndarray:
    """float32 copy of ``x`` rounded to ``digits`` significant digits (NaN and 0 kept)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(np.isfinite(x) & (x != 0), np.floor(np.log10(np.abs(x))), 0.0)
    scale = 10.0 ** (digits - 1 - mag)
    return (np.round(x * scale) / scale).astype(np.float32)


def _colors(freqs: Sequence[int], key_freqs: Sequence[int]) -> list[str]:
    colours = frequency_colors(key_freqs)
    return [colours.get(int(k), OTHER) for k in freqs]


def _title(data: Frames, i: int, what: str) -> str:
    epoch = data.epochs[i]
    phases = [name for name, e in data.anchors.items() if e == epoch]
    mark = f" [{', '.join(phases)}]" if phases else ""
    return (
        f"{what}: epoch {epoch}{mark}<br><sup>train loss {data.train_loss[i]:.3g}, "
        f"test loss {data.test_loss[i]:.3g}, test acc {data.test_acc[i]:.3f}</sup>"
    )


def _animate(fig: go.Figure, data: Frames, frame_traces: list, what: str) -> go.Figure:
    """Add one frame per epoch (its traces, its title) and a slider; show the last frame."""
    fig.frames = [
        go.Frame(
            data=traces,
            name=str(epoch),
            layout={"title": {"text": _title(data, i, what)}},
        )
        for i, (epoch, traces) in enumerate(zip(data.epochs, frame_traces, strict=True))
    ]
    fig.add_traces(frame_traces[-1])  # the figure opens on the last frame
    steps = [
        {
            "method": "animate",
            "label": str(epoch),
            "args": [
                [str(epoch)],
                {
                    "mode": "immediate",
                    "frame": {"duration": 0, "redraw": True},
                    "transition": {"duration": 0},
                },
            ],
        }
        for epoch in data.epochs
    ]
    fig.update_layout(
        title={"text": _title(data, len(data.epochs) - 1, what), "x": 0.5, "xanchor": "center"},
        font=FONT,
        template="plotly_white",
        width=fig.layout.width or WIDTH,
        height=fig.layout.height or HEIGHT,
        margin={"l": 70, "r": 30, "t": 90, "b": 60},
        sliders=[
            {
                "active": len(steps) - 1,
                "currentvalue": {"prefix": "epoch "},
                "pad": {"t": 50},
                "steps": steps,
            }
        ],
    )
    return fig


def _in_basis(data: Frames) -> str:
    return "" if data.basis == "Z_p" else f", {data.basis} basis"


def embedding_spectrum_slider(data: Frames) -> go.Figure:
    """Norm of the embedding's Fourier components per frequency, one frame per epoch."""
    freqs = np.arange(data.embed_freq_norm.shape[1])
    colours = _colors(freqs, data.key_freqs)
    values = round_sig(data.embed_freq_norm)
    frames = [
        [
            go.Bar(
                x=freqs,
                y=row,
                marker_color=colours,
                name="W_E",
                hovertemplate="k=%{x}: %{y}<extra></extra>",
            )
        ]
        for row in values
    ]
    fig = go.Figure()
    _animate(fig, data, frames, f"Embedding W_E in the Fourier basis{_in_basis(data)}")
    fig.update_xaxes(title_text="frequency k (0 = constant)")
    fig.update_yaxes(
        title_text="norm of the cos k, sin k components", range=[0, 1.05 * np.nanmax(values)]
    )
    return fig


def neuron_clusters_slider(data: Frames) -> go.Figure:
    """Each neuron's best frequency and its fraction of variance, one frame per epoch.

    Points are spread sideways by a fixed per-neuron offset so a cluster reads as a column;
    key frequencies in colour.  Above the dashed threshold a neuron belongs to its frequency.
    """
    n = data.best_freq.shape[1]
    jitter = (np.arange(n) * 0.618034 % 1.0 - 0.5) * 0.6  # fixed per neuron
    frames = []
    for best, frac in zip(data.best_freq, round_sig(data.frac_explained), strict=True):
        alive = np.isfinite(frac)
        x = np.where(alive, best + jitter, np.nan).astype(np.float32)
        frames.append(
            [
                go.Scatter(
                    x=np.round(x, 2),
                    y=frac,
                    mode="markers",
                    marker={"size": 5, "opacity": 0.7, "color": _colors(best, data.key_freqs)},
                    customdata=np.arange(n, dtype=np.int16),
                    hovertemplate="neuron %{customdata}<br>fraction %{y}<extra></extra>",
                    name="neurons",
                )
            ]
        )
    fig = go.Figure()
    _animate(fig, data, frames, f"MLP neurons by best frequency{_in_basis(data)}")
    fig.add_hline(y=data.threshold, line_dash="dash", line_color="#555555")
    fig.update_xaxes(title_text="best frequency of the neuron", range=[0.3, data.n // 2 + 0.7])
    fig.update_yaxes(title_text="fraction of variance explained", range=[0, 1.05])
    return fig


def attention_slider(data: Frames) -> go.Figure:
    """Each head's attention from '=' to a for every input (a, b), one frame per epoch.

    Values are whole percent (uint8), to keep the file small.
    """
    n_frames, n_heads, p, _ = data.attention_to_a.shape
    percent = np.clip(np.round(100 * data.attention_to_a), 0, 100).astype(np.uint8)
    axis = np.arange(p, dtype=np.int16)
    fig = make_subplots(
        rows=1,
        cols=n_heads,
        subplot_titles=[f"head {h}" for h in range(n_heads)],
        horizontal_spacing=0.03,
    )
    frames = []
    for maps in percent:
        frames.append(
            [
                go.Heatmap(
                    z=maps[h],
                    x=axis,
                    y=axis,
                    zmin=0,
                    zmax=100,
                    colorscale="Viridis",
                    showscale=h == n_heads - 1,
                    colorbar={"title": {"text": "% to a"}},
                    hovertemplate="a %{y}, b %{x}<br>attention to a %{z}%<extra></extra>",
                    xaxis=f"x{h + 1 if h else ''}",
                    yaxis=f"y{h + 1 if h else ''}",
                )
                for h in range(n_heads)
            ]
        )
    fig.update_layout(width=max(WIDTH, 280 * n_heads + 120), height=500)
    _animate(fig, data, frames, "Attention from '=' to a")
    for h in range(n_heads):
        fig.update_xaxes(title_text="b", range=[-0.5, p - 0.5], row=1, col=h + 1)
        fig.update_yaxes(
            range=[p - 0.5, -0.5], scaleanchor=f"x{h + 1 if h else ''}", row=1, col=h + 1
        )
    fig.update_yaxes(title_text="a", row=1, col=1)
    return fig


def logit_profile_slider(data: Frames) -> go.Figure:
    """Mean centred logit against d (e.g. (a + b - c) mod p), one frame per epoch.

    A Fourier circuit makes this a sum of cos(w_k d) over the key frequencies, peaking at
    d = 0 (the right answer); memorisation leaves it flat.
    """
    d = np.arange(data.n, dtype=np.int16)
    values = round_sig(data.logit_profile)
    frames = [
        [
            go.Scatter(
                x=d,
                y=row,
                mode="lines+markers",
                name="logits",
                line={"color": "#333333", "width": 3},
                marker={"size": 5},
            )
        ]
        for row in values
    ]
    fig = go.Figure()
    _animate(fig, data, frames, f"Logits against {data.profile_label}")
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo) or 1.0
    fig.update_xaxes(title_text=f"d = {data.profile_label}")
    fig.update_yaxes(title_text="mean centred logit", range=[lo - pad, hi + pad])
    return fig


def slider_figures(data: Frames) -> dict[str, go.Figure]:
    """The four slider figures, by file stem (for report.html)."""
    return {
        "scrub_embedding_spectrum": embedding_spectrum_slider(data),
        "scrub_neuron_clusters": neuron_clusters_slider(data),
        "scrub_attention": attention_slider(data),
        "scrub_logit_profile": logit_profile_slider(data),
    }
