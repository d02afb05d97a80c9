"""The figures of one analysed toy run, written under RUN/figures/ (``grokinterp figures``).

``curves`` (losses, accuracies, G(t); :func:`grokinterp.plots.toys.toy_curves`) and
``block_norms`` (:func:`grokinterp.plots.toys.block_norms`), written through the one
writer (:func:`grokinterp.figures.export.write_figure_files`), and a report.html with the
run's phases, from the one report template (:func:`grokinterp.figures.report.write_page`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from grokinterp import files
from grokinterp.analysis import read_table
from grokinterp.figures.export import FORMATS, check_formats, write_figure_files
from grokinterp.figures.report import html_table, write_page
from grokinterp.plots.toys import block_norms, toy_curves
from grokinterp.run import load_run
from grokinterp.storage import read_json

__all__ = ["draw_toy_figures", "write_toy_figures"]


def _toy_phases(summary: dict) -> dict:
    phases = {k: (summary["phases"].get(k) or {}).get("epoch") for k in ("T_mem", "T_grok")}
    if "T_grok_0.9" in summary:
        phases["T_grok(0.9)"] = summary["T_grok_0.9"].get("epoch")
    return phases


def draw_toy_figures(run_dir: str | Path) -> dict:
    """{name: Figure} of a toy run: its curves (with G(t)) and its per-block weight norms."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    summary = read_json(run_dir / files.SUMMARY)
    table = read_table(run_dir / files.ANALYSIS_TABLE)
    name = run.config.run_name
    return {
        "curves": toy_curves(
            run.metrics, _toy_phases(summary), f"{name}: losses, accuracies, G(t)"
        ),
        "block_norms": block_norms(table, f"{name}: sum of squared weights per block"),
    }


def write_toy_figures(run_dir: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write a toy run's figures and report.html under RUN/figures/; returns the paths."""
    run_dir = Path(run_dir)
    formats = check_formats(formats)
    figures = draw_toy_figures(run_dir)
    folder = run_dir / files.FIGURES_DIR
    written = write_figure_files(figures, folder, formats)
    summary = read_json(run_dir / files.SUMMARY)
    rows = [(k, "not reached" if v is None else v) for k, v in _toy_phases(summary).items()]
    sections = ["<h2>Phases</h2>", html_table(rows, ("boundary", "epoch"))]
    report = write_page(folder / files.REPORT, html.escape(run_dir.name), sections, figures)
    return [*written, report]
