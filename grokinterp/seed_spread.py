"""The seed-to-seed spread of the grokking delay, and the ceiling it sets on a law's R^2.

A law of the delay that is a function of the run's settings (law (a): of lr * wd alone)
gives every seed of one setting the same prediction, so the spread between those seeds is
scatter no such law can explain.  Over the runs of settings with at least two grokked
seeds, with y the quantity the law fits (ln(delay) for law (a), the delay for law (b)):

    ceiling = 1 - SS_within / SS_total,
    SS_within = sum over settings g, runs i of g of (y_i - mean_g)^2,
    SS_total  = sum over runs i of (y_i - mean)^2,

the R^2 of the best possible function of the setting (each setting's mean).  A law whose
input varies per run (law (b) reads each run's weight norms) is not bound by it.
Definitions: docs/laws.md and docs/experiments.md, "(p) The delay law at scale: MLPs,
sparse parity and phase diagrams".

>>> import pandas as pd
>>> t = pd.DataFrame({"g": [0, 0, 1, 1], "y": [1.0, 3.0, 5.0, 7.0]})
>>> r2_ceiling(t["y"], t["g"])["ceiling"]
0.8
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["r2_ceiling", "setting_spread"]


def r2_ceiling(y: Sequence[float], setting: Sequence) -> dict:
    """The R^2 ceiling of ``y`` over ``setting`` labels (any hashables, one per run):
    {"ceiling", "n_runs", "n_settings", "ss_within", "ss_total"}, over the runs of settings
    with at least two finite values; ceiling None when fewer than two such settings."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "g": list(setting)})
    frame = frame[np.isfinite(frame["y"])]
    sizes = frame.groupby("g")["y"].transform("size")
    frame = frame[sizes >= 2]
    n_settings = frame["g"].nunique()
    out = {"n_runs": len(frame), "n_settings": int(n_settings), "ceiling": None}
    if n_settings < 2:
        return out
    means = frame.groupby("g")["y"].transform("mean")
    ss_within = float(((frame["y"] - means) ** 2).sum())
    ss_total = float(((frame["y"] - frame["y"].mean()) ** 2).sum())
    out.update(ss_within=ss_within, ss_total=ss_total)
    out["ceiling"] = 1 - ss_within / ss_total if ss_total > 0 else None
    return out


def setting_spread(delay: Sequence[float], setting: Sequence) -> pd.DataFrame:
    """Per setting: grokked seeds, the median delay, max / min of the delay over seeds and
    the standard deviation of ln(delay) (NaN with fewer than two)."""
    frame = pd.DataFrame({"delay": np.asarray(delay, dtype=float), "g": list(setting)})
    rows = []
    for g, group in frame.groupby("g", sort=True):
        d = group["delay"][np.isfinite(group["delay"]) & (group["delay"] > 0)]
        rows.append({
            "setting": g,
            "n_grokked": len(d),
            "median_delay": float(d.median()) if len(d) else math.nan,
            "max_over_min": float(d.max() / d.min()) if len(d) >= 2 else math.nan,
            "sd_log_delay": float(np.log(d).std(ddof=1)) if len(d) >= 2 else math.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)
