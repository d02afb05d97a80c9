"""Figures of the toy model families (docs/toys.md): data in, a plotly Figure out.

- :func:`toy_curves`: losses, accuracies and the generalisation gap of one toy run
  against epoch (from its metrics), T_mem and T_grok marked;
- :func:`block_norms`: the sum of squared weights per block against epoch (from the
  analysis table), e.g. the signal and memorisation blocks of the competing-features model;
- :func:`measured_vs_bound`: each run's measured time to generalise against the ridge
  paper's lower bound, with the line y = x (a run under it breaks the bound);
- :func:`delay_vs_inverse_lambda`: time to generalise against 1/lambda, log-log, per group
  with its fitted 1/lambda-law line;
- :func:`delay_vs_decay_rate`: delays of several sweeps (transformer and toys) against
  1 / (decay per step), one series each.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grokinterp.plots.style import PALETTE, style_figure

__all__ = [
    "block_norms",
    "delay_vs_decay_rate",
    "delay_vs_inverse_lambda",
    "measured_vs_bound",
    "toy_curves",
]

SERIES_COLORS = PALETTE["series"]


def toy_curves(
    metrics: Mapping[str, np.ndarray], phases: Mapping[str, int | None], title: str
) -> go.Figure:
    """Three panels: train/test loss (log), train/test accuracy, G = test - train loss."""
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("loss", "accuracy", "generalisation gap G(t)"),
    )
    e = np.asarray(metrics["epoch"])
    for split in ("train", "test"):
        for row, col in ((1, f"{split}_loss"), (2, f"{split}_acc")):
            v = np.asarray(metrics[col], dtype=float)
            keep = np.isfinite(v)
            fig.add_trace(
                go.Scatter(
                    x=e[keep], y=v[keep], name=col, mode="lines", line={"color": PALETTE[split]}
                ),
                row=row,
                col=1,
            )
    gap = np.asarray(metrics["test_loss"], dtype=float) - np.asarray(metrics["train_loss"])
    keep = np.isfinite(gap)
    fig.add_trace(
        go.Scatter(
            x=e[keep],
            y=gap[keep],
            name="G = test - train loss",
            mode="lines",
            line={"color": PALETTE["norm"]},
        ),
        row=3,
        col=1,
    )
    for name, epoch in phases.items():
        if epoch is not None:
            fig.add_vline(x=epoch, line={"dash": "dot", "color": "#888"}, annotation_text=name)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log", title_text="epoch", row=3, col=1)
    style_figure(fig, title, height=800)
    return fig


def block_norms(table: pd.DataFrame, title: str) -> go.Figure:
    """Sum of squared weights per key of ``weight_norm_sq`` against epoch (log-log)."""
    rows = table[table["measure"] == "weight_norm_sq"]
    fig = go.Figure()
    for i, (key, group) in enumerate(rows.groupby("key", sort=False)):
        group = group.sort_values("epoch")
        fig.add_trace(
            go.Scatter(
                x=group["epoch"],
                y=group["value"],
                name=str(key),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": SERIES_COLORS[i % len(SERIES_COLORS)]},
            )
        )
    fig.update_xaxes(title_text="epoch", type="log")
    fig.update_yaxes(title_text="sum of squared weights", type="log")
    style_figure(fig, title)
    return fig


def measured_vs_bound(table: pd.DataFrame, color_by: str = "weight_decay") -> go.Figure:
    """Measured time to generalise (``t_generalise``) against the bound (``bound``)."""
    rows = table[np.isfinite(table["bound"].astype(float))]
    fig = go.Figure()
    for i, (value, group) in enumerate(rows.groupby(color_by)):
        fig.add_trace(
            go.Scatter(
                x=group["bound"],
                y=group["t_generalise"],
                mode="markers",
                marker={"size": 9, "color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                name=f"{color_by} {value:g}" if isinstance(value, float) else f"{color_by} {value}",
                text=[html.escape(str(n)) for n in group["name"]],
                hovertemplate="%{text}<br>bound %{x:.4g}<br>measured %{y:.4g}<extra></extra>",
            )
        )
    finite = rows[["bound", "t_generalise"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if len(finite):
        lo, hi = finite.min() / 1.5, finite.max() * 1.5
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="y = x (bound)",
                line={"dash": "dash", "color": "#888"},
            )
        )
    fig.update_xaxes(title_text="lower bound (epochs)", type="log")
    fig.update_yaxes(title_text="measured time to generalise (epochs)", type="log")
    style_figure(fig, "measured time to generalise against the ridge bound")
    return fig


def delay_vs_inverse_lambda(
    table: pd.DataFrame, fits: Mapping[str, dict], group_by: str = "family"
) -> go.Figure:
    """``t_generalise`` against 1 / weight_decay per group (log-log), with each group's
    fitted line (``fits[group]``: slope, intercept of ln t on ln(1/lambda))."""
    fig = go.Figure()
    for i, (group, rows) in enumerate(table.groupby(group_by)):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        x = 1 / rows["weight_decay"].to_numpy(dtype=float)
        t = rows["t_generalise"].to_numpy(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=t,
                mode="markers",
                name=str(group),
                marker={"size": 9, "color": color},
                text=[html.escape(str(n)) for n in rows["name"]],
            )
        )
        fit = fits.get(str(group))
        if fit:
            xs = np.geomspace(x.min(), x.max(), 20)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=np.exp(fit["intercept"]) * xs ** fit["slope"],
                    mode="lines",
                    line={"color": color, "dash": "dash"},
                    name=f"{group}: slope {fit['slope']:.3g}",
                )
            )
    fig.update_xaxes(title_text="1 / lambda", type="log")
    fig.update_yaxes(title_text="time to generalise (epochs)", type="log")
    style_figure(fig, "the 1/lambda law: time to generalise against 1/lambda (fixed lr)")
    return fig


def delay_vs_decay_rate(series: Mapping[str, pd.DataFrame]) -> go.Figure:
    """One series per sweep: columns ``rate`` (decay per optimiser step: lr wd, or 2 lr
    lambda for GD on an L2 penalty) and ``delay_steps`` (delay in optimiser steps); drawn
    as delay against 1 / rate, log-log, with a slope-1 guide through each series' centre."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(series.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        x = 1 / rows["rate"].to_numpy(dtype=float)
        y = rows["delay_steps"].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
        fig.add_trace(
            go.Scatter(
                x=x[keep], y=y[keep], mode="markers", name=label, marker={"size": 8, "color": color}
            )
        )
        if keep.sum():
            cx, cy = np.exp(np.log(x[keep]).mean()), np.exp(np.log(y[keep]).mean())
            xs = np.array([x[keep].min(), x[keep].max()])
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=cy * xs / cx,
                    mode="lines",
                    showlegend=False,
                    line={"color": color, "dash": "dot"},
                )
            )
    fig.update_xaxes(title_text="1 / (decay per step)", type="log")
    fig.update_yaxes(title_text="delay (optimiser steps)", type="log")
    style_figure(fig, "grokking delay against 1 / (decay per step); dotted: slope 1")
    return fig
