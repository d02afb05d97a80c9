"""A forecast of T_grok, with an interval, from a run's plateau after memorisation.

The method (docs/forecast.md) uses only the checkpoints and metrics up to an epoch
``upto``:

1. T_mem, the first eval epoch with train accuracy >= 0.99 (metrics.csv), must exist;
   a run whose test accuracy already reached 0.99 is reported "already grokked".
2. The plateau starts at the end of memorisation, the peak of the smoothed log test loss
   between T_mem and ``upto`` (:func:`grokinterp.phases.memorisation_end` on metrics.csv).
3. Restricted-loss trend.  Key frequencies are those of the embedding at ``upto`` (the
   ``n_key_freqs`` largest frequency norms of W_E, :data:`N_KEY_FREQS` = 4); the
   restricted loss with them is computed at (at most :data:`MAX_POINTS`) plateau
   checkpoints.  It falls about linearly in the plateau; a straight-line fit gives the
   epoch ``t_zero`` where it would reach 0, and
   ``T_R = T_mem + r (t_zero - T_mem)``, with ``r`` calibrated (:data:`CALIBRATION`).
4. Weight-norm contraction.  log(sum of squared weights) is fitted by a straight line over
   the plateau (rate ``rate`` per epoch) and extrapolated to ``c`` times its peak after
   T_mem: ``T_N`` is where the fitted line reaches ``log(c * peak)``, ``c`` calibrated.
5. The forecast is the mean of T_R and T_N.  The interval: a bootstrap that resamples the
   plateau checkpoints and draws ``r`` and ``c`` from their calibration values; the
   5th and 95th percentiles of the bootstrapped forecasts.

:func:`forecast_from_curves` is the arithmetic on arrays; :func:`forecast_t_grok` reads a
run; :func:`evaluate_forecast` cuts grokked runs early and compares.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from grokinterp import files
from grokinterp.errors import OptionError, RunFileError
from grokinterp.phases import ACC_THRESHOLD, memorisation_end, t_grok, t_mem
from grokinterp.run import Run, find_runs, load_run

__all__ = [
    "CALIBRATION",
    "Calibration",
    "Forecast",
    "NotMemorisedError",
    "NotYetError",
    "calibrate_forecast",
    "calibration_from_curves",
    "evaluate_forecast",
    "forecast_from_curves",
    "forecast_or_not_yet",
    "forecast_t_grok",
]

log = logging.getLogger(__name__)

ACC = ACC_THRESHOLD  # the accuracy of T_mem and T_grok
N_KEY_FREQS = 4  # embedding frequencies the restricted loss keeps
MAX_POINTS = 40  # plateau checkpoints at most whose restricted loss is computed
MIN_POINTS = 5  # plateau checkpoints at least for a forecast
LEVEL = 0.9  # the interval's coverage


@dataclass(frozen=True)
class Calibration:
    """The two constants of the method, each as the values seen on calibration runs.

    restricted_ratio: (T_grok - T_mem) / (t_zero - T_mem), the restricted loss's linear
    zero crossing scaled to T_grok.  critical_norm: the plateau fit of the sum of
    squared weights at T_grok, over its peak after T_mem.  Paired: value i of each comes
    from the same calibration cut.  The point forecast uses their medians; the bootstrap
    draws pairs (the two constants' errors are correlated: an early cut needs a larger
    ratio and a smaller critical norm).
    """

    restricted_ratio: tuple[float, ...]
    critical_norm: tuple[float, ...]
    source: str = ""

    def __post_init__(self):
        r, c = self.restricted_ratio, self.critical_norm
        if not r or len(r) != len(c):
            raise OptionError(
                f"Calibration: restricted_ratio ({len(r)} values) and critical_norm "
                f"({len(c)}) must be non-empty and paired, one of each per calibration cut"
            )
        if min(r) <= 0 or not 0 < min(c) <= max(c) < 1:
            raise OptionError(
                f"Calibration: restricted_ratio must be > 0 and critical_norm in (0, 1), "
                f"got {r} and {c}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, path: str | Path) -> Calibration:
        """A calibration written by ``grokinterp forecast PATH --calibrate`` (JSON)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(
                restricted_ratio=tuple(float(v) for v in data["restricted_ratio"]),
                critical_norm=tuple(float(v) for v in data["critical_norm"]),
                source=str(data.get("source", path)),
            )
        except FileNotFoundError:
            raise OptionError(f"{path}: calibration file not found") from None
        except (ValueError, KeyError, TypeError) as err:
            raise OptionError(
                f"{path}: not a forecast calibration ({type(err).__name__}: {err}); write one "
                "with 'grokinterp forecast SWEEP --calibrate'"
            ) from None


