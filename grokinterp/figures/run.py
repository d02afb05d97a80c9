"""A run's figures and its one-page report.

:func:`draw_figures` turns the analysis table and summary (plus, for the attention map,
the final checkpoint) into named plotly figures; :func:`write_figures` saves them under
``RUN/figures/`` (:func:`grokinterp.figures.export.write_figure_files`: HTML always, PNG
and SVG when a Chrome/Chromium is found) with ``report.html``, a self-contained page
(:mod:`grokinterp.figures.report`) with the config, the phase table and every figure.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from grokinterp import files, plots
from grokinterp.analysis import checkpoint_detail, read_table
from grokinterp.analysis.frames import read_frames
from grokinterp.config import RunConfig
from grokinterp.figures.export import FORMATS, check_formats, write_figure_files
from grokinterp.figures.report import html_table, write_page
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.models.config import is_toy
from grokinterp.plots.sliders import slider_figures
from grokinterp.run import load_run, read_config
from grokinterp.storage import RunFileError, read_json

__all__ = [
    "draw_figures",
    "phase_table",
    "read_analysis",
    "summary_phases",
    "write_figures",
    "write_report",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- inputs


def read_analysis(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """The run's analysis table (key as str, '' for scalars) and summary."""
    run_dir = Path(run_dir)
    path = run_dir / files.ANALYSIS_TABLE
    if not path.is_file():
        raise RunFileError(
            f"{path}: file not found; run 'grokinterp analyze {run_dir}' before drawing figures"
        )
    return read_table(path), read_json(run_dir / files.SUMMARY)


def _epoch_of(entry) -> float | None:
    if isinstance(entry, Mapping):
        entry = entry.get("epoch")
    if entry is None:
        return None
    value = float(entry)
    return value if np.isfinite(value) else None


def summary_phases(summary: Mapping) -> plots.Phases:
    """The phase boundaries of a summary as :class:`grokinterp.plots.Phases`."""
    phases = summary.get("phases", {})
    return plots.Phases(
        memorisation_end=_epoch_of(phases.get("memorisation_end")),
        circuit_end=_epoch_of(phases.get("circuit_formation_end")),
        cleanup_end=_epoch_of(phases.get("cleanup_end")),
        t_mem=_epoch_of(phases.get("T_mem")),
        t_grok=_epoch_of(phases.get("T_grok")),
    )


def _final_attention_map(run_dir: Path) -> tuple[np.ndarray, int] | None:
    """(n_heads, p, p) attention-to-a map of the last checkpoint, or None without one."""
    try:
        run = load_run(run_dir)
    except RunFileError:
        return None
    if not run.epochs:
        return None
    detail = checkpoint_detail(run)
    return np.asarray(detail["attention_to_a"]), int(detail["epoch"])


def _slider_figures(run_dir: Path) -> dict[str, go.Figure]:
    """The epoch-slider figures, drawn from the frames ``analyze`` stored; none (with the
    reason logged) for a task without a basis or a run analysed before frames were stored."""
    try:
        run = load_run(run_dir)
    except RunFileError as err:
        log.info("no epoch-slider figures: %s", err)
        return {}
    try:
        frames = read_frames(run)
    except RunFileError as err:
        log.warning("%s", err)
        return {}
    return slider_figures(frames)


# ---------------------------------------------------------------------------- drawing


