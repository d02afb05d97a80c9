"""Liu et al. (2022)'s four run classes, from a run's T_mem and T_grok (docs/run-classes.md).

Liu, Kitouni, Nolte, Michaud, Tegmark, Williams (2022, arXiv:2205.10343) label each run of
their phase diagrams by how its train and test accuracy evolve.  grokinterp's rule, on the
project's own crossings (T_mem, T_grok: the first evaluated epochs with train and test
accuracy >= 0.99, :mod:`grokinterp.phases`):

==============  =============================================================================
class           rule
==============  =============================================================================
confusion       T_mem not reached by the end: the run did not even fit its training set
memorisation    T_mem reached, T_grok not: it fit the training set and never generalised
grokking        both reached, and T_grok - T_mem >= max(MIN_DELAY, DELAY_RATIO x T_mem):
                generalisation came late, at least as long again after memorising as
                memorising took (and at least MIN_DELAY epochs later)
comprehension   both reached, closer together: it generalised about as it fit
==============  =============================================================================

Liu et al. draw the grokking/comprehension line at an absolute 10^3 steps for their
setting; a ratio to T_mem carries across models and learning rates whose runs differ in
length by 100x, so the rule here is relative, with MIN_DELAY (100 epochs, 10 evaluations
at the sweeps' cadence) against noise.  "memorisation" of a censored run is a statement
about the epochs cap: it may still generalise later.

>>> run_class(50, 2000, 2100)
'grokking'
>>> run_class(50, 120, 220), run_class(50, None, 6000), run_class(None, None, 6000)
('comprehension', 'memorisation', 'confusion')
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["CLASSES", "DELAY_RATIO", "MIN_DELAY", "run_class", "run_classes"]

CLASSES = ("comprehension", "grokking", "memorisation", "confusion")
DELAY_RATIO = 1.0
MIN_DELAY = 100


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def run_class(
    t_mem: float | None,
    t_grok: float | None,
    end_epoch: float | None = None,
    *,
    delay_ratio: float = DELAY_RATIO,
    min_delay: float = MIN_DELAY,
) -> str:
    """The class of one finished run (see the module docstring); ``end_epoch`` is unused
    by the rule and kept for the record (a censored run's class holds up to its end)."""
    if not _known(t_mem):
        return "confusion"
    if not _known(t_grok):
        return "memorisation"
    delay = float(t_grok) - float(t_mem)
    return "grokking" if delay >= max(min_delay, delay_ratio * float(t_mem)) else "comprehension"


def run_classes(table: pd.DataFrame) -> pd.Series:
    """The class of every finished (done or censored) run of a table of runs; "" for the
    others (pending, running, failed)."""
    finished = table["status"].isin(["done", "censored"]).to_numpy()
    t_mem = pd.to_numeric(table["T_mem"], errors="coerce").to_numpy(dtype=float)
    t_grok = pd.to_numeric(table["T_grok"], errors="coerce").to_numpy(dtype=float)
    out = [run_class(m, g) if ok else "" for ok, m, g in zip(finished, t_mem, t_grok, strict=True)]
    return pd.Series(np.array(out, dtype=object), index=table.index, name="run_class")
