"""Writing a run's figures and its one-page report.

:func:`draw_figures` turns the analysis table and summary (plus, for the attention map,
the final checkpoint) into named plotly figures; :func:`write_figures` saves them under
``RUN/figures/``: HTML always, PNG and SVG through kaleido when a Chrome/Chromium is found,
and ``report.html``, a self-contained page (plotly.js inlined once, works offline) with
the config, the phase table and every figure.  Every file is written atomically.

Static export (kaleido 1.x) drives a headless Chrome/Chromium.  :func:`find_browser`
looks, in order, at ``$GROKINTERP_BROWSER``, at kaleido's own ``$BROWSER_PATH``, then for
chromium/chrome on ``PATH`` and at the usual install paths, and last for a copy fetched
earlier with ``kaleido_get_chrome``.  It never downloads one; when none is found the
figures are written as HTML only, with one warning.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grokinterp import files, plots
from grokinterp.analysis import checkpoint_detail, read_table
from grokinterp.config import OptionError, RunConfig
from grokinterp.run import load_run, read_config
from grokinterp.storage import RunFileError, atomic_write_text, read_json

__all__ = [
    "BROWSER_ENV",
    "draw_figures",
    "find_browser",
    "phase_table",
    "read_analysis",
    "summary_phases",
    "write_figures",
    "write_report",
]

log = logging.getLogger(__name__)

BROWSER_ENV = "GROKINTERP_BROWSER"
STATIC_FORMATS = ("png", "svg")
PLOTLY_JS = "plotly.min.js"  # written once next to the per-figure HTML files

_BROWSER_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome-stable",
    "google-chrome",
    "chrome",
    "headless_shell",
    "chrome-headless-shell",
)
_BROWSER_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/lib/chromium/chromium",
    "/usr/bin/google-chrome-stable",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/snap/bin/chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)


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
    """The epoch-slider figures, or none when the checkpoints cannot be read."""
    from grokinterp.plots.sliders import scrub_figures

    try:
        run = load_run(run_dir)
    except RunFileError as err:
        log.info("no epoch-slider figures: %s", err)
        return {}
    if run.config.operation != "add":
        # Their spectra, neuron frequencies and logit profile are those of (a + b) mod p in
        # the Z_p basis (as the ablations, grokinterp.ablation); for another task they
        # would draw the wrong basis, so they are left out rather than drawn misleadingly.
        log.warning(
            "no epoch-slider figures for operation %r: they are drawn for add only (the "
            "static figures use the task's basis, docs/tasks.md)",
            run.config.operation,
        )
        return {}
    return scrub_figures(run) if run.epochs else {}


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
    threshold = float(neurons.get("threshold", 0.85))
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


# ---------------------------------------------------------------------------- browser


def _is_executable(path: str | os.PathLike) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_browser() -> str | None:
    """Path of a Chrome/Chromium kaleido can drive, or None.  Never downloads one."""
    for var in (BROWSER_ENV, "BROWSER_PATH"):
        value = os.environ.get(var)
        if value:
            path = shutil.which(value) or value
            if _is_executable(path):
                return str(path)
            log.warning("$%s=%r is not an executable file; looking elsewhere", var, value)
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_executable(found):
            return found
    for candidate in _BROWSER_PATHS:
        if _is_executable(candidate):
            return candidate
    try:  # a copy fetched earlier with kaleido_get_chrome (looked up, never downloaded)
        from choreographer.cli._cli_utils import get_chrome_download_path

        local = get_chrome_download_path(mkdir=False)
        if local is not None and _is_executable(local):
            return str(local)
    except Exception:  # noqa: BLE001  (best effort: a private helper that may move)
        pass
    return None


def _export_static(
    figures: Mapping[str, go.Figure], folder: Path, formats: Iterable[str], browser: str
) -> list[Path]:
    """Render every figure in every format in one kaleido session; atomic renames."""
    import kaleido

    formats = list(formats)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".kaleido-"))
    try:
        jobs, targets = [], []
        for name, fig in figures.items():
            for fmt in formats:
                scratch = tmp / f"{name}.{fmt}"
                jobs.append(
                    {
                        "fig": fig,
                        "path": str(scratch),
                        "opts": {
                            "format": fmt,
                            "width": fig.layout.width or plots.WIDTH,
                            "height": fig.layout.height or plots.HEIGHT,
                            "scale": 2 if fmt == "png" else 1,
                        },
                    }
                )
                targets.append((scratch, folder / f"{name}.{fmt}"))
        kopts = {"path": browser, "mathjax": False, "n": max(1, min(4, os.cpu_count() or 1))}
        errors = kaleido.write_fig_from_object_sync(jobs, kopts=kopts)
        if errors:
            raise RuntimeError(f"kaleido failed on {len(errors)} image(s): {errors[0]!r}")
        written = []
        for scratch, target in targets:
            os.replace(scratch, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- writing


def write_figures(
    run_dir: str | Path,
    formats: Iterable[str] = ("html", "png", "svg"),
    *,
    refresh: int | None = None,
    sliders: bool = True,
) -> list[Path]:
    """Draw every figure of an analysed run and write them and ``report.html``.

    Writes ``RUN/figures/<name>.<fmt>`` for each requested format and
    ``RUN/figures/report.html``; returns the paths written.  PNG/SVG need a browser
    (:func:`find_browser`); without one, or if the export fails, only HTML is written and
    one warning says why.  refresh: see :func:`write_report`.  sliders: also draw the
    epoch-slider figures (:mod:`grokinterp.plots.sliders`, at most 60 checkpoints); they
    are interactive, so they are written as HTML only.
    """
    run_dir = Path(run_dir)
    formats = tuple(formats)
    unknown = set(formats) - {"html", *STATIC_FORMATS}
    if unknown:
        raise OptionError(f"unknown figure format(s) {sorted(unknown)}; allowed: html, png, svg")
    from grokinterp.models.config import is_toy

    config_path = run_dir / files.CONFIG
    if config_path.is_file() and is_toy(read_json(config_path)):  # a toy family (docs/toys.md)
        from grokinterp.models.figures import write_toy_figures

        return write_toy_figures(run_dir, formats)
    table, summary = read_analysis(run_dir)
    config = read_config(run_dir)
    attention = _final_attention_map(run_dir)
    figures = draw_figures(table, summary, config, *(attention or (None, None)))
    animated = _slider_figures(run_dir) if sliders else {}

    folder = run_dir / files.FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if "html" in formats:
        atomic_write_text(folder / PLOTLY_JS, get_plotlyjs())
        written.append(folder / PLOTLY_JS)
        for name, fig in {**figures, **animated}.items():
            path = folder / f"{name}.html"
            atomic_write_text(
                path, fig.to_html(include_plotlyjs="directory", full_html=True, auto_play=False)
            )
            written.append(path)
    static = [f for f in formats if f in STATIC_FORMATS]
    if static:
        written += _write_static(figures, folder, static)
    report = folder / files.REPORT
    write_report(
        report, config, summary, {**figures, **animated}, title=run_dir.name, refresh=refresh
    )
    written.append(report)
    return written


def _write_static(figures: Mapping[str, go.Figure], folder: Path, formats: list[str]) -> list[Path]:
    browser = find_browser()
    if browser is None:
        log.warning(
            "no Chrome/Chromium found, so figures are written as HTML only (no %s). Install "
            "one (Debian/Ubuntu: apt-get install chromium) or set $%s to its path.",
            "/".join(formats).upper(),
            BROWSER_ENV,
        )
        return []
    start = time.perf_counter()
    try:
        written = _export_static(figures, folder, formats, browser)
    except Exception as err:  # noqa: BLE001  (a broken browser must not lose the HTML)
        log.warning("static export with %s failed, figures are HTML only: %s", browser, err)
        return []
    log.info(
        "wrote %d static images in %.1f s with %s",
        len(written),
        time.perf_counter() - start,
        browser,
    )
    return written


# ---------------------------------------------------------------------------- report

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
td, th { border: 1px solid #ddd; padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.columns { display: flex; gap: 2em; flex-wrap: wrap; }
.figure { margin: 1.5em 0; }
"""

