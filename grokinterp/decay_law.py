"""The ridge paper's delay bound and the 1/lambda law: numbers in, numbers out.

Bound (arXiv:2601.19791): gradient descent on (1/n)||X theta - y||^2 + lambda ||theta||^2
from theta_0 ~ N(0, nu^2 I) in R^m, n < m samples, cannot bring the test loss below c
before

    t_bound = ln((m - n) nu^2 / 2 * (sqrt(c / lambda_min(Sigma)) + ||theta*||)^-2) / (4 lr lam)

It is a lower bound on the time to generalise; when the logarithm's argument is <= 1 it is
<= 0 and says nothing (``trivial``).

The 1/lambda law: at a fixed learning rate, ln(t_generalise) = a + b ln(1 / lambda); the
bound gives b = 1.  :func:`fit_inverse_lambda_law` fits it by least squares with a
bootstrap confidence interval on b.

>>> round(ridge_bound(m=200, n=40, nu=1.0, lambda_min=1.0, theta_norm=1.0, c=1.0,
...                   lr=0.05, lam=0.01), 2)
1497.87
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from grokinterp.errors import OptionError

__all__ = ["bound_inputs", "fit_inverse_lambda_law", "ridge_bound"]


def ridge_bound(
    m: int, n: int, nu: float, lambda_min: float, theta_norm: float, c: float, lr: float,
    lam: float,
) -> float:  # fmt: skip
    """The lower bound on the epochs to generalise (see the module docstring); inf at
    lambda = 0; ValueError when m <= n (no direction orthogonal to the data)."""
    if m <= n:
        raise ValueError(f"the bound needs m > n (over-parameterised), got m={m}, n={n}")
    if lam == 0:
        return math.inf
    if nu == 0:
        return -math.inf  # no initial weight in the orthogonal directions: no delay forced
    arg = (m - n) * nu**2 / 2 * (math.sqrt(c / lambda_min) + theta_norm) ** -2
    return math.log(arg) / (4 * lr * lam)


def bound_inputs(cfg, facts: dict) -> dict | None:
    """The bound's inputs for a toy config and its data facts (data.json), or None when
    the bound does not apply (it is proved for the linear model on ridge data)."""
    if cfg.dataset != "ridge" or cfg.family != "linear" or cfg.optimizer != "gd":
        return None
    if cfg.m <= cfg.n_train:
        return None
    return {
        "m": cfg.m,
        "n": cfg.n_train,
        "nu": cfg.init_scale,
        "lambda_min": facts["lambda_min_sigma"],
        "theta_norm": facts["theta_star_norm"],
        "c": cfg.c,
        "lr": cfg.lr,
        "lam": cfg.weight_decay,
    }


def fit_inverse_lambda_law(
    lams: Sequence[float], times: Sequence[float], ci: float = 0.95, n_boot: int = 2000,
    seed: int = 0,
) -> dict:  # fmt: skip
    """Least squares of ln(t) on ln(1 / lambda): slope b, intercept a, R^2 and the ``ci``
    percentile-bootstrap interval of b (:func:`grokinterp.laws.fit_line`, as law (a)).
    Runs with no time (NaN: censored) are left out and counted."""
    from grokinterp.laws import fit_line

    lam, t = np.asarray(lams, dtype=float), np.asarray(times, dtype=float)
    keep = np.isfinite(t) & (t > 0) & np.isfinite(lam) & (lam > 0)
    if keep.sum() < 3 or len(np.unique(lam[keep])) < 2:
        raise OptionError(
            f"the 1/lambda law needs >= 3 runs with a time at >= 2 lambda values; got "
            f"{int(keep.sum())} runs ({int((~keep).sum())} without a time); run more lambdas"
        )
    fit = fit_line(np.log(1 / lam[keep]), np.log(t[keep]), n_boot=n_boot, seed=seed, ci=ci)
    return {
        "formula": "ln(t) = a + b ln(1 / lambda)",
        **fit,
        "n_runs": int(keep.sum()),
        "n_left_out": int((~keep).sum()),
        "ci": ci,
        "predicted_slope": 1.0,
    }


def inverse_lambda_laws(table, n_boot: int = 2000, seed: int = 0) -> dict:
    """The 1/lambda law fitted per (family, lr) group of a table of toy runs
    (:func:`grokinterp.load_sweep`): ``{"<family> lr=<lr>": fit}``, fitting ``t_generalise``
    (censored runs: NaN, left out and counted); groups that cannot be fitted say why."""
    out = {}
    for (family, lr), rows in table.groupby(["family", "lr"]):
        key = f"{family} lr={lr:g}"
        try:
            out[key] = fit_inverse_lambda_law(
                rows["weight_decay"], rows["t_generalise"], n_boot=n_boot, seed=seed
            )
        except OptionError as err:
            out[key] = {"not_fitted": str(err)}
    return out


def delay_points(table):
    """Per grokked run of a table of runs: ``rate``, the decay per optimiser step, and
    ``delay_steps``, T_grok - T_mem in optimiser steps, so that transformer and toy sweeps
    share one axis.  Transformer (AdamW, full batch): rate = lr wd, one step an epoch.
    Toy: rate = lr wd with batch-1 SGD (n_train steps an epoch), 2 lr lambda with GD on
    lambda ||w||^2 (one step an epoch).  Other optimisers get NaN."""
    import pandas as pd

    grokked = table[table["grokked"].astype(bool)]
    lr, wd = grokked["lr"].astype(float), grokked["weight_decay"].astype(float)
    delay = (grokked["T_grok"] - grokked["T_mem"]).astype(float)
    if "family" in grokked:
        sgd = grokked["optimizer"] == "sgd"
        rate = np.where(sgd, lr * wd, 2 * lr * wd)
        steps = np.where(sgd, grokked["n_train"].astype(float), 1.0)
    else:
        full = (grokked["optimizer"] == "adamw") & (grokked["batch_size"] == 0)
        rate = np.where(full, lr * wd, np.nan)
        steps = np.ones(len(grokked))
    return pd.DataFrame(
        {"name": grokked["name"].to_numpy(), "rate": rate, "delay_steps": delay * steps}
    )
