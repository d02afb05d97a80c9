"""Phase boundaries from the progress-measure curves (docs/phases.md).

Every rule returns a :class:`Boundary`: the epoch (None when the run has not got there),
the rule in words, and the inputs that produced it, so a reader can check it.

- ``T_mem``: first epoch with train accuracy >= ``acc_threshold`` (0.99).
- ``T_grok``: first epoch with test accuracy >= ``acc_threshold``.
- ``grokking_ratio``: T_grok / T_mem (its ``value``; ``epoch`` is None).
- ``memorisation_end``: the peak of the (smoothed, log) test loss between T_mem and T_grok
  (the last checkpoint if the run has not grokked).  The minimum of the excluded loss in
  the same window is reported beside it: in Nanda et al. (2023) the two coincide (~1.4k).
- ``circuit_formation_end``: the peak of the (smoothed, log) excluded loss after
  memorisation_end, searched no later than the end of the test loss's sharp fall
  (:func:`sharp_fall`: 75% of its log fall done; ~9.4k in the paper), so an excluded loss
  that levels off cannot put it on late noise; None while the run has not grokked (no
  T_grok), since the peak cannot be told from a rise yet.
- ``cleanup_end``: the first checkpoint at or after circuit_formation_end where both the
  Gini coefficient of W_E has made ``done`` (95%) of its total rise (from its minimum over
  the run to its final value) and the log restricted loss has made ``done`` of its fall
  from circuit_formation_end to the final checkpoint (~14k in the paper).  When that is
  the last checkpoint, ``inputs['at_last_checkpoint']`` warns the run may not be done.

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
]

ACC_THRESHOLD = 0.99  # the accuracy whose first crossing is T_mem (train) and T_grok (test)

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
) -> dict | None:
    """The test loss's sharp fall after epoch ``after``, by the levels it passes.

    On the smoothed log10 test loss, the fall runs from its value at ``after`` (the end of
    memorisation, where it peaks) to its value at the last checkpoint.  Returns the first
    checkpoints at which the fall is ``levels`` (10%, 50%, 75%) done, as {'start', 'mid',
    'end'}, with the log10 values {'from', 'to'}; None when the loss does not fall.  Levels
    rather than slopes: uneven checkpoint spacing and noise do not move them, and the
    slow decline through cleanup stays past 'end'.
    """
    e, v = _clean(*test_loss)
    keep = e >= after
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
) -> Boundary:
    """Peak of the smoothed log excluded loss, searched no later than the test loss's fall.

    The window runs from ``after`` (the end of memorisation) to the end of the test loss's
    sharp fall (:func:`sharp_fall`: 75% of its log fall done).  Bounding it so keeps an
    excluded loss that levels off, instead of peaking, from putting the boundary (and the
    end of cleanup after it) on late noise.  Without a test loss curve, or if the test
    loss never falls, the window runs to the last checkpoint.
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
    fall = None if test_loss is None else sharp_fall(test_loss, after, window)
    sel = (e > after) & (e <= (np.inf if fall is None else fall["end"]))
    if not sel.any():
        return Boundary(None, rule + "; no checkpoint in the window", {"after": after})
    i = np.nonzero(sel)[0][np.argmax(smooth[sel])]
    later = e > after
    inputs: dict = {
        "after": int(after),
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
) -> Boundary:
    """First checkpoint >= ``after`` where the Gini rise and restricted-loss fall are done."""
    rule = (
        f"first checkpoint at or after circuit_formation_end where the Gini of W_E has "
        f"made {done:.0%} of its rise (run minimum to final) and log10 restricted loss "
        f"{done:.0%} of its fall (circuit_formation_end to final); running median, "
        f"window {window}"
    )
    if after is None:
        return Boundary(None, rule + "; not reached: no circuit_formation_end", {})
    ge, gv = _clean(*gini_embed)
    re_, rv = _clean(*restricted_loss)
    common = np.intersect1d(ge, re_)
    common = common[common >= after]
    if not len(common):
        return Boundary(None, rule + "; no checkpoint after circuit_formation_end", {})
    g = running_median(gv, window)
    r = running_median(_log(rv), window)
    g_lo, g_hi = float(g.min()), float(g[-1])
    g_target = g_lo + done * (g_hi - g_lo)
    r_start = float(np.interp(after, re_, r))
    r_end = float(r[-1])
    r_target = r_start - done * (r_start - r_end)
    g_at = dict(zip(ge.tolist(), g, strict=True))
    r_at = dict(zip(re_.tolist(), r, strict=True))
    ok = [t for t in common if g_at[t] >= g_target - 1e-12 and r_at[t] <= r_target + 1e-12]
    epoch = int(ok[0]) if ok else int(common[-1])
    inputs = {
        "gini_min": g_lo,
        "gini_final": g_hi,
        "gini_target": g_target,
        "log10_restricted_loss_start": r_start,
        "log10_restricted_loss_final": r_end,
        "log10_restricted_loss_target": r_target,
        "at_last_checkpoint": bool(epoch == int(common[-1])),
    }
    return Boundary(epoch, rule, inputs)


def detect_phases(
    curves: dict[str, Curve],
    acc_threshold: float = ACC_THRESHOLD,
    done: float = 0.95,
    window: int = 5,
) -> dict[str, Boundary]:
    """All boundaries (keys :data:`PHASE_NAMES`) from named curves {name: (epochs, values)}.

    Uses train_acc, test_acc, test_loss, excluded_loss (all key frequencies),
    restricted_loss (all pairs) and gini_embed; a missing curve leaves the boundaries
    that need it at None, with the reason in the rule.
    """
    empty = (np.array([], dtype=int), np.array([]))
    mem = t_mem(*curves.get("train_acc", empty), threshold=acc_threshold)
    grok = t_grok(*curves.get("test_acc", empty), threshold=acc_threshold)
    out = {"T_mem": mem, "T_grok": grok, "grokking_ratio": grokking_ratio(mem, grok)}
    test_loss = curves.get("test_loss", empty)
    excluded = curves.get("excluded_loss")
    out["memorisation_end"] = memorisation_end(test_loss, excluded, mem.epoch, grok.epoch, window)
    if excluded is None:
        out["circuit_formation_end"] = Boundary(None, "peak of the excluded loss; not measured")
    elif grok.epoch is None:  # the excluded loss peaks while the test loss falls: not yet
        out["circuit_formation_end"] = Boundary(
            None, "peak of the excluded loss; not reached: the run has not grokked (no T_grok)"
        )
    else:
        out["circuit_formation_end"] = circuit_formation_end(
            excluded, out["memorisation_end"].epoch, test_loss, window
        )
    if "gini_embed" in curves and "restricted_loss" in curves:
        out["cleanup_end"] = cleanup_end(
            curves["gini_embed"],
            curves["restricted_loss"],
            out["circuit_formation_end"].epoch,
            done,
            window,
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
