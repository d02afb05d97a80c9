"""The look of every figure: one palette, the font and size, phase shading, trace helpers.

Colours are fixed by :data:`PALETTE`: one colour per curve kind, per phase and per
attention target, and per key frequency (in sorted order, so a frequency has the same
colour in every figure of a run).  The key-frequency colours are kept apart from the
curve colours, so no figure shows two series in one colour; the non-key frequencies share
one grey and one legend entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

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
    # (none close to a curve colour above: a figure never shows two traces in one colour)
    "frequencies": (
        "#FF7F0E",
        "#17BECF",
        "#E377C2",
        "#BCBD22",
        "#393B79",
        "#1B9E77",
        "#E7298A",
        "#800000",
        "#808000",
        "#66C2A5",
    ),
    "other frequency": "#BBBBBB",
    # runs of a sweep: censored runs (never grokked) in grey; a colour per series
    "censored": "#888888",
    "series": ("#1F77B4", "#D62728", "#2CA02C", "#9467BD", "#FF7F0E", "#8C564B", "#17BECF"),
    "heatmap": "Viridis",
    "diverging": "RdBu",
}

CENSORED_COLOR = PALETTE["censored"]
LEGEND_TOP_LEFT = {"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top"}
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


def freq_color(k: int, key_freqs: Sequence[int]) -> str:
    return frequency_colors(key_freqs).get(int(k), PALETTE["other frequency"])


# ---------------------------------------------------------------------------- helpers


def new_figure(title: str, xaxis: str, yaxis: str, *, log_y: bool = False) -> go.Figure:
    fig = go.Figure()
    style_figure(fig, title)
    fig.update_xaxes(title_text=xaxis)
    fig.update_yaxes(title_text=yaxis, type="log" if log_y else "linear")
    return fig


def style_figure(fig: go.Figure, title: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    fig.update_layout(
        title={"text": title, "x": 0.5, "xanchor": "center"},
        font=FONT,
        template="plotly_white",
        width=width,
        height=height,
        legend={"bgcolor": "rgba(255,255,255,0.7)"},
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
    )


def shade_phases(fig: go.Figure, phases: Phases | None, *, subplots: bool = False) -> None:
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
        fig.add_trace(legend_entry(f"phase: {name}", mode="markers", marker=marker))
    for label, epoch in (("T_mem", phases.t_mem), ("T_grok", phases.t_grok)):
        if epoch is not None and np.isfinite(epoch):
            fig.add_vline(
                x=epoch, line_dash="dash", line_width=1, line_color=PALETTE[label], **where
            )
            line = {"dash": "dash", "width": 1, "color": PALETTE[label]}
            fig.add_trace(legend_entry(f"{label} = {epoch:g}", mode="lines", line=line))


def legend_entry(name: str, **style) -> go.Scatter:
    """A trace with no data that only adds a legend entry (for shapes, which have none)."""
    return go.Scatter(x=[None], y=[None], name=name, legendgroup="phases", **style)


def trace_line(series: pd.Series, name: str, color: str, **kwargs) -> go.Scatter:
    return go.Scatter(
        x=series.index.values,
        y=series.values,
        mode="lines",
        name=name,
        line={"color": color, **kwargs.pop("line", {})},
        **kwargs,
    )


def log_range(values: np.ndarray) -> list[float]:
    """A log-axis range around the data, so a steep prediction does not squash it."""
    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = np.log10(v.min()), np.log10(v.max())
    pad = max(0.1 * (hi - lo), 0.05)
    return [lo - pad, hi + pad]
