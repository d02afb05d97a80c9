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
   checkpoints and fitted by a straight line over the latest half of the plateau
   (:data:`RECENT`; at least its last :data:`MIN_POINTS` checkpoints); ``t_zero`` is where
   it would reach 0, and ``T_R = T_mem + k_R (t_zero - T_mem)``.
4. Test-loss trend.  The log test loss (metrics.csv) over the same latest half is fitted
   by a straight line; ``t_test`` is where it would reach :data:`TEST_LOSS_LEVEL` (log
   test loss 0, a test loss of 1), and ``T_L = upto + k_L (t_test - upto)``.
5. The constants come from a :class:`Calibration`: grokked runs cut early, each cut
   stored with its raw estimates (``t_zero``, ``t_test``) and its true T_grok.  For each
   estimate, log k = a + b phi, phi = (upto - T_mem) / (raw - T_mem) the share of its own
   estimated delay a cut has seen; b is fitted within runs (how k drifts as one run is cut
   later), a is the median of log k - b phi.  The forecast is the weighted geometric mean
   of T_R and T_L, each weighted by 1 / (its mean squared log error on the calibration
   cuts + the smaller of the two), divided by the combination's median error there.
6. The interval is a prediction interval: each calibration run is forecast with a
   calibration made from the other runs, and the root-mean-square ``s`` of those held-out
   log errors over ``n`` runs gives the forecast times ``exp(+-t s)``, ``t`` the Student-t
   quantile with ``n - 1`` degrees of freedom: widened for the few runs a calibration has.
7. "Not yet" (:class:`NotYetError`): not memorised, fewer than :data:`MIN_POINTS`
   plateau checkpoints, a restricted loss that is not falling, or two estimates that
   each carry at least :data:`MIN_WEIGHT` of the weight and whose delays (T - T_mem)
   differ by more than :data:`DISAGREE` times.  A run whose setup (:data:`SETUP_KEYS`)
   differs from its calibration's runs gets a ``warning``.

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
    "CalibrationCut",
    "Forecast",
    "NotMemorisedError",
    "NotYetError",
    "calibrate_forecast",
    "evaluate_forecast",
    "forecast_from_curves",
    "forecast_or_not_yet",
    "forecast_t_grok",
    "raw_estimates",
]

log = logging.getLogger(__name__)

ACC = ACC_THRESHOLD  # the accuracy of T_mem and T_grok
N_KEY_FREQS = 4  # embedding frequencies the restricted loss keeps
MAX_POINTS = 40  # plateau checkpoints at most whose restricted loss is computed
MIN_POINTS = 5  # plateau checkpoints at least for a forecast (and logged test losses)
RECENT = 0.5  # the latest share of the plateau both trends are fitted on
TEST_LOSS_LEVEL = 0.0  # the log test loss the test-loss trend is extrapolated to
MIN_WEIGHT = 0.1  # an estimate with less weight takes no part in the disagreement rule
DISAGREE = 2.0  # delays (T - T_mem) of two estimates further apart than this: not yet
LEVEL = 0.9  # the interval's coverage
ESTIMATES = ("restricted", "test_loss")  # the estimates, in the order they are combined
_RAW = {"restricted": "t_zero", "test_loss": "t_test"}  # the raw estimate of each
FRACTIONS = (1 / 4, 1 / 3, 1 / 2)  # where calibration and evaluation cut a grokked run
# The config fields that make a setup: a run that differs from its calibration's runs in
# any of them is warned that the constants may not hold (docs/forecast.md).
SETUP_KEYS = (
    "operation", "p", "frac_train", "lr", "weight_decay", "optimizer", "init", "d_model",
    "d_mlp", "n_heads", "loss", "attn_coeff",
)  # fmt: skip


class NotYetError(OptionError):
    """The data up to ``upto`` cannot support a forecast yet (the message says why); a later
    ``upto`` may.  ``upto`` (the last checkpoint read) and ``t_mem`` (None before it) say
    where the data ended."""

    def __init__(self, message: str, *, upto: int | None = None, t_mem: int | None = None):
        super().__init__(message)
        self.upto, self.t_mem = upto, t_mem


class NotMemorisedError(NotYetError):
    """The run has not memorised (no T_mem) by ``upto``: there is no plateau to read."""


# ----------------------------------------------------------------------------- the raw estimates