def draw_figures(
    table: pd.DataFrame,
    summary: Mapping,
    config: RunConfig,
    attention_map: np.ndarray | None = None,
    attention_epoch: int | None = None,
) -> dict[str, go.Figure]:
    """Every figure of a run, by file stem, in report order.

    A figure whose measure is missing from the table is left out with a warning, so a
    table from an older analysis still draws what it can.
    """
    phases = summary_phases(summary)
    keys = [int(k) for k in summary.get("key_frequencies", [])]
    neurons = summary.get("neurons") or {}  # None for a task without a Fourier basis
    threshold = float(neurons.get("threshold", NEURON_THRESHOLD))
    last_epoch = int(table["epoch"].max()) if len(table) else None
    # A task whose circuit lives in another basis (mul, div: the discrete log) says so.
    basis = summary.get("basis")
    where = f", {basis} basis" if basis and basis != "Z_p" else ""
    final = f" at epoch {last_epoch}{where}"

    def titled(what: str, suffix: str) -> str | None:
        return f"Fourier spectrum of {what}{suffix}" if where else None

    recipes = {
        "loss": lambda: plots.loss_curves(table, phases),
        "embed_spectrum": lambda: plots.spectrum_heatmap(
            table, "embed_freq_norm", titled("W_E", f" over training{where}")
        ),
        "embed_spectrum_final": lambda: plots.spectrum_bar(
            table, keys, "embed_freq_norm", title=titled("W_E", final)
        ),
        "wl_spectrum": lambda: plots.spectrum_heatmap(
            table, "wl_freq_norm", titled("W_L = W_out W_U", f" over training{where}")
        ),
        "wl_spectrum_final": lambda: plots.spectrum_bar(
            table, keys, "wl_freq_norm", title=titled("W_L = W_out W_U", final)
        ),
        "gini": lambda: plots.gini_curves(table, phases),
        "progress_losses": lambda: plots.progress_losses(table, phases),
        "excluded_loss_per_frequency": lambda: plots.excluded_loss_per_frequency(
            table, keys, phases
        ),
        "weight_norm": lambda: plots.weight_norm_decay(
            table, summary.get("weight_norm_fits"), phases
        ),
        "attention": lambda: plots.attention_curves(table, phases),
        "attention_map": lambda: (
            None if attention_map is None else plots.attention_maps(attention_map, attention_epoch)
        ),
        "neuron_clusters": lambda: plots.neuron_clusters(
            neurons["best_freq"],
            neurons["frac_explained"],
            keys,
            threshold,
            neurons.get("epoch", last_epoch),
        ),
        "neurons_per_frequency": lambda: plots.neurons_per_frequency(table, keys, phases),
        "logit_structure": lambda: plots.logit_structure(table, keys, phases),
        # opt-in measure: drawn only when the analysis computed it
        "sharpness": lambda: (
            plots.sharpness_curve(table, phases)
            if (table["measure"] == "sharpness").any()
            else None
        ),
        # mechanisms (docs/measures.md): each measure beside the test loss; the timing
        # figure only when an opt-in costly measure (sharpness, llc) was computed
        "mechanisms": lambda: (
            plots.mechanism_curves(table, phases)
            if table["measure"].isin([m for m, *_ in plots.MECHANISM_PANELS]).any()
            else None  # a table analysed before the mechanism measures existed
        ),
        "restricted_sharpness_llc": lambda: (
            plots.timing_curves(table, phases)
            if table["measure"].isin(["sharpness", "llc"]).any()
            else None
        ),
    }
    out, skipped = {}, []
    for name, recipe in recipes.items():
        try:
            fig = recipe()
        except KeyError as err:
            skipped.append(f"{name} ({err.args[0] if err.args else err})")
            continue
        if fig is not None:
            out[name] = fig
    if skipped:
        log.warning("figures left out, their inputs are missing: %s", "; ".join(skipped))
    return out


# ---------------------------------------------------------------------------- writing


def write_figures(
    run_dir: str | Path,
    formats: Iterable[str] = FORMATS,
    *,
    refresh: int | None = None,
    sliders: bool = True,
    sections: Iterable[str] = (),
) -> list[Path]:
    """Draw every figure of an analysed run and write them and ``report.html``.

    Writes ``RUN/figures/<name>.<fmt>`` for each requested format and
    ``RUN/figures/report.html``; returns the paths written.  PNG/SVG need a browser
    (:func:`grokinterp.figures.export.find_browser`); without one, or if the export fails,
    only HTML is written and one warning says why.  refresh: see :func:`write_report`.
    sliders: also draw the epoch-slider figures (:mod:`grokinterp.plots.sliders`, from the
    frames ``analyze`` stored); they are interactive, so they are written as HTML only.
    sections: HTML blocks put at the top of the report (``grokinterp watch``'s live
    forecast, :func:`grokinterp.figures.forecast.forecast_section`).
    """
    run_dir = Path(run_dir)
    formats = check_formats(formats)
    config_path = run_dir / files.CONFIG
    if config_path.is_file() and is_toy(read_json(config_path)):  # a toy family (docs/toys.md)
        from grokinterp.figures.toys import write_toy_figures

        return write_toy_figures(run_dir, formats)
    table, summary = read_analysis(run_dir)
    config = read_config(run_dir)
    attention = _final_attention_map(run_dir)
    figures = draw_figures(table, summary, config, *(attention or (None, None)))
    animated = _slider_figures(run_dir) if sliders else {}

    folder = run_dir / files.FIGURES_DIR
    written = write_figure_files(figures, folder, formats, html_only=animated)
    report = folder / files.REPORT
    write_report(
        report,
        config,
        summary,
        {**figures, **animated},
        title=run_dir.name,
        refresh=refresh,
        sections=sections,
    )
    written.append(report)
    return written


