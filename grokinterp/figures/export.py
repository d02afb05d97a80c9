"""Writing figures to files: HTML always, PNG and SVG through kaleido when a browser is found.

:func:`write_figure_files` is the one write loop of grokinterp: a run's figures, a sweep's,
the laws' and the forecast's are all written through it.  Each figure becomes
``FOLDER/<name>.html`` (plotly.js read from ``plotly.min.js``, written once beside them)
and, for the static formats, ``FOLDER/<name>.png`` / ``.svg``.  Every file is written
atomically.

Static export (kaleido 1.x) drives a headless Chrome/Chromium.  :func:`find_browser`
looks, in order, at ``$GROKINTERP_BROWSER``, at kaleido's own ``$BROWSER_PATH``, then for
chromium/chrome on ``PATH`` and at the usual install paths, and last for a copy fetched
earlier with ``kaleido_get_chrome``.  It never downloads one; when none is found the
figures are written as HTML only, with one warning.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grokinterp import files
from grokinterp.errors import OptionError
from grokinterp.plots.style import HEIGHT, WIDTH
from grokinterp.storage import atomic_write_text

__all__ = [
    "BROWSER_ENV",
    "FORMATS",
    "STATIC_FORMATS",
    "check_formats",
    "export_static",
    "find_browser",
    "write_figure_files",
]

log = logging.getLogger(__name__)

BROWSER_ENV = "GROKINTERP_BROWSER"
FORMATS = ("html", "png", "svg")
STATIC_FORMATS = ("png", "svg")

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


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats as a tuple; OptionError naming the allowed ones for an unknown one."""
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise OptionError(
            f"unknown figure format(s) {sorted(unknown)}; allowed: {', '.join(FORMATS)}"
        )
    return formats


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


# ---------------------------------------------------------------------------- static


def _kaleido_export(
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
                            "width": fig.layout.width or WIDTH,
                            "height": fig.layout.height or HEIGHT,
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


def export_static(
    figures: Mapping[str, go.Figure], folder: str | Path, formats: Iterable[str]
) -> list[Path]:
    """Write ``FOLDER/<name>.<fmt>`` for each figure and static format; the paths written.

    Needs a browser (:func:`find_browser`); without one, or if the export fails, nothing
    is written and one warning says why (the HTML files are never lost to a broken browser).
    """
    formats = [f for f in formats if f in STATIC_FORMATS]
    if not formats or not figures:
        return []
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
        written = _kaleido_export(figures, Path(folder), formats, browser)
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


# ---------------------------------------------------------------------------- the loop


def write_figure_files(
    figures: Mapping[str, go.Figure],
    folder: str | Path,
    formats: Iterable[str] = FORMATS,
    *,
    html_only: Mapping[str, go.Figure] | None = None,
) -> list[Path]:
    """Write each figure under ``folder`` in each format; returns the paths written.

    HTML: ``<name>.html`` per figure, with ``plotly.min.js`` written once beside them.
    PNG, SVG: :func:`export_static`.  ``html_only``: more figures written as HTML only
    (the interactive epoch sliders, which have no static form).
    """
    formats = check_formats(formats)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "html" in formats:
        atomic_write_text(folder / files.PLOTLY_JS, get_plotlyjs())
        written.append(folder / files.PLOTLY_JS)
        for name, fig in {**figures, **(html_only or {})}.items():
            path = folder / f"{name}.html"
            atomic_write_text(
                path, fig.to_html(include_plotlyjs="directory", full_html=True, auto_play=False)
            )
            written.append(path)
    written += export_static(figures, folder, formats)
    return written