def _line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y against t."""
    slope, intercept = np.polyfit(t, y, 1)
    return float(slope), float(intercept)


def raw_estimates(
    epochs: Sequence[int],
    restricted_loss: Sequence[float],
    test_epochs: Sequence[int],
    test_loss: Sequence[float],
    upto: int | None = None,
) -> dict:
    """The two trends of the plateau, before any calibration.

    epochs, restricted_loss (n,): plateau checkpoints and their restricted loss;
    test_epochs, test_loss (m,): the logged test loss on the plateau.  Returns
    {"t_zero", "t_test", "restricted": {slope, intercept}, "test_loss": {slope, intercept,
    from}}: ``t_zero`` where the restricted loss's line reaches 0 (inf if it is not
    falling), ``t_test`` where the line through the log test loss of the latest
    :data:`RECENT` of the plateau reaches :data:`TEST_LOSS_LEVEL` (inf if it is not
    falling, NaN with fewer than :data:`MIN_POINTS` logged values; ``upto`` if it is
    already below).

    >>> t = np.arange(1000, 3001, 100)
    >>> est = raw_estimates(t, 4 - 4e-4 * t, t, np.exp(3 - 1e-3 * (t - 1000)))
    >>> round(est["t_zero"]), round(est["t_test"])
    (10000, 4000)
    """
    t = np.asarray(epochs, dtype=float)
    rl = np.asarray(restricted_loss, dtype=float)
    te = np.asarray(test_epochs, dtype=float)
    tl = np.asarray(test_loss, dtype=float)
    if t.shape != rl.shape or te.shape != tl.shape:
        raise OptionError(
            f"epochs {t.shape} and restricted_loss {rl.shape}, test_epochs {te.shape} and "
            f"test_loss {tl.shape}: each pair must have the same shape"
        )
    keep = np.isfinite(rl)
    t, rl = t[keep], rl[keep]
    if len(t) < MIN_POINTS:
        raise NotYetError(
            f"a forecast needs at least {MIN_POINTS} plateau checkpoints after the end of "
            f"memorisation, found {len(t)}; forecast later (a larger --upto)"
        )
    upto = float(t.max()) if upto is None else float(upto)
    since = upto - RECENT * (upto - t.min())  # the latest part of the plateau
    recent = t >= since
    if recent.sum() < MIN_POINTS:  # a short plateau: its last MIN_POINTS checkpoints
        recent = t >= np.sort(t)[-MIN_POINTS]
    slope, icpt = _line(t[recent], rl[recent])
    t_zero = -icpt / slope if slope < 0 else math.inf
    keep = np.isfinite(tl) & (tl > 0)
    te, tl = te[keep], np.log(tl[keep])
    recent_test = te >= since
    test = {"slope": math.nan, "intercept": math.nan, "from": None}
    t_test = math.nan
    if recent_test.sum() >= MIN_POINTS:
        s, i = _line(te[recent_test], tl[recent_test])
        test.update(slope=s, intercept=i, **{"from": int(te[recent_test].min())})
        if s >= 0:
            t_test = math.inf
        else:
            t_test = max((TEST_LOSS_LEVEL - i) / s, upto)
    return {
        "t_zero": t_zero,
        "t_test": t_test,
        "restricted": {"slope": slope, "intercept": icpt, "from": int(t[recent].min())},
        "test_loss": test,
    }


def _anchor(name: str, t_mem: float, upto: float) -> float:
    """Where an estimate's delay is counted from: T_mem for the restricted loss (its zero
    crossing scales the whole delay), ``upto`` for the test loss (the time still to go)."""
    return t_mem if name == "restricted" else upto


def _scaled(name: str, raw: float, t_mem: float, upto: float, k: float) -> float:
    """An estimate of T_grok from a raw estimate: T_mem + k (t_zero - T_mem) for the
    restricted loss, upto + k (t_test - upto) for the test loss; NaN when the raw estimate
    says nothing (not finite, or not after its anchor)."""
    anchor = _anchor(name, t_mem, upto)
    if not math.isfinite(raw) or raw < anchor or (raw == anchor and name == "restricted"):
        return math.nan
    return anchor + k * (raw - anchor)


def _ratio(name: str, raw: float, t_mem: float, upto: float, actual: float) -> float:
    """The k that maps the raw estimate to the actual T_grok (NaN where it cannot)."""
    anchor = _anchor(name, t_mem, upto)
    if not math.isfinite(raw) or raw <= anchor or actual <= anchor:
        return math.nan
    return (actual - anchor) / (raw - anchor)


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationCut:
    """One grokked run cut early: its raw estimates there, and its true T_grok."""

    run: str
    t_mem: int
    upto: int
    t_zero: float  # the restricted loss's zero crossing (inf: not falling)
    t_test: float  # the test loss's crossing of the level (inf: not falling, NaN: unknown)
    t_grok: int

    def raw(self, name: str) -> float:
        return getattr(self, _RAW[name])


@dataclass(frozen=True)
class _Model:
    """What a calibration implies: the constants, the weights and the interval's width.

    The constant of an estimate is read off a line: log k = a + b phi, with phi = (upto -
    T_mem) / (raw - T_mem) the share of its own estimated delay a cut has seen, fitted on
    the calibration cuts and used within the range of phi they span.  So an estimate that
    runs early on an early cut and late on a late one is corrected as the cut moves.
    """

    trend: dict  # {estimate: (a, b, phi_low, phi_high)}
    sq_error: dict  # {estimate: mean squared log error on the calibration cuts}

    @property
    def k(self) -> dict:
        """k of each estimate at the middle of its calibrated range of phi."""
        return {n: self.k_at(n, 0.5 * (lo + hi)) for n, (_, _, lo, hi) in self.trend.items()}

    def k_at(self, name: str, phi: float) -> float:
        a, b, lo, hi = self.trend[name]
        if not math.isfinite(a):
            return math.nan
        return math.exp(a + b * min(max(phi, lo), hi)) if math.isfinite(phi) else math.exp(a)


def _phi(raw: float, t_mem: float, upto: float) -> float:
    """The share of the estimated delay (raw - T_mem) the data up to ``upto`` have seen."""
    return (upto - t_mem) / (raw - t_mem) if math.isfinite(raw) and raw > t_mem else math.nan


def _trend(phis: np.ndarray, logs: np.ndarray, runs: Sequence[str]) -> tuple:
    """(a, b, phi_low, phi_high) of log k = a + b phi.  The slope b comes from the cuts of
    the same run only (each run's cuts centred on their own means), so it measures how k
    drifts as one run is cut later, not how runs with different delays differ; a is then
    the median of log k - b phi.  b = 0 when no run has two cuts."""
    ok = np.isfinite(phis) & np.isfinite(logs)
    phis, logs, runs = phis[ok], logs[ok], np.asarray(runs, dtype=object)[ok]
    if not len(logs):
        return (math.nan, 0.0, 0.0, 1.0)
    dphi, dlog = np.zeros(len(logs)), np.zeros(len(logs))
    for run in set(runs):
        mine = runs == run
        dphi[mine], dlog[mine] = phis[mine] - phis[mine].mean(), logs[mine] - logs[mine].mean()
    spread = float(np.sum(dphi**2))
    slope = float(np.sum(dphi * dlog) / spread) if spread > 1e-12 else 0.0
    return (float(np.median(logs - slope * phis)), slope, float(phis.min()), float(phis.max()))


def _t_quantile(q: float, df: int) -> float:
    """The q quantile of Student's t with df degrees of freedom (numerical, no SciPy).

    >>> round(_t_quantile(0.95, 4), 3), round(_t_quantile(0.975, 10), 3)
    (2.132, 2.228)
    """
    if df < 1 or not 0.5 <= q < 1:
        raise OptionError(f"t quantile: need df >= 1 and 0.5 <= q < 1, got df {df}, q {q}")
    x = np.linspace(0.0, 200.0, 400_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    return float(np.interp(q, cdf, x))


@dataclass(frozen=True)
class Calibration:
    """The forecast's calibration: grokked runs cut early (:class:`CalibrationCut`), from
    which the constants ``k``, the weights and the interval's width follow
    (:meth:`model`).  Written by ``grokinterp forecast SWEEP --calibrate``."""

    cuts: tuple[CalibrationCut, ...]
    source: str = ""
    setting: dict = field(default_factory=dict)  # SETUP_KEYS values all its runs share
    note: str = ""  # what the calibration cannot see (one seed pair for all its runs)

    def __post_init__(self):
        cuts = tuple(c if isinstance(c, CalibrationCut) else CalibrationCut(**c) for c in self.cuts)
        object.__setattr__(self, "cuts", cuts)
        usable = {c.run for c in cuts if math.isfinite(c.t_zero) and c.t_zero > c.t_mem}
        if len(usable) < 2:
            raise OptionError(
                f"Calibration: needs cuts of at least 2 runs whose restricted loss falls, got "
                f"{len(usable)} ({len(cuts)} cuts); calibrate on more grokked runs"
            )

    @property
    def n_runs(self) -> int:
        return len({c.run for c in self.cuts})

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def read(cls, path: str | Path) -> Calibration:
        """A calibration written by ``grokinterp forecast PATH --calibrate`` (JSON)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            cuts = tuple(
                CalibrationCut(
                    run=str(c["run"]),
                    t_mem=int(c["t_mem"]),
                    upto=int(c["upto"]),
                    t_zero=_number(c["t_zero"]),
                    t_test=_number(c["t_test"]),
                    t_grok=int(c["t_grok"]),
                )
                for c in data["cuts"]
            )
        except FileNotFoundError:
            raise OptionError(f"{path}: calibration file not found") from None
        except (ValueError, KeyError, TypeError) as err:
            raise OptionError(
                f"{path}: not a forecast calibration of this version ({type(err).__name__}: "
                f"{err}); write one with 'grokinterp forecast SWEEP --calibrate'"
            ) from None
        return cls(
            cuts=cuts,
            source=str(data.get("source", path)),
            setting=dict(data.get("setting", {})),
            note=str(data.get("note", "")),
        )

    def differs(self, setting: dict) -> dict:
        """{field: (calibration's value, this run's)} for the setup fields that differ."""
        return {
            k: (v, setting[k]) for k, v in self.setting.items() if k in setting and setting[k] != v
        }

    def model(self) -> _Model:
        trend, sq = {}, {}
        runs = [c.run for c in self.cuts]
        for name in ESTIMATES:
            raws = [c.raw(name) for c in self.cuts]
            ratios = np.array(
                [
                    _ratio(name, r, c.t_mem, c.upto, c.t_grok)
                    for r, c in zip(raws, self.cuts, strict=True)
                ]
            )
            phis = np.array(
                [_phi(r, c.t_mem, c.upto) for r, c in zip(raws, self.cuts, strict=True)]
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.where(ratios > 0, np.log(ratios), np.nan)
            trend[name] = _trend(phis, logs, runs)
        model = _Model(trend=trend, sq_error={})
        for name in ESTIMATES:
            errs = _log_errors(self.cuts, name, model)
            errs = errs[np.isfinite(errs)]
            sq[name] = float(np.mean(errs**2)) if len(errs) >= 3 else math.inf
        return _Model(trend=trend, sq_error=sq)


def _estimate(name: str, raw: float, t_mem: float, upto: float, model: _Model) -> float:
    """T_grok from one raw estimate, with the model's k at this cut's phi."""
    return _scaled(name, raw, t_mem, upto, model.k_at(name, _phi(raw, t_mem, upto)))


def _log_errors(cuts: Sequence[CalibrationCut], name: str, model: _Model) -> np.ndarray:
    """log(estimate / T_grok) of one estimate on every cut (NaN where it has none)."""
    return np.array(
        [
            math.log(est / c.t_grok) if math.isfinite(est) and est > 0 else math.nan
            for c in cuts
            for est in [_estimate(name, c.raw(name), c.t_mem, c.upto, model)]
        ]
    )


def _number(value) -> float:
    """A JSON number, where null stands for a value that is not finite (inf or NaN)."""
    return math.inf if value is None else float(value)


def _weights(model: _Model, have: Sequence[str]) -> dict:
    """Weights of the estimates in ``have`` (summing to 1): the inverse of each one's mean
    squared log error on the calibration cuts plus the smallest of them.  The added floor
    keeps two estimates of similar error near equal weight (a handful of calibration runs
    cannot rank them), while one far worse than the other still gets almost none.

    >>> w = _weights(_Model({}, {"restricted": 0.03, "test_loss": 0.02}), ESTIMATES)
    >>> round(w["restricted"], 2), round(w["test_loss"], 2)
    (0.44, 0.56)
    """
    sq = {n: model.sq_error[n] for n in have if math.isfinite(model.sq_error[n])}
    if not sq:  # no estimate has enough calibration cuts to rank it: equal weights
        return {n: 1 / len(have) for n in have}
    floor = min(sq.values())
    if floor == 0:  # perfect on the calibration cuts: those alone, equally
        sq = {n: v for n, v in sq.items() if v == 0}
        return {n: (1 / len(sq) if n in sq else 0.0) for n in have}
    inv = {n: 1 / (v + floor) for n, v in sq.items()}
    total = sum(inv.values())
    return {n: inv.get(n, 0.0) / total for n in have}


def _combined_errors(cuts: Sequence[CalibrationCut], model: _Model, weights: dict) -> np.ndarray:
    """log(combined / T_grok) on the cuts that have every weighted estimate."""
    errs = np.zeros(len(cuts))
    for name, w in weights.items():
        if w > 0:
            errs = errs + w * _log_errors(cuts, name, model)
    return errs[np.isfinite(errs)]


def _combine(
    cal: Calibration, have: Sequence[str], model: _Model | None = None
) -> tuple[_Model, dict, float]:
    """The model, the weights of the estimates in ``have`` and the bias (the median
    log error of their combination on the calibration cuts) of a calibration (whose
    model, when already computed, is ``model``)."""
    model = cal.model() if model is None else model
    have = [n for n in have if math.isfinite(model.sq_error[n])] or ["restricted"]
    weights = _weights(model, have)
    errs = _combined_errors(cal.cuts, model, weights)
    return model, weights, float(np.median(errs)) if len(errs) else 0.0


def _held_out_errors(cal: Calibration, have: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each calibration run's log errors when the forecast is calibrated on the other runs
    alone (leave one run out), and the number of runs that gave them: the prediction
    errors the interval is made from."""
    errs, runs = [], 0
    for run in sorted({c.run for c in cal.cuts}):
        try:
            rest = Calibration(tuple(c for c in cal.cuts if c.run != run))
        except OptionError:  # the others cannot calibrate alone
            continue
        model, weights, bias = _combine(rest, have)
        found = _combined_errors([c for c in cal.cuts if c.run == run], model, weights) - bias
        if len(found):
            errs.extend(found)
            runs += 1
    return np.asarray(errs), runs


# Calibrated on the development runs of the held-out benchmark (docs/forecast.md,
# examples/forecast-heldout-p113.toml: seeds 7101-7104 / 7201-7204) and the default run
# (add-p113-paper-init999-data598): add, p = 113, paper init, lr 1e-3, weight decay 1,
# 30% training data; each cut at T_mem + f (T_grok - T_mem) for f = 1/4, 1/3 and 1/2.
# None of the benchmark's test runs (seeds 7105-7110) took part.
CALIBRATION = Calibration(
    cuts=(
        # run, T_mem, upto (the cut), t_zero, t_test, T_grok
        CalibrationCut("add-p113-paper-init999-data598", 140, 2250, 7221.0, 57789.7, 8640),
        CalibrationCut("add-p113-paper-init999-data598", 140, 2950, 7894.4, 62593.6, 8640),
        CalibrationCut("add-p113-paper-init999-data598", 140, 4350, 7418.8, 51009.9, 8640),
        # init7101-data7201 at f = 1/4 (upto 1,207): one plateau checkpoint, no cut
        CalibrationCut("init7101-data7201", 140, 1550, 2531.2, 17844.7, 4410),
        CalibrationCut("init7101-data7201", 140, 2250, 2867.9, 12483.9, 4410),
        CalibrationCut("init7102-data7202", 140, 2650, 10007.8, 51858.4, 10370),
        CalibrationCut("init7102-data7202", 140, 3550, 8983.5, 50858.6, 10370),
        CalibrationCut("init7102-data7202", 140, 5250, 9558.9, 40263.9, 10370),
        CalibrationCut("init7103-data7203", 140, 2200, 9183.8, 40033.4, 8470),
        CalibrationCut("init7103-data7203", 140, 2900, 10503.7, 38809.5, 8470),
        CalibrationCut("init7103-data7203", 140, 4300, 9174.9, 33319.0, 8470),
        CalibrationCut("init7104-data7204", 140, 2600, 7337.5, 42850.9, 10080),
        CalibrationCut("init7104-data7204", 140, 3450, 7503.0, 42102.9, 10080),
        CalibrationCut("init7104-data7204", 140, 5100, 7568.7, 32539.6, 10080),
    ),
    source="held-out benchmark development runs (p = 113, paper setup), f = 1/4, 1/3, 1/2; "
    "docs/forecast.md",
    setting={
        "operation": "add",
        "p": 113,
        "frac_train": 0.3,
        "lr": 0.001,
        "weight_decay": 1.0,
        "optimizer": "adamw",
        "init": "paper",
        "d_model": 128,
        "d_mlp": 512,
        "n_heads": 4,
        "loss": "softmax",
        "attn_coeff": 1.0,
    },  # fmt: skip
)


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
    restricted: dict = field(default_factory=dict)  # t_zero, fit, k, estimate, weight
    test_loss: dict = field(default_factory=dict)  # t_test, fit, k, estimate, weight
    level: float = LEVEL
    interval: str = ""  # how the interval was made
    reason: str = ""  # why not yet
    warning: str = ""  # the calibration's runs are of another setup

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    def __str__(self) -> str:
        if self.status == "not yet":
            return f"no forecast yet at epoch {self.upto}: {self.reason}"
        if self.status == "already grokked":
            return f"already grokked: T_grok = {self.t_grok:.0f} (T_mem = {self.t_mem})"
        shown = (
            f"{self.level:.0%} interval {self.low:.0f}-{self.high:.0f}"
            if self.low is not None
            else "no interval"
        )
        return (
            f"T_grok forecast {self.t_grok:.0f} ({shown}) from {self.n_points} plateau "
            f"checkpoints {self.plateau_start}-{self.upto}; T_mem {self.t_mem}; "
            f"{self.estimates_text()}; {self.interval}"
            + (f".  Warning: {self.warning}" if self.warning else "")
        )

    def estimates_text(self) -> str:
        """The two estimates and their weights, as a sentence part."""
        parts = []
        for label, est in (("restricted-loss", self.restricted), ("test-loss", self.test_loss)):
            value = est.get("estimate")
            if value is None or not math.isfinite(value):
                parts.append(f"no {label} estimate")
            else:
                parts.append(f"{label} estimate {value:.0f} (weight {est.get('weight', 0):.2f})")
        return ", ".join(parts)


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


def forecast_from_curves(
    epochs: Sequence[int],
    restricted_loss: Sequence[float],
    test_epochs: Sequence[int],
    test_loss: Sequence[float],
    t_mem: int,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
    level: float = LEVEL,
) -> Forecast:
    """The forecast from plateau curves (every value given is used).

    epochs, restricted_loss (n,): plateau checkpoints (from the end of memorisation to
    ``upto``) and their restricted loss; test_epochs, test_loss (m,): the logged test loss
    over the same span.  See the module docstring for the method.  Raises
    :class:`NotYetError` when the curves cannot support a forecast.

    >>> t = np.arange(1000, 3001, 100)
    >>> cal = Calibration([CalibrationCut(r, 100, 3000, 8000.0, 4000.0, 8000 + d)
    ...                    for r, d in (("a", -400), ("b", 0), ("c", 400))])
    >>> f = forecast_from_curves(t, 4 - 4e-4 * t, t, np.exp(3 - 1e-3 * (t - 1000)), t_mem=100,
    ...                          calibration=cal)
    >>> round(f.restricted["estimate"]), round(f.test_loss["estimate"]), round(f.t_grok)
    (10000, 8000, 8944)
    """
    if not 0 < level < 1:
        raise OptionError(f"level must lie in (0, 1), got {level}")
    t = np.asarray(epochs, dtype=float)
    upto = int(t.max()) if upto is None and len(t) else upto
    raw = raw_estimates(epochs, restricted_loss, test_epochs, test_loss, upto)
    upto = int(upto)
    found = {
        "restricted": {"t_zero": raw["t_zero"], **raw["restricted"]},
        "test_loss": {"t_test": raw["t_test"], **raw["test_loss"]},
    }
    model = calibration.model()
    for name in ESTIMATES:
        phi = _phi(raw[_RAW[name]], t_mem, upto)
        est = _estimate(name, raw[_RAW[name]], t_mem, upto, model)
        found[name].update(k=model.k_at(name, phi), phi=phi, estimate=est)
    if not math.isfinite(found["restricted"]["estimate"]):
        raise NotYetError(
            "no forecast: the restricted loss is not falling over the plateau (slope "
            f"{raw['restricted']['slope']:.3g}/epoch); the run may not be on its way to "
            "grokking"
        )
    have = [n for n in ESTIMATES if math.isfinite(found[n]["estimate"])]
    model, weights, bias = _combine(calibration, have, model)
    for name in ESTIMATES:
        found[name]["weight"] = weights.get(name, 0.0)
    strong = [n for n, w in weights.items() if w >= MIN_WEIGHT]
    delays = {n: found[n]["estimate"] - t_mem for n in strong}
    if len(delays) > 1 and max(delays.values()) > DISAGREE * min(delays.values()):
        shown = " and ".join(f"{n.replace('_', '-')} {found[n]['estimate']:.0f}" for n in strong)
        raise NotYetError(
            f"the estimates disagree: {shown} give delays after T_mem more than {DISAGREE:g}x "
            "apart; forecast later, when the plateau has shown more"
        )
    log_point = sum(w * math.log(found[n]["estimate"]) for n, w in weights.items() if w > 0)
    point = max(math.exp(log_point - bias), upto)
    errs, n_runs = _held_out_errors(calibration, list(weights))
    low = high = None
    if n_runs >= 2:
        spread = float(np.sqrt(np.mean(errs**2)))
        half = _t_quantile((1 + level) / 2, n_runs - 1) * spread
        low, high = max(point * math.exp(-half), upto), point * math.exp(half)
        how = (
            f"interval from the errors of {n_runs} calibration runs each forecast with the "
            f"others' calibration ({len(errs)} cuts, log spread {spread:.3f}), widened by "
            f"Student's t for {n_runs} runs"
        )
    else:
        how = "no interval: fewer than 3 calibration runs with these estimates"
    return Forecast(
        status="forecast",
        t_grok=float(point),
        low=low,
        high=high,
        upto=upto,
        t_mem=int(t_mem),
        plateau_start=int(t.min()),
        n_points=int(np.isfinite(np.asarray(restricted_loss, dtype=float)).sum()),
        restricted=found["restricted"],
        test_loss=found["test_loss"],
        level=level,
        interval=how,
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
    "restricted_loss", "test_epochs", "test_loss", "key_freqs"}; the curves only when
    T_mem exists and T_grok does not.  Raises :class:`NotMemorisedError` before T_mem.
    """
    from grokinterp.analysis import measure_batched

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
    if not len(m["epoch"]):  # a run just started: its first checkpoint, no metrics row yet
        raise NotYetError(f"{run.path / files.METRICS}: no logged epochs <= {upto} yet", upto=upto)
    mem = t_mem(*_finite(m["epoch"], m["train_acc"]), threshold=ACC).epoch
    grok = t_grok(*_finite(m["epoch"], m["test_acc"]), threshold=ACC).epoch
    config = run.config.to_dict()
    setting = {k: config[k] for k in SETUP_KEYS if k in config}
    out = {"upto": upto, "t_mem": mem, "t_grok": grok, "setting": setting}
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
    points = _spread([e for e in ckpts if e >= max(start, mem)], MAX_POINTS)
    rows = measure_batched(run, [upto], measures=["embed_freq_norm"])
    spectrum = rows[rows["key"] != "0"].sort_values("value", ascending=False, kind="stable")
    key_freqs = sorted(int(k) for k in spectrum["key"].head(n_key_freqs))
    rl = (
        measure_batched(run, points, key_freqs=key_freqs, measures=["restricted_loss"])
        if points
        else None
    )
    if rl is not None:
        rl = rl[rl["key"] == "all"].set_index("epoch")["value"]
    on_plateau = test[0] >= start
    out.update(
        plateau_start=start,
        epochs=points,
        restricted_loss=[float(rl[e]) for e in points] if rl is not None else [],
        test_epochs=[int(e) for e in test[0][on_plateau]],
        test_loss=[float(v) for v in test[1][on_plateau]],
        key_freqs=key_freqs,
    )
    return out


def forecast_t_grok(
    run: Run | str | Path,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
) -> Forecast:
    """Forecast T_grok of a run from its checkpoints and metrics up to ``upto``.

    upto: the last epoch whose data the forecast may read (default: everything on disk).
    Returns a :class:`Forecast`; its ``status`` is ``"already grokked"`` (with the observed
    T_grok) when test accuracy reached 0.99 by ``upto``.  Raises :class:`NotYetError`
    (:class:`NotMemorisedError` before T_mem) when the data cannot support a forecast yet.
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
    return _forecast_plateau(data, calibration)


def forecast_or_not_yet(
    run: Run | str | Path,
    upto: int | None = None,
    calibration: Calibration = CALIBRATION,
) -> Forecast:
    """:func:`forecast_t_grok`, with "not yet" as an answer instead of an error.

    When the data up to ``upto`` cannot support a forecast (the run has not memorised, the
    plateau has fewer than :data:`MIN_POINTS` checkpoints, its restricted loss is not
    falling, or the estimates disagree by more than :data:`DISAGREE` times) this returns a
    :class:`Forecast` with ``status == "not yet"`` and the ``reason``; bad input (a
    negative ``upto``, a run without checkpoints) still raises.  What ``grokinterp watch``
    shows while a run trains.
    """
    run = run if isinstance(run, Run) else load_run(run)
    try:
        return forecast_t_grok(run, upto, calibration)
    except NotYetError as err:
        return Forecast(
            status="not yet", t_grok=None, low=None, high=None, upto=err.upto,
            t_mem=err.t_mem, reason=str(err),
        )  # fmt: skip


def _forecast_plateau(curves: dict, calibration: Calibration) -> Forecast:
    """:func:`forecast_from_curves` on a :func:`plateau_curves` dict, with its key freqs."""
    try:
        found = forecast_from_curves(
            curves["epochs"],
            curves["restricted_loss"],
            curves["test_epochs"],
            curves["test_loss"],
            curves["t_mem"],
            upto=curves["upto"],
            calibration=calibration,
        )
    except NotYetError as err:  # where the data ended, for forecast_or_not_yet
        err.upto, err.t_mem = curves["upto"], curves["t_mem"]
        raise
    differ = calibration.differs(curves.get("setting", {}))
    warning = ""
    if differ:
        shown = ", ".join(
            f"{k} {mine!r} (calibration: {theirs!r})" for k, (theirs, mine) in differ.items()
        )
        warning = (
            f"this run differs from the calibration's runs in {shown}; the constants may not "
            "hold here (at p = 59 the p = 113 ones err by 18-38%): calibrate on runs of this "
            "setup, 'grokinterp forecast SWEEP --calibrate' (docs/forecast.md)"
        )
    return Forecast(**{**asdict(found), "key_freqs": curves["key_freqs"], "warning": warning})


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
                "seeds": (run.config.init_seed, run.config.data_seed),
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


def _calibration_cut(cut: dict) -> CalibrationCut | None:
    """A :func:`_grokked_cuts` row as a calibration cut (None where it has no plateau)."""
    curves = cut.get("curves") or {}
    if curves.get("t_grok") is not None or len(curves.get("epochs", [])) < MIN_POINTS:
        return None
    try:
        raw = raw_estimates(
            curves["epochs"], curves["restricted_loss"], curves["test_epochs"],
            curves["test_loss"], curves["upto"],
        )  # fmt: skip
    except NotYetError:
        return None
    return CalibrationCut(
        run=cut["run"],
        t_mem=int(curves["t_mem"]),
        upto=int(curves["upto"]),
        t_zero=float(raw["t_zero"]),
        t_test=float(raw["t_test"]),
        t_grok=int(cut["T_grok"]),
    )


def _calibration_of(cuts: Sequence[dict], source: str) -> Calibration:
    found = [c for c in map(_calibration_cut, cuts) if c is not None]
    used = {c.run for c in found}
    settings = [cut["curves"].get("setting", {}) for cut in cuts if cut["run"] in used]
    shared = {
        k: v
        for k, v in (settings[0] if settings else {}).items()
        if all(k in other and other[k] == v for other in settings)
    }
    seeds = {cut.get("seeds") for cut in cuts if cut["run"] in used}
    note = ""
    if len(used) > 1 and len(seeds) == 1 and None not in seeds:
        init, data = seeds.pop()
        note = (
            f"all {len(used)} calibration runs share one init seed ({init}) and one data seed "
            f"({data}): they do not show the seed-to-seed scatter of T_grok, so the interval "
            "will be too narrow for runs with other seeds (on the p = 59 sweep it held 38-42% "
            "of them); calibrate on runs with different seeds (docs/forecast.md)"
        )
        log.warning("calibration: %s", note)
    try:
        return Calibration(cuts=tuple(found), source=source, setting=shared, note=note)
    except OptionError:
        raise OptionError(
            f"no calibration: the {len(cuts)} cuts of {source} give {len(found)} with a plateau "
            f"of at least {MIN_POINTS} checkpoints, from fewer than 2 runs whose restricted "
            "loss falls; calibrate on more runs, or runs with more checkpoints between T_mem "
            "and T_grok"
        ) from None


def calibrate_forecast(
    source: str | Path | Iterable[str | Path | Run],
    fractions: Sequence[float] = FRACTIONS,
) -> Calibration:
    """The forecast's calibration measured on grokked runs (a sweep, a folder of runs or a
    list), each cut at T_mem + f (T_grok - T_mem) for f in ``fractions``: one
    :class:`CalibrationCut` per cut.  Use it for a setup unlike the one
    :data:`CALIBRATION` was measured on (docs/forecast.md)."""
    cuts, _ = _grokked_cuts(source, fractions)
    shown = ", ".join(f"{f:.3g}" for f in fractions)
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
    fractions: Sequence[float] = FRACTIONS,
    calibration: Calibration = CALIBRATION,
    leave_out: str | None = None,
) -> dict:
    """Cut every grokked run at T_mem + f (T_grok - T_mem), forecast, compare.

    source: a sweep folder, a run directory or a folder of runs, or a list of runs.
    leave_out: None forecasts with ``calibration``; ``"run"`` forecasts each run with a
    calibration made on the other runs' cuts (:func:`calibrate_forecast`), and
    ``"setting"`` on those of the runs of other settings only (configs that differ in
    more than the seeds), the honest test for a setting never seen.
    A cut that cannot support a forecast is a row with ``status`` "not yet" and its
    reason; runs that did not grok (or cannot be read) are listed under ``skipped``.
    Returns {"fractions", "calibration", "leave_out", "runs": [{run, T_mem, T_grok,
    fraction, upto, status, forecast, low, high, rel_error, inside, ...}],
    "median_rel_error": {f: ...}, "coverage": {f: ...}, "n_forecast": {f: ...},
    "n_not_yet": {f: ...}, "skipped"}.  ``rel_error`` = |forecast - T_grok| / T_grok;
    the median and the coverage are over the cuts that got a forecast.
    """
    if leave_out not in (None, *LEAVE_OUT):
        raise OptionError(f"leave_out must be one of {LEAVE_OUT} or None, got {leave_out!r}")
    cuts, skipped = _grokked_cuts(source, fractions)
    rows = []
    for cut in cuts:
        row = {k: cut[k] for k in ("run", "T_mem", "T_grok", "fraction", "upto")}
        if "error" in cut:
            rows.append({**row, "status": "not yet", "forecast": None, "error": cut["error"]})
            continue
        try:
            cal = calibration
            if leave_out is not None:
                others = [c for c in cuts if c[leave_out] != cut[leave_out]]
                row["calibrated_on"] = sorted({c["run"] for c in others})
                cal = _calibration_of(others, f"the other {leave_out}s")
            fc = _forecast_plateau(cut["curves"], cal)
        except OptionError as err:
            rows.append({**row, "status": "not yet", "forecast": None, "error": str(err)})
            continue
        grok = cut["T_grok"]
        rows.append(
            {
                **row,
                "status": "forecast",
                "upto": fc.upto,
                "forecast": fc.t_grok,
                "low": fc.low,
                "high": fc.high,
                "rel_error": abs(fc.t_grok - grok) / grok,
                "inside": fc.low is not None and fc.low <= grok <= fc.high,
                "restricted_estimate": fc.restricted.get("estimate"),
                "test_loss_estimate": fc.test_loss.get("estimate"),
                "restricted_weight": fc.restricted.get("weight"),
                "key_freqs": fc.key_freqs,
                "n_points": fc.n_points,
                "warning": fc.warning,
            }
        )
        log.info(
            "%s f=%.2f: forecast %.0f, T_grok %d", cut["run"], cut["fraction"], fc.t_grok, grok
        )
    median, coverage, n_done, n_not = {}, {}, {}, {}
    for f in fractions:
        at = [r for r in rows if r["fraction"] == f]
        done = [r for r in at if r.get("forecast") is not None]
        key = f"{f:.4g}"
        median[key] = float(np.median([r["rel_error"] for r in done])) if done else None
        coverage[key] = float(np.mean([r["inside"] for r in done])) if done else None
        n_done[key], n_not[key] = len(done), len(at) - len(done)
    return _jsonable(
        {
            "fractions": list(fractions),
            "calibration": calibration.to_dict() if leave_out is None else None,
            "leave_out": leave_out,
            "runs": rows,
            "median_rel_error": median,
            "coverage": coverage,
            "n_forecast": n_done,
            "n_not_yet": n_not,
            "skipped": skipped,
        }
    )
