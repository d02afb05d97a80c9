"""Many runs: a TOML spec expanded to runs, run on a backend, and one table of runs.

>>> from grokinterp.sweep import run_sweep, load_sweep      # doctest: +SKIP
>>> folder = run_sweep("examples/sweep-wd-lr-p59.toml")      # doctest: +SKIP
>>> load_sweep(folder)[["name", "status", "T_grok"]]         # doctest: +SKIP

Modules: :mod:`.spec` (the spec and its expansion), :mod:`.manifest` (the sweep folder),
:mod:`.worker` (one run: train, analyse), :mod:`.backends` (where runs execute),
:mod:`.coordinator` (:func:`run_sweep`), :mod:`.table` (:func:`load_sweep`).  The figures
across runs are drawn by :mod:`grokinterp.plots.sweep` and written by
:mod:`grokinterp.figures.sweep`.
"""

from grokinterp.sweep.backends import Backend, InlineBackend, LocalBackend
from grokinterp.sweep.coordinator import SweepProgress, run_sweep
from grokinterp.sweep.manifest import SweepExistsError, SweepLockedError, is_sweep
from grokinterp.sweep.spec import SpecError, SweepSpec, load_spec, parse_spec
from grokinterp.sweep.table import load_sweep, write_runs_table
from grokinterp.sweep.worker import run_one

__all__ = [
    "Backend",
    "InlineBackend",
    "LocalBackend",
    "SpecError",
    "SweepExistsError",
    "SweepLockedError",
    "SweepProgress",
    "SweepSpec",
    "is_sweep",
    "load_spec",
    "load_sweep",
    "parse_spec",
    "run_one",
    "run_sweep",
    "write_runs_table",
]
