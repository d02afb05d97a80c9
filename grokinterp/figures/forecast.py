"""The forecast's output: the evaluation's files, ``OUT/forecast.json`` and
``OUT/figures/forecast.*`` (``grokinterp forecast PATH --evaluate``, docs/forecast.md), and
the live forecast's block in a training run's report (``grokinterp watch``)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from grokinterp import files
from grokinterp.figures.export import FORMATS, check_formats, write_figure_files
from grokinterp.forecast import Forecast
from grokinterp.plots.forecast import forecast_figure
from grokinterp.storage import write_json

__all__ = ["forecast_section", "write_evaluation"]


def write_evaluation(
    evaluation: dict, out_dir: str | Path, formats: Iterable[str] = FORMATS
) -> list[Path]:
    """Write OUT/forecast.json and OUT/figures/forecast.{html,png,svg} (static formats
    need a browser, as the other figures; without one only HTML is written)."""
    formats = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / files.FORECAST, evaluation)
    written = [out / files.FORECAST]
    figures = {files.FORECAST_FIGURE: forecast_figure(evaluation)}
    written += write_figure_files(figures, out / files.FIGURES_DIR, formats)
    return written


def forecast_section(found: Forecast) -> str:
    """The report's "Forecast" block for a run still training: the forecast and its
    interval, the observed T_grok, or "not yet" with the reason."""
    head = f"<h2>Forecast of T_grok (data up to epoch {found.upto:,})</h2>"
    if found.status == "not yet":
        body = f"<p><b>Not yet.</b> {html.escape(found.reason)}</p>"
    elif found.status == "already grokked":
        body = f"<p>Already grokked: T_grok = <b>{found.t_grok:,.0f}</b> (T_mem {found.t_mem}).</p>"
    else:
        interval = (
            f"{found.level:.0%} interval {found.low:,.0f} to {found.high:,.0f}"
            if found.low is not None
            else "no interval"
        )
        body = (
            f"<p>T_grok forecast <b>{found.t_grok:,.0f}</b> ({interval}), from "
            f"{found.n_points} plateau checkpoints, epochs {found.plateau_start:,} to "
            f"{found.upto:,} (T_mem {found.t_mem}): "
            f"{html.escape(found.estimates_text())}. {html.escape(found.interval)}. Method "
            "and measured error: docs/forecast.md.</p>"
        )
        if found.warning:
            body += f"<p><b>Warning.</b> {html.escape(found.warning)}</p>"
    return head + body