# ---------------------------------------------------------------------------- report

_PHASE_ROWS = (
    ("T_mem", "train accuracy reaches the threshold"),
    ("T_grok", "test accuracy reaches the threshold"),
    ("grokking_ratio", "T_grok / T_mem"),
    ("memorisation_end", "end of memorisation"),
    ("circuit_formation_end", "end of circuit formation"),
    ("cleanup_end", "end of cleanup"),
)


def _phase_rows(summary: Mapping) -> list[tuple]:
    """(boundary, meaning, epoch or value, rule) for each boundary in the summary."""
    phases = summary.get("phases", {})
    meanings = dict(_PHASE_ROWS)
    order = [k for k, _ in _PHASE_ROWS if k in phases] + [k for k in phases if k not in meanings]
    rows = []
    for key in order:
        entry = phases[key]
        if isinstance(entry, Mapping):
            value = entry.get("epoch")
            if value is None:
                value = entry.get("value")
            if value is None and (entry.get("inputs") or {}).get("not_seen"):
                value = "not seen"
            rows.append((key, meanings.get(key, ""), value, entry.get("rule", "")))
        else:
            rows.append((key, meanings.get(key, ""), entry, ""))
    return rows


def phase_table(summary: Mapping) -> pd.DataFrame:
    """The summary's phase boundaries as a table: boundary, meaning, epoch, rule."""
    return pd.DataFrame(_phase_rows(summary), columns=["boundary", "meaning", "epoch", "rule"])


def write_report(
    path: str | Path,
    config: RunConfig,
    summary: Mapping,
    figures: Mapping[str, go.Figure],
    title: str = "",
    *,
    refresh: int | None = None,
    sections: Iterable[str] = (),
) -> Path:
    """One self-contained HTML page: config, phases, key frequencies and all figures.

    refresh: seconds after which the browser reloads the page, for a run still training
    (``grokinterp watch``); None (default) for a page that never reloads.  sections: HTML
    blocks put after the "training in progress" line, before the phases.
    """
    title = title or config.run_name
    final = summary.get("final", {})
    final_rows = [(k, v) for k, v in final.items() if not isinstance(v, (list, dict))]
    keys = ", ".join(str(k) for k in summary.get("key_frequencies", [])) or "none"
    sections = [
        f"<p><b>Training in progress</b> (analysed up to epoch {summary.get('final_epoch')} of "
        f"{config.epochs}): this page reloads every {int(refresh)} s.</p>"
        if refresh
        else "",
        *sections,
        "<h2>Phases</h2>",
        html_table(_phase_rows(summary), ("boundary", "meaning", "epoch", "rule")),
        f"<p>Key frequencies: <b>{html.escape(keys)}</b>"
        + (
            ""
            if summary.get("cleanup_seen", True)
            else " (at the last checkpoint; cleanup not seen, so not the run's final set)"
        )
        + "</p>",
        "<div class='columns'><div><h2>Final values</h2>",
        html_table(final_rows, ("quantity", "value")),
        "</div><div><h2>Configuration</h2>",
        html_table(sorted(config.to_dict().items()), ("field", "value")),
        "</div></div>",
    ]
    return write_page(path, f"grokinterp report: {title}", sections, figures, refresh=refresh)
