"""The grokking-delay laws, fitted across the runs of a sweep (docs/laws.md).

The delay of a run is ``T_grok - T_mem`` (the 99% test and train accuracy crossings).
Two laws relate it to the run's settings:

- law (a): ``ln(delay) = a + b ln(1 / (lr wd))``; pure weight-decay contraction predicts
  ``b = 1`` (arXiv:2603.13331, "Why Grokking Takes So Long");
- law (b): ``delay = A ln(norm_mem / norm_post) / (lr wd) + B``, with ``norm`` the L2
  norm of all weights (the square root of the table's sums of squares), ``norm_mem`` at
  the end of memorisation and ``norm_post`` at the end of cleanup by default; pure
  contraction ``|theta_t| = |theta_mem| exp(-lr wd t)`` gives ``A = 1, B = 0``.

Each is an ordinary least-squares line with R^2, and percentile bootstrap confidence
intervals for its slope and intercept (runs resampled with replacement, a seeded numpy
Generator).  Only grokked runs are fitted; censored, failed, unfinished and unreadable
runs are counted and listed, never fitted as if they grokked.

>>> import grokinterp                                         # doctest: +SKIP
>>> fit = grokinterp.fit_laws(grokinterp.load_sweep("sweeps/wd-lr-p59"))  # doctest: +SKIP
>>> fit["law_a"]["slope"], fit["law_a"]["slope_ci"]           # doctest: +SKIP

:func:`fit_laws` takes a table of runs (:func:`grokinterp.load_sweep`) and returns a
JSON-serialisable dict; :func:`law_points` gives the per-run quantities the figures of
:mod:`grokinterp.plots.laws` draw.  Fits in, numbers out: nothing here reads or writes a
file; :func:`grokinterp.figures.sweep.write_laws` writes ``laws.json`` and the figures of a
sweep folder (``grokinterp laws SWEEP_DIR``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from grokinterp.errors import OptionError

__all__ = [
    "DEFAULT_NORMS",
    "N_BOOT",
    "NORM_POINTS",
    "LawFitError",
    "bootstrap_line",
    "fit_laws",
    "fit_line",
    "format_laws",
    "law_points",
    "predict",
]

log = logging.getLogger(__name__)

N_BOOT = 2000
CI = 0.95
MIN_RUNS = 3
# Where a norm can be read: the table of runs has a column wnorm_<point> for each.
NORM_POINTS = ("T_mem", "memorisation_end", "T_grok", "cleanup_end", "end")
DEFAULT_NORMS = ("memorisation_end", "cleanup_end")
ROLES = ("grokked", "censored", "failed", "unfinished", "unreadable")
REQUIRED = ("name", "status", "grokked", "T_mem", "T_grok", "end_epoch", "lr", "weight_decay")

FORMULAS = {
    "law_a": "ln(T_grok - T_mem) = a + b ln(1 / (lr wd))",
    "law_b": "T_grok - T_mem = A ln(norm_mem / norm_post) / (lr wd) + B",
}
NAMES = {"law_a": ("b", "a"), "law_b": ("A", "B")}  # (slope, intercept)
PREDICTED = {"law_a": 1.0, "law_b": 1.0}  # the slope pure weight-decay contraction gives


class LawFitError(OptionError):
    """The table of runs cannot support a fit; the message says what is missing."""


# ---------------------------------------------------------------------------- lines


def _degenerate(x: np.ndarray) -> np.ndarray:
    """True where x (last axis) takes a single value: no line through it is defined."""
    spread = x.max(axis=-1) - x.min(axis=-1)
    return spread <= 1e-12 * np.maximum(np.abs(x).max(axis=-1), 1e-300)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of y on x along the last axis (any batch shape)."""
    xm, ym = x.mean(axis=-1, keepdims=True), y.mean(axis=-1, keepdims=True)
    dx = x - xm
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (dx * (y - ym)).sum(axis=-1) / (dx * dx).sum(axis=-1)
    return slope, ym[..., 0] - slope * xm[..., 0]


