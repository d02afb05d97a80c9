"""One self-contained HTML page: the template of every report grokinterp writes.

A run's ``report.html`` (:func:`grokinterp.figures.run.write_report`) and a sweep's
(:func:`grokinterp.figures.sweep.write_sweep_report`) are both a title, some HTML sections
(tables) and figures, written by :func:`write_page`: plotly.js inlined once (the page
works offline), one style sheet, the file written atomically.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grokinterp.storage import atomic_write_text

__all__ = ["CSS", "html_table", "write_page"]

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.columns { display: flex; gap: 2em; flex-wrap: wrap; }
.figure { margin: 1.5em 0; }
"""


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


def html_table(rows: Iterable[Iterable], header: Iterable[str] | None = None) -> str:
    """An HTML table of ``rows`` (floats to 4 significant digits, lists as JSON)."""
    head = ""
    if header is not None:
        head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def write_page(
    path: str | Path,
    title: str,
    sections: Sequence[str],
    figures: Mapping[str, go.Figure],
    *,
    refresh: int | None = None,
) -> Path:
    """Write one page: ``<h1>title</h1>``, the HTML ``sections`` in order, then a
    "Figures" section with every figure (anchored by its name).

    refresh: seconds after which the browser reloads the page (a run still training,
    ``grokinterp watch``); None for a page that never reloads.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh else "",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *sections,
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
