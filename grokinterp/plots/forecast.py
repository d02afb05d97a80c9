"""The forecast's figure (:mod:`grokinterp.forecast`, docs/forecast.md).

Drawn from the dict of :func:`grokinterp.forecast.evaluate_forecast`, never by refitting.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from grokinterp.plots.style import PALETTE, style_figure

__all__ = ["forecast_figure"]


def forecast_figure(evaluation: dict) -> go.Figure:
    """Predicted against actual T_grok, with the intervals, one colour per fraction."""
    fig = go.Figure()
    rows = [r for r in evaluation["runs"] if r.get("forecast") is not None]
    colours = PALETTE["series"]
    for i, f in enumerate(evaluation["fractions"]):
        part = [r for r in rows if abs(r["fraction"] - f) < 1e-12]
        if not part:
            continue
        x = [r["T_grok"] for r in part]
        y = [r["forecast"] for r in part]
        up = [(r["high"] - r["forecast"]) if r.get("high") is not None else 0 for r in part]
        down = [(r["forecast"] - r["low"]) if r.get("low") is not None else 0 for r in part]
        err = evaluation["median_rel_error"].get(f"{f:.4g}")
        name = f"cut at f = {f:.3g}" + (f" (median error {err:.0%})" if err is not None else "")
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                name=name,
                text=[r["run"] for r in part],
                marker={"size": 9, "color": colours[i % len(colours)]},
                error_y={"type": "data", "array": up, "arrayminus": down, "visible": True},
                hovertemplate="%{text}<br>T_grok %{x}<br>forecast %{y:.0f}<extra></extra>",
            )
        )
    # Log axes: T_grok spans decades across a sweep.  The range covers the points, not
    # the widest intervals, which would flatten everything else.
    every = [v for r in rows for v in (r["T_grok"], r["forecast"]) if v > 0]
    if every:
        lo, hi = 0.8 * min(every), 1.25 * max(every)
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="forecast = T_grok",
                line={"color": PALETTE["theory"], "dash": "dash"},
            )
        )
    title = "T_grok forecast from the plateau, cut at T_mem + f (T_grok - T_mem)"
    leave_out = evaluation.get("leave_out")
    if leave_out:
        others = "the other runs" if leave_out == "run" else "the runs of other settings"
        title += f"<br><sub>each run calibrated on {others}</sub>"
    style_figure(fig, title)
    fig.update_layout(xaxis_title="actual T_grok (epoch)", yaxis_title="forecast T_grok (epoch)")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    if every:
        fig.update_xaxes(range=[np.log10(lo), np.log10(hi)])
        fig.update_yaxes(range=[np.log10(lo), np.log10(hi)])
    return fig
