"""Curves of the mechanism measures (docs/measures.md): each beside the test loss, and the
restricted loss, sharpness and LLC on one time axis.  Data in, Figure out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.plots.curves import measure_series
from grokinterp.plots.style import PALETTE, WIDTH, Phases, shade_phases, style_figure, trace_line

__all__ = [
    "MECHANISM_PANELS",
    "SWEEP_PANELS",
    "mechanism_curves",
    "sweep_mechanism_curves",
    "timing_curves",
]

# (measure, key, panel title, log axis)
MECHANISM_PANELS = (
    ("softmax_collapse", "", "softmax collapse (fraction of train pairs)", False),
    ("logit_scale", "", "logit scale (mean max logit, train)", False),
    ("gradient_symmetricity", "", "gradient symmetricity", False),
    ("distance_irrelevance", "", "distance irrelevance", False),
    ("neuron_ipr", "", "neuron IPR (mean)", False),
    ("phase_alignment", "", "phase alignment (weighted)", False),
    ("llc", "", "LLC (SGLD; bars: chains' std)", False),
)
_PANEL_HEIGHT = 170


def _series_or_none(table: pd.DataFrame, measure: str, key: str = "") -> pd.Series | None:
    try:
        series = measure_series(table, measure, key)
    except KeyError:
        return None
    return series if len(series) else None


def _stacked(titles: list[str], title: str) -> go.Figure:
    fig = make_subplots(
        rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.04,
        subplot_titles=titles,
    )  # fmt: skip
    style_figure(fig, title)
    fig.update_layout(height=110 + _PANEL_HEIGHT * len(titles), width=WIDTH)
    fig.update_xaxes(title_text="epoch", row=len(titles), col=1)
    return fig


def _add_llc(fig: go.Figure, table: pd.DataFrame, row: int) -> None:
    llc = measure_series(table, "llc")
    std = _series_or_none(table, "llc", "std")
    error = None if std is None else {"type": "data", "array": std.reindex(llc.index).values}
    fig.add_trace(
        go.Scatter(
            x=llc.index.values, y=llc.values, mode="lines+markers", name="LLC",
            line={"color": PALETTE["norm"]}, error_y=error,
        ),
        row=row, col=1,
    )  # fmt: skip


def mechanism_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """The test loss (log axis) and below it every mechanism measure the table has, one
    panel each, on a shared epoch axis with the phases shaded."""
    panels = [p for p in MECHANISM_PANELS if _series_or_none(table, p[0], p[1]) is not None]
    if not panels:
        raise KeyError("no mechanism measure (softmax_collapse, gradient_symmetricity, ...)")
    titles = ["test loss (nats)"] + [p[2] for p in panels]
    fig = _stacked(titles, "Mechanism measures over training, beside the test loss")
    fig.add_trace(trace_line(measure_series(table, "test_loss"), "test loss", PALETTE["test"]))
    fig.update_yaxes(type="log", row=1, col=1)
    colors = PALETTE["frequencies"]
    for row, (measure, key, label, log_y) in enumerate(panels, start=2):
        if measure == "llc":
            _add_llc(fig, table, row)
            continue
        series = measure_series(table, measure, key)
        fig.add_trace(trace_line(series, label, colors[(row - 2) % len(colors)]), row=row, col=1)
        if log_y:
            fig.update_yaxes(type="log", row=row, col=1)
    shade_phases(fig, phases, subplots=True)
    return fig


def timing_curves(table: pd.DataFrame, phases: Phases | None = None) -> go.Figure:
    """Restricted loss, sharpness and LLC on one epoch axis (each at the checkpoints where
    it was computed; the costly two are opt-in), so a reader sees which moves first."""
    restricted = measure_series(table, "restricted_loss", "all")
    sharp = _series_or_none(table, "sharpness")
    if sharp is None and _series_or_none(table, "llc") is None:
        raise KeyError("sharpness and llc (both opt-in; neither computed)")
    titles = ["restricted loss (nats, log)", "sharpness (top Hessian eigenvalue, log)",
              "LLC (bars: chains' std)"]  # fmt: skip
    fig = _stacked(titles, "Which moves first: restricted loss, sharpness, LLC")
    fig.add_trace(trace_line(restricted, "restricted loss", PALETTE["restricted"]), row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    if sharp is not None:
        positive = sharp[sharp > 0]
        fig.add_trace(
            go.Scatter(x=positive.index.values, y=positive.values, mode="lines+markers",
                       name="sharpness", line={"color": PALETTE["wl"]}),
            row=2, col=1,
        )  # fmt: skip
        fig.update_yaxes(type="log", row=2, col=1)
    llc = _series_or_none(table, "llc")
    if llc is not None:
        _add_llc(fig, table, 3)
        if (llc > 0).all():  # a log axis shows the late values too
            fig.update_yaxes(type="log", row=3, col=1)
            fig.layout.annotations[2].text = "LLC (log; bars: chains' std)"
    shade_phases(fig, phases, subplots=True)
    fig.update_xaxes(range=[0, float(np.nanmax(table["epoch"]))])
    return fig


# (measure, panel title, log axis) of the sweep figure, one line per run
SWEEP_PANELS = (
    ("gradient_symmetricity", "gradient symmetricity", False),
    ("distance_irrelevance", "distance irrelevance", False),
    ("softmax_collapse", "softmax collapse (fraction of train pairs)", False),
    ("logit_scale", "logit scale (mean max logit, train; log)", True),
)


def sweep_mechanism_curves(tables: dict[str, pd.DataFrame], labels: dict[str, str]) -> go.Figure:
    """Each run's mechanism measures over training (one line per run, one panel per
    measure); ``tables``: {run name: analysis table}, ``labels``: {run name: legend text}
    (its class, say).  Panels no run has are left out."""
    panels = [
        p for p in SWEEP_PANELS
        if any(_series_or_none(t, p[0]) is not None for t in tables.values())
    ]  # fmt: skip
    if not panels:
        raise KeyError("no run has a mechanism measure (analyse the runs again)")
    fig = _stacked([p[1] for p in panels], "Mechanism measures of each run over training")
    colors = PALETTE["frequencies"]
    for i, (name, table) in enumerate(tables.items()):
        color = colors[i % len(colors)]
        for row, (measure, _, log_y) in enumerate(panels, start=1):
            series = _series_or_none(table, measure)
            if series is None:
                continue
            fig.add_trace(
                go.Scatter(
                    x=series.index.values, y=series.values, mode="lines",
                    name=labels.get(name, name), legendgroup=name, showlegend=row == 1,
                    line={"color": color},
                ),
                row=row, col=1,
            )  # fmt: skip
            if log_y:
                fig.update_yaxes(type="log", row=row, col=1)
    return fig
