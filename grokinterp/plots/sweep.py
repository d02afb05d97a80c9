"""Figures across the runs of a sweep: each takes data and returns a Figure.

Drawn from the table of runs (:func:`grokinterp.sweep.load_sweep`) and each run's logged
metrics, never by recomputing (:func:`grokinterp.figures.sweep.draw_sweep_figures` reads
them):

- ``curves``: test accuracy and test loss of every run overlaid, coloured by a swept field;
- ``t_grok_heatmap``: T_grok over two swept fields (median over seeds), censored cells
  marked;
- ``t_grok_vs_<field>``: T_grok against each swept field, censored runs drawn at the
  epoch they stopped at, as open triangles (T_grok is beyond it);
- ``laws_*``: the grokking-delay laws (:mod:`grokinterp.plots.laws`), when the table has
  enough grokked runs to fit them (:func:`grokinterp.laws.fit_laws`).

:func:`grokinterp.figures.sweep.write_sweep_figures` writes them under ``SWEEP/figures/``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from grokinterp.config import RunConfig
from grokinterp.plots.style import style_figure
from grokinterp.sweep.spec import SEED_FIELDS

__all__ = [
    "accuracy_loss_curves",
    "swept_fields",
    "t_grok_heatmap",
    "t_grok_vs_field",
    "value_colors",
]


def swept_fields(table: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> list[str]:
    """Config fields that vary across the runs, in the spec's axis order, seeds last."""
    order: list[str] = []
    if spec:
        order += list(spec.get("grid") or {})
        for group in spec.get("zip") or []:
            order += list(group)
    from grokinterp.models.config import ToyConfig

    fields_ = [*RunConfig.__dataclass_fields__, *ToyConfig.__dataclass_fields__]
    config = [f for f in dict.fromkeys(fields_) if f != "name"]
    order += [f for f in config if f not in order and f not in SEED_FIELDS]
    order += list(SEED_FIELDS)
    return [f for f in order if f in table and table[f].nunique(dropna=False) > 1]


def _plain(values: Iterable[Any]) -> list[Any]:
    """Python scalars (pandas gives numpy ones, which are not ``int``)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    unique = list(dict.fromkeys(_plain(values)))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


def _is_log(values: Sequence[Any]) -> bool:
    numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numeric) != len(values) or not numeric or min(numeric) <= 0:
        return False
    return max(numeric) / min(numeric) >= 4


def value_colors(values: Iterable[Any]) -> dict[Any, str]:
    """A colour per value: Viridis along the (log) value for numbers, else a palette."""
    ordered = _sorted_values(values)
    if len(ordered) == 1:
        return {ordered[0]: qualitative.Plotly[0]}
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in ordered)
    if not numeric:
        palette = qualitative.Plotly
        return {v: palette[i % len(palette)] for i, v in enumerate(ordered)}
    x = np.array(ordered, dtype=float)
    x = np.log(x) if _is_log(ordered) else x
    t = (x - x.min()) / (x.max() - x.min())
    return dict(zip(ordered, sample_colorscale("Viridis", list(0.9 * t)), strict=True))


def _label(field: str, value: Any) -> str:
    return f"{field} = {value:g}" if isinstance(value, float) else f"{field} = {value}"


# ---------------------------------------------------------------------------- figures


def accuracy_loss_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]], table: pd.DataFrame, color_by: str
) -> go.Figure:
    """Test accuracy (top) and test loss (bottom, log) of every run, coloured by a field.

    curves: {run name: {"epoch", "test_acc", "test_loss"}} (the logged metrics).
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    by_name = table.set_index("name", drop=False)  # color_by may be "name": a colour per run
    colors = value_colors(by_name.loc[list(curves), color_by])
    shown: set[Any] = set()
    for name, m in curves.items():
        value = _plain([by_name.loc[name, color_by]])[0]
        keep = np.isfinite(m["test_acc"])
        for row, column in ((1, "test_acc"), (2, "test_loss")):
            fig.add_trace(
                go.Scatter(
                    x=m["epoch"][keep],
                    y=m[column][keep],
                    mode="lines",
                    line={"color": colors[value], "width": 1.3},
                    name=_label(color_by, value),
                    legendgroup=str(value),
                    showlegend=row == 1 and value not in shown,
                    hovertemplate=f"{html.escape(name)}<br>epoch %{{x}}<br>{column} %{{y:.4g}}"
                    "<extra></extra>",
                ),
                row=row,
                col=1,
            )
        shown.add(value)
    fig.update_yaxes(title_text="test accuracy", row=1, col=1)
    fig.update_yaxes(title_text="test loss", type="log", row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    style_figure(fig, f"Test accuracy and loss of {len(curves)} runs, by {color_by}", height=700)
    return fig


def _cells(table: pd.DataFrame, x: str, y: str) -> tuple[list, list, np.ndarray, list[list[str]]]:
    xs, ys = _sorted_values(table[x]), _sorted_values(table[y])
    z = np.full((len(ys), len(xs)), np.nan)
    text = [["" for _ in xs] for _ in ys]
    for (xv, yv), group in table.groupby([x, y], sort=False):
        i, j = ys.index(yv), xs.index(xv)
        analysed = group[group["status"].isin(["done", "censored"])]
        grokked = analysed[analysed["grokked"]]
        n, k = len(analysed), len(grokked)
        if k:
            z[i, j] = float(np.median(grokked["T_grok"]))
            text[i][j] = f"{z[i, j]:.0f}" + (f" ({k}/{n} grokked)" if k < n else "")
        elif n:
            cap = analysed["end_epoch"].min()
            text[i][j] = f"✕ censored<br>(no grok by {cap:.0f})"
        else:
            text[i][j] = "no result"
    return xs, ys, z, text


def t_grok_heatmap(table: pd.DataFrame, x: str, y: str) -> go.Figure:
    """Median T_grok (over seeds) per cell of two swept fields; censored cells marked ✕."""
    xs, ys, z, text = _cells(table, x, y)
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=z,
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": {"text": "T_grok"}},
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>%{{text}}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    fig.update_layout(plot_bgcolor="#eeeeee")  # censored (empty) cells show as grey
    style_figure(fig, f"T_grok over {x} and {y} (median over seeds; ✕ = never grokked)")
    return fig


def t_grok_vs_field(table: pd.DataFrame, field: str, color_by: str | None = None) -> go.Figure:
    """T_grok of each run against one swept field; censored runs drawn at their last epoch
    as open triangles (their T_grok lies beyond)."""
    fig = go.Figure()
    analysed = table[table["status"].isin(["done", "censored"])]
    colour_field = color_by if color_by and color_by != field else None
    colors = value_colors(analysed[colour_field]) if colour_field else {}
    groups = analysed.groupby(colour_field, sort=True) if colour_field else [(None, analysed)]
    for value, group in groups:
        value = _plain([value])[0] if value is not None else None
        color = colors.get(value, qualitative.Plotly[0])
        grokked, censored = group[group["grokked"]], group[~group["grokked"]]
        label = _label(colour_field, value) if colour_field else "grokked"
        fig.add_trace(
            go.Scatter(
                x=grokked[field],
                y=grokked["T_grok"],
                mode="markers",
                marker={"color": color, "size": 10},
                name=label,
                text=grokked["name"],
                hovertemplate="%{text}<br>T_grok %{y}<extra></extra>",
            )
        )
        if len(censored):
            fig.add_trace(
                go.Scatter(
                    x=censored[field],
                    y=censored["end_epoch"],
                    mode="markers",
                    marker={"color": color, "size": 11, "symbol": "triangle-up-open"},
                    name=f"{label}: censored (no grok by this epoch)",
                    text=censored["name"],
                    hovertemplate="%{text}<br>censored at %{y}<extra></extra>",
                )
            )
    values = _sorted_values(analysed[field])
    if _is_log(values):
        fig.update_xaxes(type="log")
    elif not all(isinstance(v, int | float) for v in values):
        fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=field)
    fig.update_yaxes(title_text="T_grok (epoch)", type="log")
    style_figure(fig, f"T_grok against {field}")
    return fig