def bootstrap_line(
    x: np.ndarray, y: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Slopes and intercepts of ``n_boot`` least-squares refits on runs resampled with
    replacement (``numpy.random.default_rng(seed)``).

    A resample whose x takes a single value has no line and is dropped; the third value
    returned is how many were dropped.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))  # (n_boot, n) run indices
    xs, ys = x[idx], y[idx]
    keep = ~_degenerate(xs)
    slope, intercept = _ols(xs[keep], ys[keep])
    return slope, intercept, int((~keep).sum())


def _plain(value: float) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    value = float(value)
    return value if math.isfinite(value) else None


def fit_line(
    x: Sequence[float],
    y: Sequence[float],
    n_boot: int = N_BOOT,
    seed: int = 0,
    ci: float = CI,
) -> dict[str, Any]:
    """OLS line ``y = intercept + slope x`` with R^2 and percentile bootstrap CIs.

    R^2 is ``1 - SS_res / SS_tot`` (None when y is constant).  The CIs are the
    ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of the bootstrap slopes and intercepts
    (None when ``n_boot`` is 0).  Needs at least 3 points and 2 distinct x values.

    >>> fit = fit_line([1, 2, 3, 4], [3, 5, 7, 9], n_boot=200)
    >>> round(fit["slope"], 12), round(fit["intercept"], 12), fit["r2"]
    (2.0, 1.0, 1.0)
    >>> [round(v, 9) for v in fit["slope_ci"]]
    [2.0, 2.0]
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < MIN_RUNS:
        raise LawFitError(f"a line needs at least {MIN_RUNS} points, got {len(x)}")
    if _degenerate(x):
        raise LawFitError(f"every point has x = {x[0]:.6g}: no line can be fitted")
    slope, intercept = (float(v) for v in _ols(x, y))
    residual = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    out: dict[str, Any] = {
        "slope": slope,
        "intercept": intercept,
        "r2": _plain(r2),
        "n_fitted": len(x),
        "slope_ci": None,
        "intercept_ci": None,
        "n_boot": n_boot,
        "n_boot_dropped": 0,
    }
    if n_boot:
        slopes, intercepts, dropped = bootstrap_line(x, y, n_boot, seed)
        q = [(1 - ci) / 2, (1 + ci) / 2]
        if len(slopes):
            out["slope_ci"] = [float(v) for v in np.quantile(slopes, q)]
            out["intercept_ci"] = [float(v) for v in np.quantile(intercepts, q)]
        out["n_boot_dropped"] = dropped
    return out


# ---------------------------------------------------------------------------- runs


def _check_options(n_boot: int, ci: float, norms: Sequence[str]) -> tuple[str, str]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise OptionError(f"n_boot (--bootstrap) must be an integer >= 0, got {n_boot!r}")
    if not 0 < ci < 1:
        raise OptionError(f"ci must be in (0, 1), e.g. 0.95; got {ci!r}")
    norms = tuple(norms)
    if len(norms) != 2 or any(n not in NORM_POINTS for n in norms):
        raise OptionError(
            f"norms (--norms) must be two of {', '.join(NORM_POINTS)} (where norm_mem and "
            f"norm_post are read), e.g. memorisation_end,cleanup_end; got {list(norms)}"
        )
    return norms[0], norms[1]


def law_points(table: pd.DataFrame, norms: Sequence[str] = DEFAULT_NORMS) -> pd.DataFrame:
    """Per run, what the laws use: one row per run of ``table``, in its order.

    Columns: ``name``, ``role`` (``grokked``, ``censored``, ``failed``, ``unfinished`` or
    ``unreadable``), ``lr_wd`` (lr * weight_decay), ``inv_lr_wd``, ``delay``
    (T_grok - T_mem, NaN unless grokked), ``delay_lower`` (censored runs: the delay is
    beyond ``end_epoch - T_mem``, the cap less T_mem, or ``end_epoch`` when the run never
    memorised), ``norm_mem`` and ``norm_post`` (L2 norms: square roots of the table's
    ``wnorm_<point>`` sums of squares), ``log_norm_ratio`` = ln(norm_mem / norm_post),
    ``x_b`` = log_norm_ratio / (lr wd), and ``exclude_a`` / ``exclude_b``: why a grokked
    run is left out of law (a) / (b) (empty when it is fitted).
    """
    mem, post = _check_options(0, CI, norms)
    missing = [c for c in REQUIRED if c not in table]
    if missing:
        raise LawFitError(
            f"not a table of runs: no column(s) {missing}; build it with "
            f"grokinterp.load_sweep(SWEEP_DIR)"
        )
    t = table.reset_index(drop=True)
    num = {c: pd.to_numeric(t[c], errors="coerce").to_numpy(dtype=float) for c in REQUIRED[3:]}
    status = t["status"].astype(str).to_numpy()
    grokked = t["grokked"].astype(bool).to_numpy() & np.isfinite(num["T_grok"])
    role = np.where(
        grokked & np.isfinite(num["T_mem"]),
        "grokked",
        np.select(
            [status == "censored", status == "failed", np.isin(status, ["pending", "running"])],
            ["censored", "failed", "unfinished"],
            "unreadable",  # finished, but no T_grok / T_mem could be read
        ),
    )
    lr_wd = num["lr"] * num["weight_decay"]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(lr_wd > 0, 1.0 / lr_wd, np.nan)
    delay = np.where(role == "grokked", num["T_grok"] - num["T_mem"], np.nan)
    lower = num["end_epoch"] - np.nan_to_num(num["T_mem"], nan=0.0)
    norm = {}
    for which, point in (("mem", mem), ("post", post)):
        column = f"wnorm_{point}"
        if column in t:
            sq = pd.to_numeric(t[column], errors="coerce").to_numpy(dtype=float)
        else:  # e.g. a runs.csv written before the column existed
            sq = np.full(len(t), np.nan)
        with np.errstate(invalid="ignore"):
            norm[which] = np.sqrt(np.where(sq > 0, sq, np.nan))
    log_ratio = np.log(norm["mem"] / norm["post"])
    out = pd.DataFrame(
        {
            "name": t["name"].astype(str),
            "role": role,
            "status": status,
            "lr": num["lr"],
            "weight_decay": num["weight_decay"],
            "lr_wd": lr_wd,
            "inv_lr_wd": inv,
            "T_mem": num["T_mem"],
            "T_grok": num["T_grok"],
            "end_epoch": num["end_epoch"],
            "delay": delay,
            "delay_lower": np.where(role == "censored", lower, np.nan),
            "norm_mem": norm["mem"],
            "norm_post": norm["post"],
            "log_norm_ratio": log_ratio,
            "x_b": log_ratio * inv,
        }
    )
    bad_rate = ~np.isfinite(inv)
    rate_reason = "lr * weight_decay is not > 0, so 1/(lr wd) is not finite"
    out["exclude_a"] = np.select(
        [role != "grokked", bad_rate, ~(delay > 0)],
        [role, rate_reason, "T_grok <= T_mem: ln(delay) is undefined"],
        "",
    )
    no_norm = [_no_norm_reason(t, point).astype(str) for point in (mem, post)]
    out["exclude_b"] = np.select(
        [role != "grokked", bad_rate, np.isnan(norm["mem"]), np.isnan(norm["post"])],
        [role, rate_reason, *no_norm],
        "",
    )
    return out


def _no_norm_reason(t: pd.DataFrame, point: str) -> np.ndarray:
    """Per run, why there is no weight norm at ``point``: a boundary the run did not see
    (with the table's ``not_seen`` reason), or a missing value."""
    plain = f"no weight norm at {point} (wnorm_{point} is missing or NaN)"
    out = np.full(len(t), plain, dtype=object)
    if "not_seen" in t:
        for i, text in enumerate(t["not_seen"].fillna("").astype(str)):
            for part in text.split(" | "):
                name, _, why = part.partition(": ")
                if name == point and why:
                    out[i] = f"{point} not seen: {why}"
    return out


def _names(points: pd.DataFrame, role: str) -> list[str]:
    return points.loc[points["role"] == role, "name"].tolist()


def _law(
    points: pd.DataFrame, law: str, x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, ci: float
) -> dict[str, Any]:
    column = "exclude_a" if law == "law_a" else "exclude_b"
    keep = (points[column] == "").to_numpy()
    grokked_out = points[(points["role"] == "grokked") & ~keep]
    slope_name, intercept_name = NAMES[law]
    out: dict[str, Any] = {
        "formula": FORMULAS[law],
        "slope_name": slope_name,
        "intercept_name": intercept_name,
        "fitted_runs": points.loc[keep, "name"].tolist(),
        "excluded": dict(zip(grokked_out["name"], grokked_out[column], strict=True)),
        "predicted_slope": PREDICTED[law],
    }
    out.update(fit_line(x[keep], y[keep], n_boot=n_boot, seed=seed, ci=ci))
    lo_hi = out["slope_ci"]
    out["predicted_slope_in_ci"] = None if lo_hi is None else lo_hi[0] <= PREDICTED[law] <= lo_hi[1]
    return out


def fit_laws(
    table: pd.DataFrame,
    n_boot: int = N_BOOT,
    seed: int = 0,
    norms: Sequence[str] = DEFAULT_NORMS,
    ci: float = CI,
) -> dict[str, Any]:
    """Fit laws (a) and (b) to the grokked runs of a table of runs (docs/laws.md).

    table: :func:`grokinterp.load_sweep`'s DataFrame (or any frame with its columns).
    n_boot: bootstrap resamples (0: no CIs); seed: of the resampling Generator;
    norms: the two points (of :data:`NORM_POINTS`) where norm_mem and norm_post are read;
    ci: the confidence level of the percentile intervals.

    Returns a JSON-serialisable dict: the run counts, the ``censored``, ``failed``,
    ``unfinished`` and ``unreadable`` run names, and per law (``law_a``, ``law_b``) the
    slope and intercept, their CIs, R^2, ``n_fitted``, the fitted runs, the grokked runs
    left out (with why), and whether the CI of the slope holds the value pure weight-decay
    contraction predicts (1).  Law (b) is ``{"ok": False, "reason": ...}`` when fewer than
    3 runs have both norms.

    Raises :class:`LawFitError` when fewer than 3 grokked runs can be fitted, or when every
    one has the same lr * weight_decay (law (a) needs the rate to vary).
    """
    mem, post = _check_options(n_boot, ci, norms)
    points = law_points(table, (mem, post))
    fit_a = points[points["exclude_a"] == ""]
    if len(fit_a) < MIN_RUNS:
        roles = points["role"].value_counts().to_dict()
        others = {k: v for k, v in points["exclude_a"].value_counts().items() if k}
        raise LawFitError(
            f"the laws need at least {MIN_RUNS} grokked runs with T_grok > T_mem and "
            f"lr * weight_decay > 0; this table has {len(fit_a)} (runs by role: {roles}; "
            f"left out: {others}). Train more runs, or raise the epochs cap of censored ones"
        )
    if _degenerate(fit_a["lr_wd"].to_numpy()):
        raise LawFitError(
            f"every grokked run has lr * weight_decay = {fit_a['lr_wd'].iloc[0]:.6g}; the "
            f"laws need runs at two or more values: sweep lr or weight_decay"
        )
    result: dict[str, Any] = {
        "n_runs": len(points),
        "n_grokked": int((points["role"] == "grokked").sum()),
        "n_censored": int((points["role"] == "censored").sum()),
        "n_failed": int((points["role"] == "failed").sum()),
        **{role: _names(points, role) for role in ROLES[1:]},
        "bootstrap": {
            "n": n_boot,
            "seed": seed,
            "ci": ci,
            "method": "percentile; runs resampled with replacement; numpy default_rng(seed)",
        },
        "delay": "T_grok - T_mem (epochs)",
    }
    log_inv = np.log(points["inv_lr_wd"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        log_delay = np.log(points["delay"].to_numpy())
    result["law_a"] = {"ok": True, **_law(points, "law_a", log_inv, log_delay, n_boot, seed, ci)}
    result["law_a"]["log"] = "natural"
    norm_info = {
        "norm": "L2 norm of all weights, sqrt(sum of squared weights)",
        "norm_mem": mem,
        "norm_post": post,
    }
    try:
        x_b, delay = points["x_b"].to_numpy(), points["delay"].to_numpy()
        law_b = _law(points, "law_b", x_b, delay, n_boot, seed, ci)
        result["law_b"] = {"ok": True, **norm_info, **law_b}
    except LawFitError as err:
        n_b = int((points["exclude_b"] == "").sum())
        reasons = {k: v for k, v in points["exclude_b"].value_counts().items() if k}
        result["law_b"] = {
            "ok": False,
            "formula": FORMULAS["law_b"],
            **norm_info,
            "reason": f"{err} ({n_b} grokked runs with both norms; left out: {reasons})",
            "n_fitted": n_b,
            "excluded": {
                str(n): str(why)
                for n, why, r in zip(
                    points["name"], points["exclude_b"], points["role"], strict=True
                )
                if why and r == "grokked"
            },
        }
    return result


def predict(fit: dict[str, Any], points: pd.DataFrame, law: str) -> np.ndarray:
    """The delay each run's settings predict under a fitted law (NaN where undefined)."""
    entry = fit[law]
    if not entry.get("ok"):
        return np.full(len(points), np.nan)
    slope, intercept = entry["slope"], entry["intercept"]
    if law == "law_a":
        return np.exp(intercept + slope * np.log(points["inv_lr_wd"].to_numpy()))
    return intercept + slope * points["x_b"].to_numpy()


# ---------------------------------------------------------------------------- text


def _ci(entry: dict[str, Any], key: str) -> str:
    ci = entry.get(f"{key}_ci")
    return "" if ci is None else f" [{ci[0]:.4g}, {ci[1]:.4g}]"


def format_laws(fit: dict[str, Any]) -> str:
    """A short readable summary of :func:`fit_laws`' result."""
    pct = f"{100 * fit['bootstrap']['ci']:g}% CI" if fit["bootstrap"]["n"] else "no CI"
    lines = [
        f"{fit['n_runs']} runs: {fit['n_grokked']} grokked, {fit['n_censored']} censored, "
        f"{fit['n_failed']} failed"
        + (f", {len(fit['unfinished'])} unfinished" if fit["unfinished"] else "")
        + (f", {len(fit['unreadable'])} unreadable" if fit["unreadable"] else "")
    ]
    for law, title in (("law_a", "law (a)"), ("law_b", "law (b)")):
        e = fit[law]
        lines.append(f"{title}: {e['formula']}")
        if not e["ok"]:
            lines.append(f"  not fitted: {e['reason']}")
            continue
        s, i = e["slope_name"], e["intercept_name"]
        r2 = "n/a" if e["r2"] is None else f"{e['r2']:.4f}"
        lines.append(
            f"  {s} = {e['slope']:.4g}{_ci(e, 'slope')}, {i} = {e['intercept']:.4g}"
            f"{_ci(e, 'intercept')} ({pct}), R^2 = {r2}, {e['n_fitted']} runs fitted"
        )
        if e["predicted_slope_in_ci"] is not None:
            inside = "inside" if e["predicted_slope_in_ci"] else "outside"
            lines.append(f"  {s} = {e['predicted_slope']:g} (pure weight decay) is {inside} the CI")
        if law == "law_b":
            lines.append(f"  norms: norm_mem at {e['norm_mem']}, norm_post at {e['norm_post']}")
        for name, why in e["excluded"].items():
            lines.append(f"  left out {name}: {why}")
    for role in ("censored", "failed", "unfinished", "unreadable"):
        if fit[role]:
            lines.append(f"{role} (not fitted): {', '.join(fit[role])}")
    for group, e in fit.get("inverse_lambda_law", {}).items():  # toy runs (decay_law)
        if "slope" not in e:
            lines.append(f"1/lambda law, {group}: not fitted: {e['not_fitted']}")
            continue
        lines.append(
            f"1/lambda law, {group}: ln(t) = a + b ln(1/lambda): b = {e['slope']:.4g}"
            f"{_ci(e, 'slope')}, R^2 = {e['r2']:.4f}, {e['n_runs']} runs "
            f"({e['n_left_out']} without a time)"
        )
    return "\n".join(lines)
