"""Phase boundaries from the progress-measure curves (docs/phases.md).

Every rule returns a :class:`Boundary`: the epoch (None when the run has not got there),
the rule in words, and the inputs that produced it, so a reader can check it.

- ``T_mem``: first epoch with train accuracy >= ``acc_threshold`` (0.99).
- ``T_grok``: first epoch with test accuracy >= ``acc_threshold``.
- ``grokking_ratio``: T_grok / T_mem (its ``value``; ``epoch`` is None).
- ``memorisation_end``: the peak of the (smoothed, log) test loss between T_mem and T_grok.
  The minimum of the excluded loss in the same window is reported beside it: in Nanda et
  al. (2023) the two coincide (~1.4k).  Not seen (None) while the run has not grokked.
- ``circuit_formation_end``: the peak of the (smoothed, log) excluded loss after
  memorisation_end, searched no later than the end of the test loss's sharp fall
  (:func:`sharp_fall`: 75% of its log fall done; ~9.4k in the paper), so an excluded loss
  that levels off cannot put it on late noise.  It lies inside the sharp fall, within a
  few hundred epochs of T_grok on either side.
- ``cleanup_end``: the first checkpoint t at or after circuit_formation_end where both the
  Gini coefficient of W_E has made ``done`` (95%) of its rise (from its minimum up to t to
  its value ``settle`` epochs after t) and the log restricted loss has made ``done`` of its
  fall from circuit_formation_end to ``settle`` epochs after t (~14k in the paper).

**Seen, whatever the stop.**  Every rule reads the curves only up to a horizon fixed by
the run itself, never by where it stopped: ``settle`` = max(``settle_delays`` (0.5) x
(T_grok - T_mem), ``settle_min`` (500)) epochs.  The sharp fall is measured from
memorisation_end to T_grok + settle; cleanup_end at t compares t with t + settle.  A run
that stops before the horizon a boundary needs (plus the running median's half window,
which must not reach the last checkpoint) reports that boundary as not seen: ``epoch``
None and the reason in ``inputs['not_seen']``.  So a run that stops later, or earlier but
past the horizon, gives the same boundaries; only values read at the last checkpoint
(``final``) move.

Smoothing: a centred running median over ``window`` (5) checkpoints, on log10 of the
losses, so one noisy checkpoint moves no boundary; the accuracy crossings use raw values.

Per key frequency, :func:`key_freq_births` gives the first checkpoint at which it owns
neurons, and the first from which it keeps owning them to the end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "ACC_THRESHOLD",
    "Boundary",
    "WeightDecayFit",
    "circuit_formation_end",
    "cleanup_end",
    "detect_phases",
    "first_at_least",
    "fit_weight_decay",
    "grokking_ratio",
    "key_freq_births",
    "memorisation_end",
    "predicted_sq_norm_rate",
    "running_median",
    "t_grok",
    "t_mem",
    "sharp_fall",
    "settle_epochs",
]

ACC_THRESHOLD = 0.99  # the accuracy whose first crossing is T_mem (train) and T_grok (test)
SETTLE_DELAYS = 0.5  # the horizon `settle`, in grokking delays (T_grok - T_mem) ...
SETTLE_MIN = 500  # ... and at least this many epochs

PHASE_NAMES = (
    "T_mem",
    "T_grok",
    "grokking_ratio",
    "memorisation_end",
    "circuit_formation_end",
    "cleanup_end",
)


@dataclass(frozen=True)
class Boundary:
    """One phase boundary: the epoch, the rule that found it and the values it used."""

    epoch: int | None
    rule: str
    inputs: dict = field(default_factory=dict)
    value: float | None = None  # for ratios

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e, v = np.asarray(epochs), np.asarray(values, dtype=float)
    if e.shape != v.shape:
        raise ValueError(f"epochs {e.shape} and values {v.shape} must have the same shape")
    keep = np.isfinite(v)
    order = np.argsort(e[keep], kind="stable")
    return e[keep][order].astype(int), v[keep][order]


def settle_epochs(
    t_mem: int | None,
    t_grok: int | None,
    settle_delays: float = SETTLE_DELAYS,
    settle_min: int = SETTLE_MIN,
) -> int | None:
    """The horizon ``settle``: max(settle_delays x (T_grok - T_mem), settle_min) epochs.

    >>> settle_epochs(140, 8740)
    4300
    >>> settle_epochs(70, 340)
    500
    """
    if t_grok is None:
        return None
    delay = t_grok - (t_mem or 0)
    return int(max(np.ceil(settle_delays * max(delay, 0)), settle_min))


def _settled_until(epochs: np.ndarray, window: int) -> int | None:
    """The last epoch whose running median has its full window without the last checkpoint
    (which a run stopped after T_grok adds off its schedule), so its smoothed value is the
    same in any longer run of the same schedule; None when the curve is too short."""
    half = max(window, 1) // 2
    return int(epochs[len(epochs) - 2 - half]) if len(epochs) > half + 1 else None


def running_median(values: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred running median over ``window`` points (shrunk at the ends)."""
    v = np.asarray(values, dtype=float)
    half = max(window, 1) // 2
    return np.array([np.median(v[max(0, i - half) : i + half + 1]) for i in range(len(v))])


