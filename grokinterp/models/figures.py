"""The figures of one analysed toy run, written under RUN/figures/ (``grokinterp figures``).

``curves`` (losses, accuracies, G(t); :func:`grokinterp.plots.toys.toy_curves`) and
``block_norms`` (:func:`grokinterp.plots.toys.block_norms`), as HTML and, when a browser is
found, PNG/SVG; and a short report.html linking them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from plotly.offline import get_plotlyjs

from grokinterp import files
from grokinterp.analysis import read_table
from grokinterp.plots.toys import block_norms, toy_curves
from grokinterp.run import load_run
from grokinterp.storage import atomic_write_text, read_json

__all__ = ["draw_toy_figures", "write_toy_figures"]


def draw_toy_figures(run_dir: Path) -> dict:
    run = load_run(run_dir)
    summary = read_json(run_dir / files.SUMMARY)
    table = read_table(run_dir / files.ANALYSIS_TABLE)
    phases = {k: (summary["phases"].get(k) or {}).get("epoch") for k in ("T_mem", "T_grok")}
    if "T_grok_0.9" in summary:
        phases["T_grok(0.9)"] = summary["T_grok_0.9"].get("epoch")
    name = run.config.run_name
    return {
        "curves": toy_curves(run.metrics, phases, f"{name}: losses, accuracies, G(t)"),
        "block_norms": block_norms(table, f"{name}: sum of squared weights per block"),
    }


def write_toy_figures(run_dir: str | Path, formats: Iterable[str] = ("html",)) -> list[Path]:
    from grokinterp.figures import _write_static

    run_dir = Path(run_dir)
    figures = draw_toy_figures(run_dir)
    folder = run_dir / files.FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if "html" in formats:
        atomic_write_text(folder / "plotly.min.js", get_plotlyjs())
        for name, fig in figures.items():
            path = folder / f"{name}.html"
            atomic_write_text(path, fig.to_html(include_plotlyjs="directory", full_html=True))
            written.append(path)
    static = [f for f in formats if f in ("png", "svg")]
    if static:
        written += _write_static(figures, folder, static)
    links = "".join(f'<li><a href="{n}.html">{html.escape(n)}</a></li>' for n in figures)
    report = folder / files.REPORT
    atomic_write_text(report, f"<html><body><h1>{html.escape(run_dir.name)}</h1><ul>{links}"
                              f"</ul></body></html>\n")  # fmt: skip
    return [*written, report]
