"""A sweep's figures, its report.html and its laws: read from the sweep folder, drawn by
:mod:`grokinterp.plots.sweep` and :mod:`grokinterp.plots.laws`, written through
:func:`grokinterp.figures.export.write_figure_files` and :mod:`grokinterp.figures.report`.

- :func:`write_sweep_figures` (``grokinterp figures SWEEP_DIR``): every sweep figure under
  ``SWEEP/figures/`` and ``report.html``;
- :func:`write_laws` (``grokinterp laws SWEEP_DIR``): ``SWEEP/laws.json`` and the law
  figures (docs/laws.md).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from grokinterp import files
from grokinterp.analysis import read_table
from grokinterp.config import OptionError
from grokinterp.decay_law import delay_points, inverse_lambda_laws
from grokinterp.figures.export import FORMATS, check_formats, write_figure_files
from grokinterp.figures.report import write_page
from grokinterp.laws import DEFAULT_NORMS, N_BOOT, LawFitError, fit_laws, law_points
from grokinterp.plots.laws import law_figures
from grokinterp.plots.mechanisms import sweep_mechanism_curves
from grokinterp.plots.sweep import (
    accuracy_loss_curves,
    phase_diagram,
    swept_fields,
    t_grok_heatmap,
    t_grok_vs_field,
)
from grokinterp.plots.toys import delay_vs_decay_rate, delay_vs_inverse_lambda, measured_vs_bound
from grokinterp.run import load_run
from grokinterp.storage import RunFileError, atomic_write_text
from grokinterp.sweep.manifest import is_sweep, read_manifest, run_dir
from grokinterp.sweep.spec import SEED_FIELDS
from grokinterp.sweep.table import load_sweep, write_runs_table

__all__ = [
    "REPORT_COLUMNS",
    "draw_sweep_figures",
    "load_or_build_table",
    "write_laws",
    "write_sweep_figures",
    "write_sweep_report",
]

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------- inputs


def _stale(sweep_dir: Path) -> bool:
    """runs.csv is missing, or older than the manifest or a run's analysis."""
    table = sweep_dir / files.RUNS_TABLE
    if not table.is_file():
        return True
    made = table.stat().st_mtime_ns
    sources = [sweep_dir / files.MANIFEST]
    for run in (sweep_dir / files.RUNS_DIR).glob("*"):
        sources += [run / files.SUMMARY, run / files.ANALYSIS_TABLE]
    return any(p.is_file() and p.stat().st_mtime_ns > made for p in sources)


def load_or_build_table(sweep_dir: str | Path) -> tuple[pd.DataFrame, bool]:
    """The table of runs of a sweep folder, and whether ``runs.csv`` was (re)written.

    The table is always :func:`grokinterp.load_sweep`'s; when ``runs.csv`` is missing or
    older than the manifest or a run's analysis it is rewritten, as
    ``grokinterp analyze SWEEP_DIR`` does.
    """
    sweep_dir = Path(sweep_dir)
    if not is_sweep(sweep_dir):
        raise OptionError(f"{sweep_dir} is not a sweep folder (no manifest.json)")
    if _stale(sweep_dir):
        return write_runs_table(sweep_dir)[1], True
    return load_sweep(sweep_dir), False