_PHASE_ROWS = (
    ("T_mem", "train accuracy reaches the threshold"),
    ("T_grok", "test accuracy reaches the threshold"),
    ("grokking_ratio", "T_grok / T_mem"),
    ("memorisation_end", "end of memorisation"),
    ("circuit_formation_end", "end of circuit formation"),
    ("cleanup_end", "end of cleanup"),
)


def _table(rows: Iterable[Iterable], header: Iterable[str] | None = None) -> str:
    head = ""
    if header is not None:
        head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


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
) -> Path:
    """One self-contained HTML page: config, phases, key frequencies and all figures.

    refresh: seconds after which the browser reloads the page, for a run still training
    (``grokinterp watch``); None (default) for a page that never reloads.
    """
    title = title or config.run_name
    final = summary.get("final", {})
    final_rows = [(k, v) for k, v in final.items() if not isinstance(v, (list, dict))]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>grokinterp report: {html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh else "",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>grokinterp report: {html.escape(title)}</h1>",
        f"<p><b>Training in progress</b> (analysed up to epoch {summary.get('final_epoch')} of "
        f"{config.epochs}): this page reloads every {int(refresh)} s.</p>"
        if refresh
        else "",
        "<h2>Phases</h2>",
        _table(_phase_rows(summary), ("boundary", "meaning", "epoch", "rule")),
        "<p>Key frequencies: <b>"
        + html.escape(", ".join(str(k) for k in summary.get("key_frequencies", [])) or "none")
        + "</b></p>",
        "<div class='columns'><div><h2>Final values</h2>",
        _table(final_rows, ("quantity", "value")),
        "</div><div><h2>Configuration</h2>",
        _table(sorted(config.to_dict().items()), ("field", "value")),
        "</div></div>",
        "<h2>Figures</h2>",
    ]
    for name, fig in figures.items():
        parts.append(f"<div class='figure' id='{html.escape(name)}'>")
        parts.append(fig.to_html(include_plotlyjs=False, full_html=False, auto_play=False))
        parts.append("</div>")
    parts.append("</body></html>")
    path = Path(path)
    atomic_write_text(path, "\n".join(parts))
    return path
