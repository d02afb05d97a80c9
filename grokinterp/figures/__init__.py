"""Every file of figures grokinterp writes, written here and nowhere else.

:mod:`~grokinterp.figures.export` (the browser, static export, the one write loop),
:mod:`~grokinterp.figures.report` (the one report template), and the writers built on
them: :mod:`~grokinterp.figures.run` (a run's figures and report.html),
:mod:`~grokinterp.figures.sweep` (a sweep's figures, report.html and laws.json) and
:mod:`~grokinterp.figures.forecast` (the forecast evaluation).  The figures themselves
are drawn by :mod:`grokinterp.plots` (data in, Figure out).
"""

from grokinterp.figures.export import BROWSER_ENV, find_browser, write_figure_files
from grokinterp.figures.forecast import write_evaluation
from grokinterp.figures.run import (
    draw_figures,
    phase_table,
    read_analysis,
    summary_phases,
    write_figures,
    write_report,
)
from grokinterp.figures.sweep import write_comparison, write_laws, write_sweep_figures

__all__ = [
    "BROWSER_ENV",
    "draw_figures",
    "find_browser",
    "phase_table",
    "read_analysis",
    "summary_phases",
    "write_comparison",
    "write_evaluation",
    "write_figure_files",
    "write_figures",
    "write_laws",
    "write_report",
    "write_sweep_figures",
]
