"""The forecast evaluation's files: ``OUT/forecast.json`` and ``OUT/figures/forecast.*``
(``grokinterp forecast PATH --evaluate``, docs/forecast.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from grokinterp import files
from grokinterp.figures.export import FORMATS, check_formats, write_figure_files
from grokinterp.plots.forecast import forecast_figure
from grokinterp.storage import write_json

__all__ = ["write_evaluation"]


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