# Calibrated on the four analysed p = 113 runs of the paper setup (docs/forecast.md):
# add-p113-{paper-init999-data598, paper-init1-data101, paper-init2-data102,
# native-init1-data101}, cut at T_mem + f (T_grok - T_mem) for f = 1/3 and 1/2.
# Pairs in the order native-init1 (1/3, 1/2), paper-init1, paper-init2, paper-init999.
CALIBRATION = Calibration(
    restricted_ratio=(1.644, 1.461, 1.658, 1.540, 1.247, 1.120, 1.293, 1.208),
    critical_norm=(0.328, 0.479, 0.335, 0.473, 0.405, 0.521, 0.410, 0.532),
    source="four p = 113 runs (paper setup), cuts at f = 1/3 and 1/2; docs/forecast.md",
)


class NotYetError(OptionError):
    """The data up to ``upto`` cannot support a forecast yet (the message says why); a later
    ``upto`` may.  ``upto`` (the last checkpoint read) and ``t_mem`` (None before it) say
    where the data ended."""

    def __init__(self, message: str, *, upto: int | None = None, t_mem: int | None = None):
        super().__init__(message)
        self.upto, self.t_mem = upto, t_mem


class NotMemorisedError(NotYetError):
    """The run has not memorised (no T_mem) by ``upto``: there is no plateau to read."""


@dataclass(frozen=True)
class Forecast:
    """A forecast of T_grok (or the observed one, ``status == "already grokked"``, or
    ``status == "not yet"`` with the ``reason`` the data cannot support one)."""

    status: str  # "forecast", "already grokked" or "not yet"
    t_grok: float | None  # the forecast (or the observed T_grok; None when not yet)
    low: float | None  # the interval (None when already grokked or not yet)
    high: float | None
    upto: int
    t_mem: int | None
    plateau_start: int | None = None
    key_freqs: list[int] = field(default_factory=list)
    n_points: int = 0
    restricted: dict = field(default_factory=dict)
    norm: dict = field(default_factory=dict)
    level: float = LEVEL
    reason: str = ""  # why not yet

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    def __str__(self) -> str:
        if self.status == "not yet":
            return f"no forecast yet at epoch {self.upto}: {self.reason}"
        if self.status == "already grokked":
            return f"already grokked: T_grok = {self.t_grok:.0f} (T_mem = {self.t_mem})"
        return (
            f"T_grok forecast {self.t_grok:.0f} ({self.level:.0%} interval "
            f"{self.low:.0f}-{self.high:.0f}) from {self.n_points} plateau checkpoints "
            f"{self.plateau_start}-{self.upto}; T_mem {self.t_mem}; restricted-loss "
            f"estimate {self.restricted.get('estimate', float('nan')):.0f}, weight-norm "
            f"estimate {self.norm.get('estimate', float('nan')):.0f}"
        )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value


# ----------------------------------------------------------------------------- the fits