CLASS_COLORS = {"comprehension": "#2ca02c", "grokking": "#1f77b4", "memorisation": "#ff7f0e",
                "confusion": "#d62728"}  # fmt: skip


def phase_diagram(table: pd.DataFrame, x: str, y: str) -> go.Figure:
    """Liu et al.'s phase diagram over two swept fields: each cell coloured by its runs'
    most common class (``run_class``), with the median T_grok - T_mem of its generalising
    runs written in it (and the share of runs in that class when the seeds disagree)."""
    from grokinterp.run_classes import CLASSES

    finished = table[table["run_class"].astype(str) != ""]
    xs, ys = _sorted_values(finished[x]), _sorted_values(finished[y])
    z = np.full((len(ys), len(xs)), np.nan)
    text = [["" for _ in xs] for _ in ys]
    for (xv, yv), group in finished.groupby([x, y], sort=False):
        i, j = ys.index(yv), xs.index(xv)
        counts = group["run_class"].value_counts()
        top = max(CLASSES, key=lambda c: (counts.get(c, 0), -CLASSES.index(c)))
        z[i, j] = CLASSES.index(top)
        share = "" if counts[top] == len(group) else f" {counts[top]}/{len(group)}"
        delay = (group["T_grok"] - group["T_mem"]).dropna()
        text[i][j] = (
            top + share + (f"<br>delay {float(np.median(delay)):.0f}" if len(delay) else "")
        )
    n = len(CLASSES)
    scale = []
    for k, name in enumerate(CLASSES):  # one flat band of colour per class index
        scale += [[k / n, CLASS_COLORS[name]], [(k + 1) / n, CLASS_COLORS[name]]]
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs], y=[str(v) for v in ys], z=z, zmin=-0.5, zmax=n - 0.5,
            text=text, texttemplate="%{text}", colorscale=scale, xgap=2, ygap=2,
            colorbar={"tickvals": list(range(n)), "ticktext": list(CLASSES),
                      "title": {"text": "class"}},
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>%{{text}}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    fig.update_layout(plot_bgcolor="#eeeeee")
    style_figure(
        fig, f"Phase diagram over {x} and {y} (Liu et al. classes; delay = T_grok - T_mem)"
    )
    return fig