def _curves(sweep_dir: Path, names: Iterable[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for name in names:
        try:
            out[name] = load_run(run_dir(sweep_dir, name)).metrics
        except RunFileError as err:
            log.warning("run %s: no metrics to draw (%s)", name, err)
    return out


def _law_figures(table: pd.DataFrame) -> dict[str, go.Figure]:
    try:
        fit = fit_laws(table)
    except LawFitError as err:
        log.info("no laws figures: %s", err)
        return {}
    return law_figures(law_points(table), fit)


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
            figures["phase_diagram"] = phase_diagram(finished, axes[0], axes[1])
        for field in axes:
            other = next((f for f in axes if f != field), None)
            figures[f"t_grok_vs_{field}"] = t_grok_vs_field(finished, field, other)
    figures.update(_law_figures(table))
    mechanisms = _mechanism_figure(sweep_dir, finished)
    if mechanisms is not None:
        figures["mechanisms"] = mechanisms
    return figures, table


def _mechanism_figure(sweep_dir: Path, finished: pd.DataFrame) -> go.Figure | None:
    """Each finished run's mechanism measures over training, labelled with its class;
    None when no run's table has them (analysed before they existed)."""
    tables, labels = {}, {}
    for _, row in finished.iterrows():
        try:
            tables[row["name"]] = read_table(run_dir(sweep_dir, row["name"]))
        except RunFileError:
            continue
        cls = row.get("pizza_class") or ""
        labels[row["name"]] = f"{row['name']} ({cls})" if cls else row["name"]
    try:
        return sweep_mechanism_curves(tables, labels) if tables else None
    except KeyError:
        return None


# ---------------------------------------------------------------------------- writing


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
    sections = [
        "<p>" + html.escape(", ".join(f"{v} {k}" for k, v in counts.items())) + "</p>",
        "<h2>Runs</h2>",
        shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0),
    ]
    return write_page(path, f"grokinterp sweep: {title}", sections, figures)


def write_sweep_figures(
    sweep_dir: str | Path,
    formats: Iterable[str] = FORMATS,
    color_by: str | None = None,
) -> list[Path]:
    """Write the sweep's figures and ``report.html`` under ``SWEEP/figures/``."""
    sweep_dir = Path(sweep_dir)
    formats = check_formats(formats)
    figures, table = draw_sweep_figures(sweep_dir, color_by)
    folder = sweep_dir / files.FIGURES_DIR
    written = write_figure_files(figures, folder, formats)
    spec = read_manifest(sweep_dir).get("spec") or {}
    fields = swept_fields(table, spec)
    title = spec.get("name") or sweep_dir.name
    written.append(write_sweep_report(folder / files.REPORT, title, table, fields, figures))
    return written


def write_laws(
    sweep_dir: str | Path,
    n_boot: int = N_BOOT,
    seed: int = 0,
    norms: Sequence[str] = DEFAULT_NORMS,
    formats: Iterable[str] = FORMATS,
) -> tuple[dict[str, Any], list[Path]]:
    """Fit the laws to a sweep folder; write ``SWEEP/laws.json`` and the law figures under
    ``SWEEP/figures/`` (HTML; PNG and SVG when a Chromium is found). Returns the fit and
    the paths written."""
    formats = check_formats(formats)
    sweep_dir = Path(sweep_dir)
    table, _ = load_or_build_table(sweep_dir)
    fit = fit_laws(table, n_boot=n_boot, seed=seed, norms=norms)
    toy_figures = {}
    if "t_generalise" in table:  # toy runs: the 1/lambda law and the ridge bound
        fit["inverse_lambda_law"] = inverse_lambda_laws(table, n_boot=n_boot, seed=seed)
        fits = {k.split(" lr=")[0]: v for k, v in fit["inverse_lambda_law"].items() if "slope" in v}
        toy_figures["laws_delay_vs_inverse_lambda"] = delay_vs_inverse_lambda(table, fits)
        if table["bound"].notna().any():
            toy_figures["laws_measured_vs_bound"] = measured_vs_bound(table)
    written = [sweep_dir / files.LAWS_FILE]
    atomic_write_text(written[0], json.dumps(fit, indent=2, allow_nan=False) + "\n")
    figures = {**law_figures(law_points(table, norms), fit), **toy_figures}
    written += write_figure_files(figures, sweep_dir / files.FIGURES_DIR, formats)
    return fit, written


def write_comparison(
    sweep_dir: str | Path, others: Sequence[str | Path], formats: Iterable[str] = FORMATS
) -> list[Path]:
    """``SWEEP/figures/laws_compare_delay_vs_rate``: the delay (in optimiser steps) against
    1 / (decay per step) of this sweep and of each of ``others`` (sweep folders or runs.csv
    files), one series each (:func:`grokinterp.decay_law.delay_points`)."""
    formats = check_formats(formats)
    series = {}
    for source in [sweep_dir, *others]:
        source = Path(source)
        if source.suffix == ".csv":
            if not source.is_file():
                raise OptionError(f"--compare {source}: file not found")
            table, label = pd.read_csv(source), source.parent.name
        else:
            table, label = load_or_build_table(source)[0], source.name
        series[label] = delay_points(table)
    figure = delay_vs_decay_rate(series)
    folder = Path(sweep_dir) / files.FIGURES_DIR
    return write_figure_files({"laws_compare_delay_vs_rate": figure}, folder, formats)