def _line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y against t."""
    slope, intercept = np.polyfit(t, y, 1)
    return float(slope), float(intercept)


def _estimates(
    t: np.ndarray, restricted: np.ndarray, log_norm: np.ndarray, t_mem: int, peak_log: float
) -> tuple[float, float, dict, dict]:
    """(t_zero, t_norm_fn parts): the restricted-loss zero crossing and the norm line."""
    slope_r, icpt_r = _line(t, restricted)
    slope_n, icpt_n = _line(t, log_norm)
    t_zero = -icpt_r / slope_r if slope_r < 0 else math.inf
    fit_r = {"slope": slope_r, "intercept": icpt_r, "t_zero": t_zero}
    fit_n = {"rate": -slope_n, "intercept": icpt_n, "log_peak": peak_log}
    return t_zero, slope_n, fit_r, fit_n


def _combine(
    t_zero: float, slope_n: float, icpt_n: float, peak_log: float, t_mem: int, r: float, c: float
) -> tuple[float, float]:
    """(T_R, T_N) for one calibration draw."""
    t_r = t_mem + r * (t_zero - t_mem)
    t_n = (peak_log + math.log(c) - icpt_n) / slope_n if slope_n < 0 else math.inf
    return t_r, t_n


def forecast_from_curves(
    epochs: Sequence[int],
    restricted_loss: Sequence[float],
    weight_norm_sq: Sequence[float],
    t_mem: int,
    peak_norm_sq: float,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
    n_boot: int = 500,
    seed: int = 0,
    level: float = LEVEL,
) -> Forecast:
    """The forecast from plateau curves (every epoch given is used).

    epochs (n,): plateau checkpoints (from the end of memorisation to ``upto``);
    restricted_loss, weight_norm_sq (n,): their values; peak_norm_sq: the largest sum of
    squared weights after T_mem.  See the module docstring for the method.

    >>> t = np.arange(1000, 3001, 100)
    >>> f = forecast_from_curves(t, 4 - 4e-4 * t, 3000 * np.exp(-1e-4 * (t - 1000)),
    ...     t_mem=100, peak_norm_sq=3000, n_boot=0,
    ...     calibration=Calibration((1.0,), (math.exp(-0.9),)))
    >>> round(f.restricted["estimate"]), round(f.norm["estimate"]), round(f.t_grok)
    (10000, 10000, 10000)
    """
    t = np.asarray(epochs, dtype=float)
    rl = np.asarray(restricted_loss, dtype=float)
    wn = np.asarray(weight_norm_sq, dtype=float)
    if not (t.shape == rl.shape == wn.shape):
        raise OptionError(
            f"epochs {t.shape}, restricted_loss {rl.shape} and weight_norm_sq {wn.shape} "
            "must have the same shape"
        )
    keep = np.isfinite(rl) & np.isfinite(wn) & (wn > 0)
    t, rl, wn = t[keep], rl[keep], wn[keep]
    if len(t) < MIN_POINTS:
        raise NotYetError(
            f"a forecast needs at least {MIN_POINTS} plateau checkpoints after the end of "
            f"memorisation, found {len(t)}; forecast later (a larger --upto)"
        )
    upto = int(t.max()) if upto is None else int(upto)
    log_wn, peak_log = np.log(wn), math.log(peak_norm_sq)
    t_zero, slope_n, fit_r, fit_n = _estimates(t, rl, log_wn, t_mem, peak_log)
    r0 = float(np.median(calibration.restricted_ratio))
    c0 = float(np.median(calibration.critical_norm))
    t_r, t_n = _combine(t_zero, slope_n, fit_n["intercept"], peak_log, t_mem, r0, c0)
    if not (math.isfinite(t_r) and math.isfinite(t_n)):
        raise NotYetError(
            "no forecast: the restricted loss or the weight norm is not falling over the "
            f"plateau (restricted-loss slope {fit_r['slope']:.3g}/epoch, weight-norm rate "
            f"{-slope_n:.3g}/epoch); the run may not be on its way to grokking"
        )
    point = max(0.5 * (t_r + t_n), upto)
    low = high = None
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(t), len(t))
            if len(np.unique(t[idx])) < 3:
                continue
            tz, sn, _, fn = _estimates(t[idx], rl[idx], log_wn[idx], t_mem, peak_log)
            j = rng.integers(len(calibration.restricted_ratio))  # one calibration cut:
            r, c = calibration.restricted_ratio[j], calibration.critical_norm[j]  # paired
            a, b = _combine(tz, sn, fn["intercept"], peak_log, t_mem, r, c)
            draws.append(max(0.5 * (a + b), upto))
        draws = np.asarray(draws)
        draws = draws[np.isfinite(draws)]
        if len(draws):
            low, high = (float(q) for q in np.quantile(draws, [(1 - level) / 2, (1 + level) / 2]))
            low, high = min(low, point), max(high, point)
    fit_r.update(estimate=t_r, ratio=r0)
    fit_n.update(estimate=t_n, critical=c0)
    return Forecast(
        status="forecast",
        t_grok=float(point),
        low=low,
        high=high,
        upto=upto,
        t_mem=int(t_mem),
        plateau_start=int(t.min()),
        n_points=len(t),
        restricted=fit_r,
        norm=fit_n,
        level=level,
    )


# ----------------------------------------------------------------------------- a run


def _metrics_upto(run: Run, upto: int) -> dict[str, np.ndarray]:
    m = run.metrics
    keep = m["epoch"] <= upto
    return {k: v[keep] for k, v in m.items()}


def _finite(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    return epochs[keep], values[keep]


def _spread(epochs: Sequence[int], n: int) -> list[int]:
    """At most n of the epochs, evenly spread by index, the first and last included."""
    epochs = list(epochs)
    if len(epochs) <= n:
        return epochs
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, n)).astype(int))
    return [epochs[i] for i in idx]


def plateau_curves(run: Run, upto: int | None = None, n_key_freqs: int = N_KEY_FREQS) -> dict:
    """What the forecast reads from a run, from data at epochs <= upto only.

    Returns {"upto", "t_mem", "t_grok" (None unless reached), "plateau_start", "epochs",
    "restricted_loss", "weight_norm_sq", "peak_norm_sq", "key_freqs"}; the curves only
    when T_mem exists and T_grok does not.  Raises :class:`NotMemorisedError` before T_mem.
    """
    from grokinterp.analysis import measure_batched
    from grokinterp.measures import weight_norms_sq

    epochs = run.epochs
    if not epochs:
        raise RunFileError(f"{run.path}: no complete checkpoints yet")
    upto = epochs[-1] if upto is None else int(upto)
    if upto < 0:
        raise OptionError(f"upto must be an epoch >= 0, got {upto}")
    ckpts = [e for e in epochs if e <= upto]
    if not ckpts:
        raise OptionError(f"upto {upto}: no checkpoint at or before it (first: {epochs[0]})")
    upto = ckpts[-1]  # the data end at the last checkpoint <= upto
    m = _metrics_upto(run, upto)
    if not len(m["epoch"]):
        raise RunFileError(f"{run.path / files.METRICS}: no logged epochs <= {upto}")
    mem = t_mem(*_finite(m["epoch"], m["train_acc"]), threshold=ACC).epoch
    grok = t_grok(*_finite(m["epoch"], m["test_acc"]), threshold=ACC).epoch
    out = {"upto": upto, "t_mem": mem, "t_grok": grok}
    if mem is None:
        raise NotMemorisedError(
            f"{run.path.name}: not memorised by epoch {upto} (train accuracy below {ACC} at "
            f"every eval epoch), so there is no plateau to forecast from; try a later --upto",
            upto=upto,
        )
    if grok is not None:
        return out
    test = _finite(m["epoch"], m["test_loss"])
    start = memorisation_end(test, None, mem, upto).epoch
    start = mem if start is None else start
    after = [e for e in ckpts if e >= mem]
    norms = [float(weight_norms_sq(run.state_dict_at(e))["total"]) for e in after]
    plateau = [e for e in after if e >= start]
    points = _spread(plateau, MAX_POINTS)
    rows = measure_batched(run, [upto], measures=["embed_freq_norm"])
    spectrum = rows[rows["key"] != "0"].sort_values("value", ascending=False, kind="stable")
    key_freqs = sorted(int(k) for k in spectrum["key"].head(n_key_freqs))
    rl = (
        measure_batched(run, points, key_freqs=key_freqs, measures=["restricted_loss"])
        if points
        else None
    )
    by_epoch = dict(zip(after, norms, strict=True))
    if rl is not None:
        rl = rl[rl["key"] == "all"].set_index("epoch")["value"]
    out.update(
        plateau_start=start,
        epochs=points,
        restricted_loss=[float(rl[e]) for e in points] if rl is not None else [],
        weight_norm_sq=[by_epoch[e] for e in points],
        peak_norm_sq=max(norms),
        key_freqs=key_freqs,
    )
    return out


def forecast_t_grok(
    run: Run | str | Path,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
    n_boot: int = 500,
    seed: int = 0,
) -> Forecast:
    """Forecast T_grok of a run from its checkpoints and metrics up to ``upto``.

    upto: the last epoch whose data the forecast may read (default: everything on disk).
    Returns a :class:`Forecast`; its ``status`` is ``"already grokked"`` (with the observed
    T_grok) when test accuracy reached 0.99 by ``upto``.  Raises
    :class:`NotMemorisedError` when the run has not memorised (no T_mem) by ``upto``, and
    :class:`~grokinterp.errors.OptionError` when the plateau is too short or not falling.
    """
    run = run if isinstance(run, Run) else load_run(run)
    data = plateau_curves(run, upto)
    if data["t_grok"] is not None:
        return Forecast(
            status="already grokked",
            t_grok=float(data["t_grok"]),
            low=None,
            high=None,
            upto=data["upto"],
            t_mem=data["t_mem"],
        )
    return _forecast_plateau(data, calibration, n_boot, seed)


def forecast_or_not_yet(
    run: Run | str | Path,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
    n_boot: int = 500,
    seed: int = 0,
) -> Forecast:
    """:func:`forecast_t_grok`, with "not yet" as an answer instead of an error.

    When the data up to ``upto`` cannot support a forecast (the run has not memorised, the
    plateau has fewer than :data:`MIN_POINTS` checkpoints, or its curves are not falling)
    this returns a :class:`Forecast` with ``status == "not yet"`` and the ``reason``; bad
    input (a negative ``upto``, a run without checkpoints) still raises.  What
    ``grokinterp watch`` shows while a run trains.
    """
    run = run if isinstance(run, Run) else load_run(run)
    try:
        return forecast_t_grok(run, upto, calibration, n_boot, seed)
    except NotYetError as err:
        return Forecast(
            status="not yet", t_grok=None, low=None, high=None, upto=err.upto,
            t_mem=err.t_mem, reason=str(err),
        )  # fmt: skip


def _forecast_plateau(
    curves: dict, calibration: Calibration, n_boot: int, seed: int = 0
) -> Forecast:
    """:func:`forecast_from_curves` on a :func:`plateau_curves` dict, with its key freqs."""
    try:
        found = forecast_from_curves(
            curves["epochs"],
            curves["restricted_loss"],
            curves["weight_norm_sq"],
            curves["t_mem"],
            curves["peak_norm_sq"],
            upto=curves["upto"],
            calibration=calibration,
            n_boot=n_boot,
            seed=seed,
        )
    except NotYetError as err:  # where the data ended, for forecast_or_not_yet
        err.upto, err.t_mem = curves["upto"], curves["t_mem"]
        raise
    return Forecast(**{**asdict(found), "key_freqs": curves["key_freqs"]})


# ----------------------------------------------------------------------------- evaluation


def _runs_of(source) -> list[Path]:
    from grokinterp.sweep import is_sweep
    from grokinterp.sweep.manifest import read_manifest, run_dir

    if isinstance(source, (str, Path)):
        if is_sweep(source):
            return [run_dir(source, name) for name in read_manifest(source)["runs"]]
        return find_runs(source)
    return [Path(s.path if isinstance(s, Run) else s) for s in source]


def _grokked_cuts(source, fractions: Sequence[float]) -> tuple[list[dict], list[dict]]:
    """Every grokked run of ``source`` cut at T_mem + f (T_grok - T_mem), f in fractions.

    Returns (cuts, skipped).  A cut is {run, path, setting, T_mem, T_grok, fraction, upto,
    curves} (the :func:`plateau_curves` at the cut), or {..., error} when the run cannot be
    read there; ``setting`` is the run's config without its seeds and name.
    """
    bad = [f for f in fractions if not 0 < f < 1]
    if bad:
        raise OptionError(f"fractions must lie in (0, 1), got {bad}")
    cuts, skipped = [], []
    for path in _runs_of(source):
        try:
            run = load_run(path)
            m = run.metrics
            mem = t_mem(*_finite(m["epoch"], m["train_acc"]), threshold=ACC).epoch
            grok = t_grok(*_finite(m["epoch"], m["test_acc"]), threshold=ACC).epoch
        except RunFileError as err:
            skipped.append({"run": path.name, "why": str(err)})
            continue
        if mem is None or grok is None:
            skipped.append({"run": path.name, "why": "did not grok"})
            continue
        setting = {
            k: v
            for k, v in run.config.to_dict().items()
            if k not in ("init_seed", "data_seed", "name")
        }
        for f in fractions:
            cut = int(mem + f * (grok - mem))
            if run.epochs[-1] < cut:
                why = f"checkpoints end at {run.epochs[-1]} < cut {cut}"
                skipped.append({"run": path.name, "fraction": f, "why": why})
                continue
            row = {
                "run": path.name,
                "path": str(path),
                "setting": setting,
                "T_mem": mem,
                "T_grok": grok,
                "fraction": f,
                "upto": cut,
            }
            try:
                row["curves"] = plateau_curves(run, cut)
            except OptionError as err:
                row["error"] = str(err)
            cuts.append(row)
    return cuts, skipped


def calibration_from_curves(curves: dict, actual_t_grok: float) -> tuple[float, float]:
    """The (restricted_ratio, critical_norm) that forecast ``actual_t_grok`` exactly from
    these plateau curves (a :func:`plateau_curves` dict): ``r = (T_grok - T_mem) /
    (t_zero - T_mem)``, and ``c`` = the fitted sum of squared weights at T_grok over its
    peak.  Either is NaN where its curve does not fall."""
    t = np.asarray(curves["epochs"], dtype=float)
    t_zero, slope_n, _, fit_n = _estimates(
        t,
        np.asarray(curves["restricted_loss"], dtype=float),
        np.log(np.asarray(curves["weight_norm_sq"], dtype=float)),
        curves["t_mem"],
        math.log(curves["peak_norm_sq"]),
    )
    mem = curves["t_mem"]
    r = (actual_t_grok - mem) / (t_zero - mem) if math.isfinite(t_zero) else math.nan
    if slope_n >= 0:
        return r, math.nan
    c = math.exp(fit_n["intercept"] + slope_n * actual_t_grok - fit_n["log_peak"])
    return r, c


def _calibration_of(cuts: Sequence[dict], source: str) -> Calibration:
    pairs = []
    for cut in cuts:
        curves = cut.get("curves") or {}
        if len(curves.get("epochs", [])) < MIN_POINTS:
            continue
        r, c = calibration_from_curves(curves, cut["T_grok"])
        if r > 0 and 0 < c < 1:  # NaN fails both
            pairs.append((r, c))
    if not pairs:
        raise OptionError(
            f"no calibration: none of the {len(cuts)} cuts of {source} has a plateau of at "
            f"least {MIN_POINTS} checkpoints on which both curves fall; calibrate on runs "
            "with more checkpoints between T_mem and T_grok"
        )
    return Calibration(
        restricted_ratio=tuple(r for r, _ in pairs),
        critical_norm=tuple(c for _, c in pairs),
        source=source,
    )


def calibrate_forecast(
    source: str | Path | Iterable[str | Path | Run],
    fractions: Sequence[float] = (1 / 3, 1 / 2),
) -> Calibration:
    """The forecast's constants measured on grokked runs (a sweep, a folder of runs or a
    list), each cut at T_mem + f (T_grok - T_mem) for f in ``fractions``: one (r, c) pair
    per cut (:func:`calibration_from_curves`).  Use it for a setup unlike the one
    :data:`CALIBRATION` was measured on (docs/forecast.md)."""
    cuts, _ = _grokked_cuts(source, fractions)
    shown = [f"{f:.3g}" for f in fractions]
    return _calibration_of(
        cuts,
        f"{len({c['run'] for c in cuts})} grokked runs of {_describe(source)}, cuts at f = {shown}",
    )


def _describe(source) -> str:
    """A source as a reader knows it: a sweep by its spec name, a folder by its name."""
    from grokinterp.sweep import is_sweep
    from grokinterp.sweep.manifest import read_manifest

    if isinstance(source, (str, Path)):
        if is_sweep(source):
            return f"sweep {read_manifest(source)['spec'].get('name', Path(source).name)!r}"
        return f"folder {Path(source).name!r}"
    return "the runs given"


LEAVE_OUT = ("run", "setting")


def evaluate_forecast(
    source: str | Path | Iterable[str | Path | Run],
    fractions: Sequence[float] = (1 / 3, 1 / 2),
    calibration: Calibration = CALIBRATION,
    n_boot: int = 500,
    leave_out: str | None = None,
) -> dict:
    """Cut every grokked run at T_mem + f (T_grok - T_mem), forecast, compare.

    source: a sweep folder, a run directory or a folder of runs, or a list of runs.
    leave_out: None forecasts with ``calibration``; ``"run"`` forecasts each run with
    constants calibrated on the other runs' cuts (:func:`calibrate_forecast`), and
    ``"setting"`` with those of the runs of other settings only (configs that differ in
    more than the seeds), the honest test for a setting never seen.
    Runs that did not grok (or cannot be read) are listed under ``skipped``.  Returns
    {"fractions", "calibration", "leave_out", "runs": [{run, T_mem, T_grok, fraction,
    upto, forecast, low, high, rel_error, inside, ...}], "median_rel_error": {f: ...},
    "coverage": {f: ...}, "skipped"}.  ``rel_error`` = |forecast - T_grok| / T_grok.
    """
    if leave_out not in (None, *LEAVE_OUT):
        raise OptionError(f"leave_out must be one of {LEAVE_OUT} or None, got {leave_out!r}")
    cuts, skipped = _grokked_cuts(source, fractions)
    rows = []
    for cut in cuts:
        row = {k: cut[k] for k in ("run", "T_mem", "T_grok", "fraction", "upto")}
        if "error" in cut:
            rows.append({**row, "forecast": None, "error": cut["error"]})
            continue
        curves = cut["curves"]
        try:
            cal = calibration
            if leave_out is not None:
                others = [c for c in cuts if c[leave_out] != cut[leave_out]]
                row["calibrated_on"] = sorted({c["run"] for c in others})
                cal = _calibration_of(others, f"the other {leave_out}s")
            fc = _forecast_plateau(curves, cal, n_boot)
        except OptionError as err:
            rows.append({**row, "forecast": None, "error": str(err)})
            continue
        grok = cut["T_grok"]
        rows.append(
            {
                **row,
                "upto": fc.upto,
                "forecast": fc.t_grok,
                "low": fc.low,
                "high": fc.high,
                "rel_error": abs(fc.t_grok - grok) / grok,
                "inside": fc.low is not None and fc.low <= grok <= fc.high,
                "restricted_estimate": fc.restricted.get("estimate"),
                "norm_estimate": fc.norm.get("estimate"),
                "key_freqs": fc.key_freqs,
                "n_points": fc.n_points,
            }
        )
        log.info(
            "%s f=%.2f: forecast %.0f, T_grok %d", cut["run"], cut["fraction"], fc.t_grok, grok
        )
    median, coverage = {}, {}
    for f in fractions:
        done = [r for r in rows if r["fraction"] == f and r.get("forecast") is not None]
        median[f"{f:.4g}"] = float(np.median([r["rel_error"] for r in done])) if done else None
        coverage[f"{f:.4g}"] = float(np.mean([r["inside"] for r in done])) if done else None
    return _jsonable(
        {
            "fractions": list(fractions),
            "calibration": calibration.to_dict() if leave_out is None else None,
            "leave_out": leave_out,
            "runs": rows,
            "median_rel_error": median,
            "coverage": coverage,
            "skipped": skipped,
        }
    )
