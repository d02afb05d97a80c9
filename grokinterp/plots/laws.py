"""Figures of the grokking-delay laws (:mod:`grokinterp.laws`, docs/laws.md).

Drawn from :func:`grokinterp.laws.law_points` (one row per run) and the dict of
:func:`grokinterp.laws.fit_laws`, never by refitting:

- ``laws_delay_vs_rate``: the delay T_grok - T_mem against 1/(lr wd), log-log, with the
  law (a) line and a slope-1 line (pure weight decay) through the fitted runs' centre;
- ``laws_a_predicted``, ``laws_b_predicted``: the delay each law predicts against the
  measured one, with the line y = x.

Censored runs are drawn as open triangles at the least delay they can have (the epochs cap
less T_mem: their delay lies above), never as if they grokked.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from grokinterp.laws import predict
from grokinterp.plots.style import CENSORED_COLOR, LEGEND_TOP_LEFT, PALETTE, style_figure

__all__ = ["delay_vs_rate", "law_figures", "predicted_vs_measured"]

CENSORED_MARKER = {"color": CENSORED_COLOR, "size": 11, "symbol": "triangle-up-open"}
RUN_MARKER = {"color": PALETTE["train"], "size": 9}
TITLES = {"law_a": "law (a)", "law_b": "law (b)"}


def _ci_text(entry: dict[str, Any], key: str) -> str:
    ci = entry.get(f"{key}_ci")
    return "" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]"


def _fit_label(entry: dict[str, Any]) -> str:
    r2 = "n/a" if entry["r2"] is None else f"{entry['r2']:.3f}"
    return (
        f"fit: {entry['slope_name']} = {entry['slope']:.4g}{_ci_text(entry, 'slope')}, "
        f"R² = {r2}, n = {entry['n_fitted']}"
    )


def _runs(points: pd.DataFrame, x: np.ndarray, y: np.ndarray, name: str, **marker) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=y,
        mode="markers",
        marker=marker,
        name=name,
        text=[html.escape(n) for n in points["name"]],
        hovertemplate="%{text}<br>x %{x:.4g}<br>delay %{y:.4g}<extra></extra>",
    )


def delay_vs_rate(points: pd.DataFrame, fit: dict[str, Any]) -> go.Figure:
    """Delay against 1/(lr wd) (log-log): the fitted runs, the law (a) line, a slope-1
    line, and censored runs at their least possible delay (open triangles)."""
    entry = fit["law_a"]
    fitted = points[points["exclude_a"] == ""]
    censored = points[(points["role"] == "censored") & np.isfinite(points["inv_lr_wd"])]
    censored = censored[censored["delay_lower"] > 0]
    fig = go.Figure()
    fig.add_trace(_runs(fitted, fitted["inv_lr_wd"], fitted["delay"], "grokked runs", **RUN_MARKER))
    if len(censored):
        fig.add_trace(
            _runs(
                censored,
                censored["inv_lr_wd"],
                censored["delay_lower"],
                "censored: delay above this (cap - T_mem)",
                **CENSORED_MARKER,
            )
        )
    xs = pd.concat([fitted["inv_lr_wd"], censored["inv_lr_wd"]])
    line_x = np.geomspace(xs.min(), xs.max(), 50)
    a, b = entry["intercept"], entry["slope"]
    fig.add_trace(
        go.Scatter(
            x=line_x,
            y=np.exp(a + b * np.log(line_x)),
            mode="lines",
            line={"color": PALETTE["fit"], "width": 2},
            name=_fit_label(entry),
        )
    )
    log_x, log_y = np.log(fitted["inv_lr_wd"]), np.log(fitted["delay"])
    through = log_y.mean() + entry["predicted_slope"] * (np.log(line_x) - log_x.mean())
    fig.add_trace(
        go.Scatter(
            x=line_x,
            y=np.exp(through),
            mode="lines",
            line={"color": PALETTE["theory"], "width": 1.5, "dash": "dash"},
            name="slope 1 (pure weight decay), through the runs' centre",
        )
    )
    fig.update_xaxes(title_text="1 / (lr · weight decay)", type="log")
    fig.update_yaxes(title_text="delay T_grok − T_mem (epochs)", type="log")
    style_figure(fig, "Law (a): grokking delay against 1/(lr · wd)")
    fig.update_layout(legend=LEGEND_TOP_LEFT)
    return fig


def predicted_vs_measured(points: pd.DataFrame, fit: dict[str, Any], law: str) -> go.Figure:
    """The delay a fitted law predicts for each run against the measured delay, with
    y = x; censored runs at their least possible delay (open triangles)."""
    entry = fit[law]
    column = "exclude_a" if law == "law_a" else "exclude_b"
    predicted = predict(fit, points, law)
    keep = (points[column] == "").to_numpy()
    fig = go.Figure()
    fig.add_trace(
        _runs(points[keep], predicted[keep], points["delay"][keep], "grokked runs", **RUN_MARKER)
    )
    cens = ((points["role"] == "censored") & np.isfinite(predicted)).to_numpy()
    if cens.any():
        fig.add_trace(
            _runs(
                points[cens],
                predicted[cens],
                points["delay_lower"][cens],
                "censored: delay above this (cap - T_mem)",
                **CENSORED_MARKER,
            )
        )
    values = np.concatenate(
        [predicted[keep], points["delay"][keep], predicted[cens], points["delay_lower"][cens]]
    )
    values = values[np.isfinite(values)]
    positive = bool(len(values)) and values.min() > 0
    lo, hi = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    diag = np.geomspace(lo, hi, 50) if positive else np.linspace(lo, hi, 50)
    fig.add_trace(
        go.Scatter(
            x=diag,
            y=diag,
            mode="lines",
            line={"color": PALETTE["theory"], "width": 1.5, "dash": "dash"},
            name="y = x",
        )
    )
    axis = "log" if positive else "linear"
    fig.update_xaxes(title_text=f"delay predicted by {TITLES[law]} (epochs)", type=axis)
    fig.update_yaxes(title_text="measured delay T_grok − T_mem (epochs)", type=axis)
    style_figure(fig, f"{TITLES[law].capitalize()}: {entry['formula']} — {_fit_label(entry)}")
    fig.update_layout(
        title={"font": {"size": 13}},
        legend=LEGEND_TOP_LEFT,
    )
    return fig


def law_figures(points: pd.DataFrame, fit: dict[str, Any]) -> dict[str, go.Figure]:
    """Every laws figure by name; a law that could not be fitted has no predicted figure."""
    figures = {"laws_delay_vs_rate": delay_vs_rate(points, fit)}
    for law in ("law_a", "law_b"):
        if fit[law]["ok"]:
            figures[f"laws_{law[-1]}_predicted"] = predicted_vs_measured(points, fit, law)
    return figures
