"""Phase rules on synthetic curves with known boundaries."""

import numpy as np
import pytest

from grokinterp.phases import (
    PHASE_NAMES,
    cleanup_end,
    detect_phases,
    first_at_least,
    fit_weight_decay,
    key_freq_births,
    running_median,
    sharp_fall,
)
from grokinterp.schedule import checkpoint_epochs

T = np.arange(0, 25001, 50)  # long enough for cleanup to be seen (T_grok + settle)
MEM_END, CIRCUIT_END, CLEANUP_END, GROK = 1400, 9400, 14000, 11000


def _curves(noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    jitter = np.exp(noise * rng.standard_normal(len(T)))
    train_acc = np.minimum(1.0, T / 300)
    test_acc = 1 / (1 + np.exp(-(T - GROK + 500) / 150))
    train_loss = 4.7 * np.exp(-T / 60) + 1e-7
    # rises to a peak at MEM_END, slowly falls, then drops sharply around the grokking
    test_loss = (1 + 20 * np.exp(-(((T - MEM_END) / 900) ** 2))) * 1 / (
        1 + np.exp((T - GROK + 1500) / 400)
    ) + 1e-6
    test_loss = test_loss * jitter
    excluded = train_loss + 1e-6 + 5 * np.exp(-(((T - CIRCUIT_END) / 3000) ** 2)) * (T > MEM_END)
    excluded = excluded + 1e-5 * np.maximum(0, T - MEM_END)
    excluded = np.where(
        T > CIRCUIT_END, excluded[T == CIRCUIT_END][0] * np.exp(-(T - CIRCUIT_END) / 4000), excluded
    )
    excluded = excluded * jitter
    gini = 0.1 + 0.6 / (1 + np.exp(-(T - 11500) / 500))
    restricted = 4.7 * np.exp(-np.maximum(0, T - 9000) / 700) + 1e-3
    return {
        "train_acc": (T, train_acc),
        "test_acc": (T, test_acc),
        "test_loss": (T, test_loss),
        "excluded_loss": (T, excluded),
        "gini_embed": (T, gini),
        "restricted_loss": (T, restricted * jitter),
    }


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_boundaries_of_synthetic_grokking_curves(noise):
    phases = detect_phases(_curves(noise))
    assert list(phases) == list(PHASE_NAMES)
    assert phases["T_mem"].epoch == 300
    crossing = GROK - 500 + 150 * np.log(99)  # where the test-accuracy sigmoid reaches 0.99
    assert phases["T_grok"].epoch == 50 * np.ceil(crossing / 50)
    assert phases["grokking_ratio"].value == pytest.approx(phases["T_grok"].epoch / 300)
    assert abs(phases["memorisation_end"].epoch - MEM_END) <= 250  # a broad peak
    assert abs(phases["circuit_formation_end"].epoch - CIRCUIT_END) <= 150
    assert 12500 <= phases["cleanup_end"].epoch <= 15500
    assert not phases["cleanup_end"].inputs["at_last_checkpoint"]
    for b in phases.values():
        assert b.rule and isinstance(b.to_dict()["inputs"], dict)


def test_grok_threshold_is_a_flag():
    curves = _curves()
    t95 = detect_phases(curves, acc_threshold=0.95)["T_grok"].epoch
    assert t95 < detect_phases(curves)["T_grok"].epoch


def test_unfinished_run_reports_none_with_reasons():
    curves = {k: (e[:5], v[:5]) for k, (e, v) in _curves().items()}
    phases = detect_phases(curves)
    assert phases["T_grok"].epoch is None and phases["grokking_ratio"].value is None
    assert phases["T_mem"].epoch is None and "not reached" in phases["memorisation_end"].rule
    assert detect_phases({})["cleanup_end"].epoch is None
    # memorised but not grokked: no boundary after T_mem is seen yet (the test loss's peak
    # so far could still be passed), each with its reason
    curves = {k: (e[:100], v[:100]) for k, (e, v) in _curves().items()}
    phases = detect_phases(curves)
    assert phases["T_mem"].epoch == 300 and phases["T_grok"].epoch is None
    for name in ("memorisation_end", "circuit_formation_end", "cleanup_end"):
        assert phases[name].epoch is None and phases[name].inputs["not_seen"], name
    assert "not grokked" in phases["circuit_formation_end"].rule


def test_running_median_ignores_a_single_spike():
    v = np.ones(20)
    v[7] = 100
    assert running_median(v, 5).max() == 1
    assert first_at_least([0, 1, 2], [0.1, 0.995, 0.5], 0.99) == 1


def test_key_freq_births():
    epochs = np.array([0, 10, 20, 30, 40])
    counts = {3: [0, 2, 0, 4, 5], 7: [0, 0, 0, 1, 2], 9: [0, 1, 0, 0, 0], 11: [0] * 5}
    births = key_freq_births(epochs, counts)
    assert births[3] == {"first": 10, "stable": 30}
    assert births[7] == {"first": 30, "stable": 30}
    assert births[9] == {"first": 10, "stable": None}
    assert births[11] == {"first": None, "stable": None}


def test_fit_weight_decay_recovers_the_rate():
    t = np.arange(0, 5000, 50)
    norms = np.where(t < 1000, 500.0, 400.0 * np.exp(-2e-3 * (t - 1000)))
    fit = fit_weight_decay(t, norms, start=1000)
    assert fit.rate == pytest.approx(2e-3)
    assert fit.amplitude == pytest.approx(400.0)
    np.testing.assert_allclose(fit.prediction[t >= 1000], norms[t >= 1000])
    with pytest.raises(ValueError, match="needs >= 2"):
        fit_weight_decay(t, norms, start=10**6)


# ---------------------------------------------------------------- the default schedule
E = np.array(checkpoint_epochs("default", 25000))  # log-spaced to 1,000, then every 50


def _sigmoid(t, centre, width):
    return 1 / (1 + np.exp(-(t - centre) / width))


def _default_schedule_curves(excluded_plateau: bool, seed: int = 0):
    """Curves shaped like a real run, sampled on the default checkpoint schedule.

    log10 test loss peaks at 1,400, falls sharply around 9,000, declines slowly through
    cleanup to 14,000.  The excluded loss rises through circuit formation and either
    peaks at 9,000 or levels off there (noisy, with a late bump around 21,000).
    """
    rng = np.random.default_rng(seed)
    log_test = np.interp(E, [0, 1400, 8000], [0.6, 1.5, 1.4]) - 3.4 * _sigmoid(E, 9000, 250)
    log_test -= 3.0 * np.clip((E - 10000) / 4000, 0, 1)
    rise = -4 + 5.3 * _sigmoid(E, 7500, 700)
    if excluded_plateau:
        log_excluded = rise + 0.04 * rng.standard_normal(len(E))
        log_excluded += 0.2 * ((E >= 20800) & (E <= 21200))  # late noise, above everything
    else:
        log_excluded = np.where(E <= 9000, rise, rise[E == 9000][0] - (E - 9000) / 4000)
    gini = 0.1 + 0.6 * _sigmoid(E, 10500, 600)
    return {
        "train_acc": (E, np.minimum(1.0, E / 200)),
        "test_acc": (E, _sigmoid(E, 8800, 80)),
        "test_loss": (E, 10**log_test),
        "excluded_loss": (E, 10**log_excluded),
        "gini_embed": (E, gini),
        "restricted_loss": (E, 4 * np.exp(-np.maximum(0, E - 7000) / 600) + 1e-3),
    }


def test_sharp_fall_levels_on_uneven_spacing():
    # log10 loss linear from 1 at epoch 300 to -3 at 1,300, then flat: the fall is 10%,
    # 50% and 75% done at epochs 400, 800 and 1,050, whatever the checkpoint spacing
    loss = 10 ** np.interp(E, [0, 300, 1300], [1, 1, -3])
    fall = sharp_fall((E, loss), after=300)
    assert fall["from"] == pytest.approx(1) and fall["to"] == pytest.approx(-3)
    for name, epoch in (("start", 400), ("mid", 800), ("end", 1050)):
        assert fall[name] == E[E >= epoch - 1e-9][0], name  # first checkpoint at the level
    assert sharp_fall((E, np.ones(len(E))), after=300) is None  # no fall, no window


def test_circuit_formation_end_on_the_default_schedule():
    phases = detect_phases(_default_schedule_curves(excluded_plateau=False))
    assert phases["T_mem"].epoch == E[E >= 198][0]
    assert abs(phases["memorisation_end"].epoch - 1400) <= 100
    assert abs(phases["circuit_formation_end"].epoch - 9000) <= 100
    assert 10500 <= phases["cleanup_end"].epoch <= 13500


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_levelling_excluded_loss_keeps_the_boundaries_in_the_fall(seed):
    curves = _default_schedule_curves(excluded_plateau=True, seed=seed)
    circuit = detect_phases(curves)["circuit_formation_end"]
    fall = circuit.inputs["test_loss_fall"]
    # the unbounded maximum is the late noise: the rule the window replaces lands there
    assert 20800 <= circuit.inputs["unbounded_peak_epoch"] <= 21200
    assert 8000 <= circuit.epoch <= fall["end"] <= 12500
    assert circuit.inputs["window_epochs"][1] == fall["end"]
    cleanup = detect_phases(curves)["cleanup_end"]
    assert cleanup.epoch <= 14000 and not cleanup.inputs["at_last_checkpoint"]


# ------------------------------------------------------- seen, whatever the stop
def _cut(curves, epoch):
    return {k: (e[e <= epoch], v[e <= epoch]) for k, (e, v) in curves.items()}


@pytest.mark.parametrize("plateau", [False, True])
def test_a_boundary_is_the_full_runs_or_not_seen_wherever_the_run_stops(plateau):
    curves = _default_schedule_curves(excluded_plateau=plateau)
    full = detect_phases(curves)
    assert all(full[k].epoch is not None for k in PHASE_NAMES if k != "grokking_ratio")
    t_grok = full["T_grok"].epoch
    seen_from = {}
    for stop in E[(E >= t_grok) & (E % 250 == 0)]:
        cut = detect_phases(_cut(curves, stop))
        for name in PHASE_NAMES:
            b = cut[name]
            if b.epoch is None and name != "grokking_ratio":
                assert b.inputs["not_seen"], (stop, name)  # never silently blank
                assert name not in seen_from, f"{name} seen at a stop before {stop}, lost at it"
            else:
                assert b.epoch == full[name].epoch and b.value == full[name].value, (stop, name)
                seen_from.setdefault(name, int(stop))
    # cleanup is seen once the run has passed its end by `settle` (4,500 epochs here)
    settle = full["cleanup_end"].inputs["settle_epochs"]
    assert settle == int(np.ceil(0.5 * (t_grok - full["T_mem"].epoch)))
    assert full["cleanup_end"].epoch + settle <= seen_from["cleanup_end"]
    assert seen_from["cleanup_end"] <= full["cleanup_end"].epoch + settle + 250 + 150


def test_a_run_stopped_1000_epochs_after_t_grok_reports_no_cleanup_end():
    curves = _default_schedule_curves(excluded_plateau=False)
    t_grok = detect_phases(curves)["T_grok"].epoch
    cut = detect_phases(_cut(curves, t_grok + 1000))
    assert cut["cleanup_end"].epoch is None and "not seen" in cut["cleanup_end"].rule
    assert cut["circuit_formation_end"].epoch is None  # its fall is measured to T_grok + settle
    assert cut["cleanup_end"].inputs["not_seen"]
    # the old rule (every value compared with the last checkpoint) moved with the stop
    old_full = cleanup_end(
        *(curves[k] for k in ("gini_embed", "restricted_loss")), after=9000, settle=None
    )
    old_cut = cleanup_end(
        *(_cut(curves, t_grok + 1000)[k] for k in ("gini_embed", "restricted_loss")),
        after=9000,
        settle=None,
    )
    assert old_cut.epoch != old_full.epoch


def test_cleanup_end_compares_each_checkpoint_with_one_settle_later():
    # Gini rises linearly 0 -> 1 over [1000, 3000], then flat; restricted loss flat.
    e = np.arange(0, 8001, 50)
    gini = np.interp(e, [1000, 3000], [0.0, 1.0])
    flat = np.ones(len(e))
    b = cleanup_end((e, gini), (e, flat), after=1000, settle=1000)
    # done at t when gini(t) >= 0.95 gini(t + 1000): t = 2900 (0.95 of 1.0 at 3900)
    assert b.epoch == 2900 and b.inputs["reference_epoch"] == 3900
    # the reference 3900 is judged once its smoothing window (to 4000) stops short of the
    # last checkpoint: a run stopped at 4000 has not seen it, one stopped at 4050 has
    stopped = cleanup_end((e[e <= 4000], gini[e <= 4000]), (e[e <= 4000], flat[e <= 4000]),
                          after=1000, settle=1000)  # fmt: skip
    assert stopped.epoch is None and "not seen" in stopped.rule
    assert cleanup_end((e[e <= 4050], gini[e <= 4050]), (e[e <= 4050], flat[e <= 4050]),
                       after=1000, settle=1000).epoch == 2900  # fmt: skip


def test_no_judged_value_reaches_the_checkpoint_a_stopped_run_adds():
    from grokinterp.phases import _settled_until

    # A stopped run adds a checkpoint at its last epoch, off its schedule (here 1010).
    # The rules judge only checkpoints whose running-median window stops short of it, so
    # their smoothed values are those of a longer run on the same schedule.
    rng = np.random.default_rng(0)
    e = np.arange(0, 2001, 50)
    v = rng.random(len(e))
    stopped_e = np.append(e[e <= 1000], 1010)
    stopped_v = np.append(v[e <= 1000], 99.0)
    last = _settled_until(stopped_e, 5)
    assert last == 900  # 950's window (850 to 1010) holds the added checkpoint
    i = int(np.nonzero(e == last)[0][0])
    longer, stopped = running_median(v, 5), running_median(stopped_v, 5)
    np.testing.assert_array_equal(stopped[: i + 1], longer[: i + 1])
    assert stopped[i + 1] != longer[i + 1]  # the next one would differ


def test_the_summary_text_and_report_say_not_seen():
    from grokinterp.analysis.summary import format_summary
    from grokinterp.figures import phase_table

    curves = _default_schedule_curves(excluded_plateau=False)
    t_grok = detect_phases(curves)["T_grok"].epoch
    phases = detect_phases(_cut(curves, t_grok + 1000))
    summary = {"phases": {k: b.to_dict() for k, b in phases.items()}, "final": {}}
    line = next(x for x in format_summary(summary).splitlines() if "cleanup_end" in x)
    assert "not seen" in line
    rows = phase_table(summary).set_index("boundary")
    assert rows.loc["cleanup_end", "epoch"] == "not seen"
    assert "not seen" in rows.loc["cleanup_end", "rule"]
    assert rows.loc["T_grok", "epoch"] == t_grok