def _log(values: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(values, 1e-300))


def first_at_least(epochs: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """First epoch whose value is >= threshold, or None."""
    e, v = _clean(epochs, values)
    hit = np.nonzero(v >= threshold)[0]
    return int(e[hit[0]]) if len(hit) else None


def _accuracy_crossing(name: str, epochs: np.ndarray, acc: np.ndarray, threshold: float):
    return Boundary(
        first_at_least(epochs, acc, threshold),
        f"first epoch with {name} >= {threshold:g}",
        {"threshold": threshold, "n_points": int(np.isfinite(acc).sum())},
    )


def t_mem(epochs: np.ndarray, train_acc: np.ndarray, threshold: float = ACC_THRESHOLD) -> Boundary:
    return _accuracy_crossing("train_acc", epochs, train_acc, threshold)


def t_grok(epochs: np.ndarray, test_acc: np.ndarray, threshold: float = ACC_THRESHOLD) -> Boundary:
    return _accuracy_crossing("test_acc", epochs, test_acc, threshold)


def grokking_ratio(mem: Boundary, grok: Boundary) -> Boundary:
    ratio = None
    if mem.epoch and grok.epoch is not None:
        ratio = grok.epoch / mem.epoch
    return Boundary(None, "T_grok / T_mem", {"T_mem": mem.epoch, "T_grok": grok.epoch}, ratio)


Curve = tuple[np.ndarray, np.ndarray]  # (epochs, values)


def memorisation_end(
    test_loss: Curve,
    excluded_loss: Curve | None,
    start: int | None,
    stop: int | None,
    window: int = 5,
) -> Boundary:
    """Peak of the smoothed log test loss over checkpoints in [start, stop]."""
    rule = (
        f"peak of the running-median (window {window}) log10 test loss between T_mem "
        f"and T_grok (or the last checkpoint)"
    )
    if start is None:
        return Boundary(None, rule + "; not reached: no T_mem", {"T_mem": None})
    e, v = _clean(*test_loss)
    smooth = running_median(_log(v), window)
    sel = (e >= start) & (e <= (stop if stop is not None else np.inf))
    if not sel.any():
        return Boundary(None, rule + "; no test loss in the window", {"T_mem": start})
    i = np.nonzero(sel)[0][np.argmax(smooth[sel])]
    inputs = {"window_epochs": [int(start), int(e[sel].max())], "test_loss_at_peak": float(v[i])}
    if excluded_loss is not None:
        ex_e, ex_v = _clean(*excluded_loss)
        ex_sel = (ex_e >= start) & (ex_e <= e[sel].max())
        if ex_sel.any():
            ex_smooth = running_median(_log(ex_v), window)
            j = np.nonzero(ex_sel)[0][np.argmin(ex_smooth[ex_sel])]
            inputs["excluded_loss_min_epoch"] = int(ex_e[j])
            inputs["excluded_loss_at_min"] = float(ex_v[j])
    return Boundary(int(e[i]), rule, inputs)


def sharp_fall(
    test_loss: Curve,
    after: int,
    window: int = 5,
    levels: tuple[float, float, float] = (0.1, 0.5, 0.75),
    until: int | None = None,
) -> dict | None:
    """The test loss's sharp fall after epoch ``after``, by the levels it passes.

    On the smoothed log10 test loss, the fall runs from its value at ``after`` (the end of
    memorisation, where it peaks) to its value at the last checkpoint at or before
    ``until`` (None: the last checkpoint).  Returns the first checkpoints at which the fall
    is ``levels`` (10%, 50%, 75%) done, as {'start', 'mid', 'end'}, with the log10 values
    {'from', 'to'}; None when the loss does not fall.  Levels rather than slopes: uneven
    checkpoint spacing and noise do not move them, and the slow decline through cleanup
    stays past 'end'.
    """
    e, v = _clean(*test_loss)
    keep = (e >= after) & (e <= (np.inf if until is None else until))
    e, smooth = e[keep], running_median(_log(v), window)[keep]
    if len(e) < 2 or smooth[-1] >= smooth[0]:
        return None
    top, bottom = float(smooth[0]), float(smooth[-1])
    out: dict = {"from": top, "to": bottom}
    for name, level in zip(("start", "mid", "end"), levels, strict=True):
        target = top - level * (top - bottom)
        out[name] = int(e[np.argmax(smooth <= target)])
    return out


def circuit_formation_end(
    excluded_loss: Curve,
    after: int | None,
    test_loss: Curve | None = None,
    window: int = 5,
    until: int | None = None,
) -> Boundary:
    """Peak of the smoothed log excluded loss, searched no later than the test loss's fall.

    The window runs from ``after`` (the end of memorisation) to the end of the test loss's
    sharp fall (:func:`sharp_fall`: 75% of its log fall done).  Bounding it so keeps an
    excluded loss that levels off, instead of peaking, from putting the boundary (and the
    end of cleanup after it) on late noise.  Without a test loss curve, or if the test
    loss never falls, the window runs to the last checkpoint.  ``until``: the epoch the
    fall is measured to (:func:`sharp_fall`); :func:`detect_phases` passes T_grok + settle.
    """
    rule = (
        f"peak of the running-median (window {window}) log10 excluded loss after "
        f"memorisation_end and no later than the end of the test loss's sharp fall (75% "
        f"of its log10 fall from memorisation_end to the last checkpoint done)"
    )
    if after is None:
        return Boundary(None, rule + "; not reached: no memorisation_end", {})
    e, v = _clean(*excluded_loss)
    smooth = running_median(_log(v), window)
    fall = None if test_loss is None else sharp_fall(test_loss, after, window, until=until)
    sel = (e > after) & (e <= (np.inf if fall is None else fall["end"]))
    if not sel.any():
        return Boundary(None, rule + "; no checkpoint in the window", {"after": after})
    i = np.nonzero(sel)[0][np.argmax(smooth[sel])]
    later = e > after
    inputs: dict = {
        "after": int(after),
        "fall_measured_until": until,
        "test_loss_fall": fall,
        "window_epochs": [int(e[sel].min()), int(e[sel].max())],
        "excluded_loss_at_peak": float(v[i]),
        "at_window_end": bool(e[i] == e[sel].max()),
        "at_last_checkpoint": bool(e[i] == e.max()),
        "unbounded_peak_epoch": int(e[later][np.argmax(smooth[later])]),
    }
    if test_loss is not None:
        te, tv = _clean(*test_loss)
        if len(te):
            inputs["test_loss_there"] = float(np.interp(e[i], te, tv))
    return Boundary(int(e[i]), rule, inputs)


def cleanup_end(
    gini_embed: Curve,
    restricted_loss: Curve,
    after: int | None,
    done: float = 0.95,
    window: int = 5,
    settle: int | None = None,
) -> Boundary:
    """First checkpoint t >= ``after`` where the Gini rise and restricted-loss fall are done.

    Done at t: the smoothed Gini of W_E has made ``done`` of its rise from its minimum (over
    checkpoints up to t) to its value ``settle`` epochs after t, and the smoothed log10
    restricted loss ``done`` of its fall from ``after`` to ``settle`` epochs after t (the
    last checkpoint at or before t + settle, at least one checkpoint after t).  Only
    checkpoints whose t + settle the run has passed, with a full smoothing window, are
    judged, so the answer does not depend on where the run stopped; if none is done, the
    cleanup is not seen (``epoch`` None, ``inputs['not_seen']`` says why).  ``settle``
    None: compare with the last checkpoint (the rule before runs could stop early).
    """
    rule = (
        f"first checkpoint t at or after circuit_formation_end where the Gini of W_E has "
        f"made {done:.0%} of its rise (minimum up to t to its value settle epochs after t) "
        f"and log10 restricted loss {done:.0%} of its fall (circuit_formation_end to settle "
        f"epochs after t); running median, window {window}; settle = {settle}"
    )
    if after is None:
        return Boundary(
            None,
            rule + "; not seen: no circuit_formation_end",
            {"not_seen": "no circuit_formation_end"},
        )
    ge, gv = _clean(*gini_embed)
    re_, rv = _clean(*restricted_loss)
    common = np.intersect1d(ge, re_)
    if not len(common):
        return Boundary(None, rule + "; no checkpoint", {"not_seen": "no Gini or restricted loss"})
    g = running_median(gv, window)
    r = running_median(_log(rv), window)
    g_at = dict(zip(ge.tolist(), g, strict=True))
    r_at = dict(zip(re_.tolist(), r, strict=True))
    r_start = float(np.interp(after, re_, r))
    if settle is None:  # the last checkpoint is the reference for every t
        last_ok = int(common[-1])
    else:
        last_ok = min(_settled_until(ge, window) or -1, _settled_until(re_, window) or -1)
    judged = common[(common >= after) & (common <= last_ok)]
    found = None
    for t in judged:
        ref = int(common[-1]) if settle is None else int(common[common <= t + settle][-1])
        if settle is not None and (ref <= t or ref > last_ok):
            continue
        g_lo = float(min(g_at[x] for x in ge[ge <= t].tolist()))
        g_target = g_lo + done * (g_at[ref] - g_lo)
        r_target = r_start - done * (r_start - r_at[ref])
        if g_at[t] >= g_target - 1e-12 and r_at[t] <= r_target + 1e-12:
            found = (int(t), ref, g_lo, g_target, r_target)
            break
    inputs: dict = {
        "settle_epochs": settle,
        "judged_until": int(last_ok),
        "log10_restricted_loss_start": r_start,
    }
    if found is None:
        if settle is None and len(judged):  # the old rule: the last checkpoint
            t = int(judged[-1])
            inputs["at_last_checkpoint"] = True
            return Boundary(t, rule, inputs)
        reason = (
            f"no checkpoint from circuit_formation_end ({after}) to {last_ok} has made "
            f"{done:.0%} of the change it makes in the next {settle} epochs; the run "
            f"ended at {int(common[-1])}, before its cleanup was seen to end"
        )
        inputs["not_seen"] = reason
        return Boundary(None, rule + "; not seen: " + reason, inputs)
    t, ref, g_lo, g_target, r_target = found
    inputs.update(
        {
            "reference_epoch": ref,
            "gini_min": g_lo,
            "gini_at_reference": float(g_at[ref]),
            "gini_target": g_target,
            "log10_restricted_loss_at_reference": float(r_at[ref]),
            "log10_restricted_loss_target": r_target,
            "at_last_checkpoint": bool(t == int(common[-1])),
        }
    )
    return Boundary(t, rule, inputs)


def _not_seen(rule: str, reason: str, **inputs) -> Boundary:
    return Boundary(None, f"{rule}; not seen: {reason}", {"not_seen": reason, **inputs})


def detect_phases(
    curves: dict[str, Curve],
    acc_threshold: float = ACC_THRESHOLD,
    done: float = 0.95,
    window: int = 5,
    settle_delays: float = SETTLE_DELAYS,
    settle_min: int = SETTLE_MIN,
) -> dict[str, Boundary]:
    """All boundaries (keys :data:`PHASE_NAMES`) from named curves {name: (epochs, values)}.

    Uses train_acc, test_acc, test_loss, excluded_loss (all key frequencies),
    restricted_loss (all pairs) and gini_embed; a missing curve leaves the boundaries
    that need it at None, with the reason in the rule.  A boundary the run has not got
    far enough to see is None with ``inputs['not_seen']`` (module docstring: "Seen,
    whatever the stop").
    """
    empty = (np.array([], dtype=int), np.array([]))
    mem = t_mem(*curves.get("train_acc", empty), threshold=acc_threshold)
    grok = t_grok(*curves.get("test_acc", empty), threshold=acc_threshold)
    out = {"T_mem": mem, "T_grok": grok, "grokking_ratio": grokking_ratio(mem, grok)}
    test_loss = curves.get("test_loss", empty)
    excluded = curves.get("excluded_loss")
    settle = settle_epochs(mem.epoch, grok.epoch, settle_delays, settle_min)
    test_settled = _settled_until(_clean(*test_loss)[0], window)
    if mem.epoch is not None and grok.epoch is None:
        out["memorisation_end"] = _not_seen(
            "peak of the log10 test loss between T_mem and T_grok",
            "the run has not grokked (no T_grok), so the peak cannot be told from a rise",
        )
    elif grok.epoch is not None and (test_settled is None or grok.epoch > test_settled):
        out["memorisation_end"] = _not_seen(
            "peak of the log10 test loss between T_mem and T_grok",
            f"the run ended within {window // 2} checkpoints of T_grok",
        )
    else:
        out["memorisation_end"] = memorisation_end(
            test_loss, excluded, mem.epoch, grok.epoch, window
        )
    circuit_rule = "peak of the excluded loss"
    if excluded is None:
        out["circuit_formation_end"] = Boundary(None, f"{circuit_rule}; not measured")
    elif grok.epoch is None:  # the excluded loss peaks while the test loss falls: not yet
        out["circuit_formation_end"] = _not_seen(
            circuit_rule, "the run has not grokked (no T_grok)"
        )
    elif out["memorisation_end"].epoch is None:
        out["circuit_formation_end"] = _not_seen(circuit_rule, "no memorisation_end")
    elif test_settled is None or grok.epoch + settle > test_settled:
        out["circuit_formation_end"] = _not_seen(
            circuit_rule,
            f"the test loss's fall is measured to T_grok + settle = {grok.epoch + settle} "
            f"(settle {settle} epochs), and the run's last checkpoint with a full smoothing "
            f"window is {test_settled}",
            settle_epochs=settle,
        )
    else:
        out["circuit_formation_end"] = circuit_formation_end(
            excluded, out["memorisation_end"].epoch, test_loss, window, until=grok.epoch + settle
        )
        out["circuit_formation_end"].inputs["settle_epochs"] = settle
    if "gini_embed" in curves and "restricted_loss" in curves:
        out["cleanup_end"] = cleanup_end(
            curves["gini_embed"],
            curves["restricted_loss"],
            out["circuit_formation_end"].epoch,
            done,
            window,
            settle=settle if settle is not None else settle_min,
        )
    else:
        out["cleanup_end"] = Boundary(None, "Gini and restricted loss flattened; not measured")
    return out


def key_freq_births(epochs: np.ndarray, counts: dict[int, np.ndarray]) -> dict[int, dict]:
    """Per frequency: first checkpoint owning >= 1 neuron, and first from which it always does.

    counts: {k: neurons owned by k at each of ``epochs``}.  Returns
    {k: {'first': epoch or None, 'stable': epoch or None}}.
    """
    out = {}
    order = np.argsort(np.asarray(epochs), kind="stable")
    e = np.asarray(epochs)[order]
    for k, c in counts.items():
        owns = np.asarray(c, dtype=float)[order] > 0
        first = int(e[np.argmax(owns)]) if owns.any() else None
        stable = None
        if owns.any() and owns[-1]:
            lost = np.nonzero(~owns)[0]
            stable = int(e[lost[-1] + 1]) if len(lost) else int(e[0])
        out[int(k)] = {"first": first, "stable": stable}
    return out


@dataclass(frozen=True)
class WeightDecayFit:
    """``norms ~ amplitude * exp(-rate * (t - start))`` for t >= start."""

    rate: float
    amplitude: float
    start: int
    epochs: np.ndarray
    prediction: np.ndarray


def predicted_sq_norm_rate(lr: float, weight_decay: float) -> float:
    """Decay rate per epoch of the sum of squared weights under pure weight decay.

    Theory (docs/phases.md, "Weight norm"): once the training
    loss is tiny, AdamW's decoupled decay ``theta <- theta - lr * wd * theta`` is taken to
    dominate the update, so the weights shrink as ``exp(-lr * wd * t)`` and their sum of
    squares as ``exp(-2 * lr * wd * t)``.  The loss gradient pushes back, so a measured
    rate below this bound shows how much the loss still resists the decay.

    >>> predicted_sq_norm_rate(1e-3, 1.0)
    0.002
    """
    return 2.0 * lr * weight_decay


def fit_weight_decay(epochs: np.ndarray, norms: np.ndarray, start: int) -> WeightDecayFit:
    """Least-squares fit of log(norms) against t over the checkpoints with t >= start.

    For figures: under pure decoupled weight decay the L2 norm decays at rate lr * wd per
    epoch and the sum of squares at 2 lr wd (:func:`predicted_sq_norm_rate`).
    ``prediction`` is the fitted curve at ``epochs`` (all of them).
    """
    e = np.asarray(epochs, dtype=float)
    v = np.asarray(norms, dtype=float)
    keep = (e >= start) & np.isfinite(v) & (v > 0)
    if keep.sum() < 2:
        raise ValueError(
            f"fit_weight_decay needs >= 2 positive norms at epochs >= {start}, "
            f"found {int(keep.sum())}"
        )
    slope, intercept = np.polyfit(e[keep] - start, np.log(v[keep]), 1)
    amplitude = float(np.exp(intercept))
    return WeightDecayFit(
        rate=float(-slope),
        amplitude=amplitude,
        start=int(start),
        epochs=np.asarray(epochs),
        prediction=amplitude * np.exp(slope * (e - start)),
    )
