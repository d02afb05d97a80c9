"""Figures across the runs of a sweep, and the sweep's report.html.

Drawn from the table of runs (:func:`grokinterp.sweep.load_sweep`) and each run's logged
metrics, never by recomputing:

- ``curves``: test accuracy and test loss of every run overlaid, coloured by a swept field;
- ``t_grok_heatmap``: T_grok over two swept fields (median over seeds), censored cells
  marked;
- ``t_grok_vs_<field>``: T_grok against each swept field, censored runs drawn at the
  epoch they stopped at, as open triangles (T_grok is beyond it);
- ``laws_*``: the grokking-delay laws (:mod:`grokinterp.plots.laws`), when the table has
  enough grokked runs to fit them (:func:`grokinterp.laws.fit_laws`).

:func:`write_sweep_figures` writes them under ``SWEEP/figures/``: HTML, PNG and SVG (as a
run's figures, see :mod:`grokinterp.figures`) and ``report.html``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from grokinterp import files
from grokinterp.config import OptionError
from grokinterp.plots.style import _style
from grokinterp.run import load_run
from grokinterp.storage import RunFileError, atomic_write_text
from grokinterp.sweep.manifest import FIGURES_DIR, read_manifest, run_dir
from grokinterp.sweep.spec import SEED_FIELDS
from grokinterp.sweep.table import load_sweep

__all__ = [
    "accuracy_loss_curves",
    "draw_sweep_figures",
    "swept_fields",
    "t_grok_heatmap",
    "t_grok_vs_field",
    "write_sweep_figures",
]

log = logging.getLogger(__name__)

CENSORED_COLOR = "#888888"


def swept_fields(table: pd.DataFrame, spec: Mapping[str, Any] | None = None) -> list[str]:
    """Config fields that vary across the runs, in the spec's axis order, seeds last."""
    order: list[str] = []
    if spec:
        order += list(spec.get("grid") or {})
        for group in spec.get("zip") or []:
            order += list(group)
    from grokinterp.config import RunConfig
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
    _style(fig, f"Test accuracy and loss of {len(curves)} runs, by {color_by}", height=700)
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
    _style(fig, f"T_grok over {x} and {y} (median over seeds; ✕ = never grokked)")
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
    _style(fig, f"T_grok against {field}")
    return fig


def _curves(sweep_dir: Path, names: Iterable[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for name in names:
        try:
            out[name] = load_run(run_dir(sweep_dir, name)).metrics
        except RunFileError as err:
            log.warning("run %s: no metrics to draw (%s)", name, err)
    return out


def draw_sweep_figures(
    sweep_dir: str | Path, color_by: str | None = None
) -> tuple[dict[str, go.Figure], pd.DataFrame]:
    """Every sweep figure by name, and the table of runs they were drawn from."""
    sweep_dir = Path(sweep_dir)
    table = load_sweep(sweep_dir)
    spec = read_manifest(sweep_dir).get("spec") or {}
    fields = swept_fields(table, spec)
    if color_by is not None and color_by not in table:
        raise OptionError(f"--color-by {color_by!r} is not a config field (or 'name')")
    axes = [f for f in fields if f not in SEED_FIELDS]
    # Zipped fields vary together, so no one of them tells the runs apart: colour by run.
    default = "name" if spec.get("zip") else (axes or fields or ["p"])[0]
    color_by = color_by or default
    figures: dict[str, go.Figure] = {}
    finished = table[table["status"].isin(["done", "censored"])]
    curves = _curves(sweep_dir, finished["name"])
    if curves:
        figures["curves"] = accuracy_loss_curves(curves, table, color_by)
    if len(finished):
        if len(axes) >= 2:
            figures["t_grok_heatmap"] = t_grok_heatmap(finished, axes[0], axes[1])
        for field in axes:
            other = next((f for f in axes if f != field), None)
            figures[f"t_grok_vs_{field}"] = t_grok_vs_field(finished, field, other)
    figures.update(_law_figures(table))
    return figures, table


def _law_figures(table: pd.DataFrame) -> dict[str, go.Figure]:
    from grokinterp.laws import LawFitError, fit_laws, law_points
    from grokinterp.plots.laws import law_figures

    try:
        fit = fit_laws(table)
    except LawFitError as err:
        log.info("no laws figures: %s", err)
        return {}
    return law_figures(law_points(table), fit)


# ---------------------------------------------------------------------------- writing


def _export_static(figures: Mapping[str, go.Figure], folder: Path, formats: list[str]) -> list:
    # The run figures' exporter: one kaleido session, a browser found (never downloaded).
    from grokinterp.figures import _write_static

    return _write_static(figures, folder, formats)


_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; }
"""

REPORT_COLUMNS = (
    "status",
    "T_mem",
    "T_grok",
    "end_epoch",
    "cleanup_end",
    "key_freqs",
    "final_test_acc",
    "wnorm_end",
    "wall_s",
)


def write_sweep_report(
    path: Path, title: str, table: pd.DataFrame, fields: list[str], figures: Mapping
) -> Path:
    """One self-contained page: counts by status, the runs, every figure."""
    counts = table["status"].value_counts().to_dict()
    columns = ["name", *fields, *REPORT_COLUMNS]
    shown = table[columns].copy()
    problems = table["error"].fillna("").astype(str) + table["problem"].fillna("").astype(str)
    if problems.str.len().any():
        shown["error"] = problems
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>grokinterp sweep: {html.escape(title)}</title><style>{_CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>grokinterp sweep: {html.escape(title)}</h1>",
        "<p>" + html.escape(", ".join(f"{v} {k}" for k, v in counts.items())) + "</p>",
        "<h2>Runs</h2>",
        shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0),
        "<h2>Figures</h2>",
    ]
    for name, fig in figures.items():
        parts.append(f"<div id='{html.escape(name)}'>")
        parts.append(fig.to_html(include_plotlyjs=False, full_html=False))
        parts.append("</div>")
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path


def write_sweep_figures(
    sweep_dir: str | Path,
    formats: Iterable[str] = ("html", "png", "svg"),
    color_by: str | None = None,
) -> list[Path]:
    """Write the sweep's figures and ``report.html`` under ``SWEEP/figures/``."""
    sweep_dir = Path(sweep_dir)
    formats = list(formats)
    unknown = set(formats) - {"html", "png", "svg"}
    if unknown:
        raise OptionError(f"unknown figure format(s) {sorted(unknown)}; allowed: html, png, svg")
    figures, table = draw_sweep_figures(sweep_dir, color_by)
    folder = sweep_dir / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "html" in formats:
        atomic_write_text(folder / "plotly.min.js", get_plotlyjs())
        written.append(folder / "plotly.min.js")
        for name, fig in figures.items():
            path = folder / f"{name}.html"
            atomic_write_text(path, fig.to_html(include_plotlyjs="directory", full_html=True))
            written.append(path)
    static = [f for f in formats if f != "html"]
    if static and figures:
        written += _export_static(figures, folder, static)
    fields = swept_fields(table, read_manifest(sweep_dir).get("spec"))
    title = read_manifest(sweep_dir).get("spec", {}).get("name") or sweep_dir.name
    written.append(write_sweep_report(folder / files.REPORT, title, table, fields, figures))
    return written
