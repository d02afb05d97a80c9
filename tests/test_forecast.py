"""The T_grok forecast: synthetic plateaus with a known answer, the calibration and its
interval, "not yet", the monotone-information property, evaluation, CLI."""

import json
import math

import numpy as np
import pytest

from grokinterp import files
from grokinterp.bench import write_random_run
from grokinterp.cli import main
from grokinterp.errors import OptionError
from grokinterp.figures import write_evaluation
from grokinterp.figures.forecast import forecast_section
from grokinterp.forecast import (
    CALIBRATION,
    DISAGREE,
    Calibration,
    CalibrationCut,
    Forecast,
    NotMemorisedError,
    NotYetError,
    _t_quantile,
    evaluate_forecast,
    forecast_from_curves,
    forecast_or_not_yet,
    forecast_t_grok,
    raw_estimates,
)
from grokinterp.storage import atomic_write_text, format_metric_rows, metrics_header
from tests.conftest import tiny_config

T_MEM, START = 150, 1400  # memorisation, and the end of memorisation (the plateau's start)


def _plateau(t_grok, upto, noise=0.0, seed=0, transient=0.0, test_at=None):
    """Curves with a known answer: the restricted loss falls linearly from 3.5 at START to 0
    at t_grok, and the log test loss linearly from 3 at START to 0 at ``test_at`` (default
    t_grok), so both raw estimates are t_grok (k = 1 for both).  ``transient`` adds an early
    fall to the restricted loss that has died out after a few hundred epochs (the real
    plateau's shape just after memorisation); ``noise`` is Gaussian on both curves."""
    rng = np.random.default_rng(seed)
    test_at = t_grok if test_at is None else test_at
    t = np.arange(START, upto + 1, 50)
    rl = 3.5 * (t_grok - t) / (t_grok - START) + transient * np.exp(-(t - START) / 400)
    rl = rl + noise * rng.standard_normal(len(t))
    te = np.arange(START, upto + 1, 10)
    tl = np.exp(3.0 * (test_at - te) / (test_at - START) + noise * rng.standard_normal(len(te)))
    return t, rl, te, tl


def _cut(run, t_grok, upto, ratio=1.0, **kw):
    """A calibration cut of a synthetic run whose true T_grok is T_MEM + ratio (t_grok - T_MEM)."""
    raw = raw_estimates(*_plateau(t_grok, upto, **kw), upto=upto)
    actual = round(T_MEM + ratio * (t_grok - T_MEM))
    return CalibrationCut(run, T_MEM, upto, raw["t_zero"], raw["t_test"], actual)


def _calibration(t_groks, ratios=None, fractions=(1 / 4, 1 / 3, 1 / 2), **kw):
    ratios = [1.0] * len(t_groks) if ratios is None else ratios
    return Calibration(
        tuple(
            _cut(f"run{i}", g, int(START + f * (g - START)), ratio=r, seed=i, **kw)
            for i, (g, r) in enumerate(zip(t_groks, ratios, strict=True))
            for f in fractions
        )
    )


def test_raw_estimates_of_a_known_plateau():
    t, rl, te, tl = _plateau(9000, 4000)
    raw = raw_estimates(t, rl, te, tl)
    assert raw["t_zero"] == pytest.approx(9000, rel=1e-9)
    assert raw["t_test"] == pytest.approx(9000, rel=1e-9)
    assert raw["test_loss"]["from"] == 2700  # the latest half of the plateau, 1,400-4,000
    # the test loss before that half does not count: a bump there changes nothing
    bumped = np.where(te < 2600, tl * 5.0, tl)
    assert raw_estimates(t, rl, te, bumped)["t_test"] == pytest.approx(9000, rel=1e-9)
    assert raw_estimates(t, rl, te, tl[::-1])["t_test"] == math.inf  # rising: never
    assert math.isnan(raw_estimates(t, rl, te[-3:], tl[-3:])["t_test"])  # too few values
    below = raw_estimates(t, rl, te, tl * math.exp(-3.0))  # already below the level
    assert below["t_test"] == 4000
    assert raw_estimates(t, np.full(len(t), 2.0), te, tl)["t_zero"] == math.inf
    with pytest.raises(OptionError, match="same shape"):
        raw_estimates(t, rl[:-1], te, tl)
    with pytest.raises(NotYetError, match="at least 5 plateau checkpoints"):
        raw_estimates(t[:4], rl[:4], te, tl)


@pytest.mark.parametrize("upto", [3000, 5000])
def test_an_exact_calibration_gives_the_exact_answer(upto):
    cal = _calibration([5000, 8000, 12000])
    assert cal.model().k == pytest.approx({"restricted": 1.0, "test_loss": 1.0}, rel=1e-9)
    found = forecast_from_curves(*_plateau(9000, upto), T_MEM, calibration=cal)
    assert found.status == "forecast" and found.upto == upto and found.t_mem == T_MEM
    assert found.t_grok == pytest.approx(9000, rel=1e-6)
    assert found.restricted["estimate"] == pytest.approx(9000, rel=1e-6)
    assert found.test_loss["estimate"] == pytest.approx(9000, rel=1e-6)
    assert found.low == pytest.approx(9000, rel=1e-6) and found.high == pytest.approx(
        9000, rel=1e-6
    )


def test_the_constants_are_the_median_ratios_of_the_calibration_runs():
    # calibration runs grok at T_mem + 1.2 (t_zero - T_mem): k_R = 1.2, whatever the run
    cal = _calibration([5000, 8000, 12000, 7000], ratios=[1.1, 1.2, 1.2, 1.3])
    assert cal.model().k["restricted"] == pytest.approx(1.2, rel=1e-9)
    found = forecast_from_curves(*_plateau(9000, 4000), T_MEM, calibration=cal)
    assert found.restricted["estimate"] == pytest.approx(T_MEM + 1.2 * (9000 - T_MEM), rel=1e-6)
    assert found.restricted["k"] == pytest.approx(1.2, rel=1e-9)


def test_the_weights_follow_each_estimate_s_error_on_the_calibration():
    # calibration runs whose test loss reaches the level at scattered times: that estimate
    # is poor there, and gets little weight; the restricted loss is exact and gets the rest
    cuts = []
    for i, (g, late) in enumerate([(5000, 0.5), (8000, 2.0), (12000, 1.0), (7000, 3.0)]):
        for f in (1 / 4, 1 / 2):
            upto = int(START + f * (g - START))
            raw = raw_estimates(*_plateau(g, upto, test_at=upto + late * (g - upto)), upto=upto)
            cuts.append(CalibrationCut(f"r{i}", T_MEM, upto, raw["t_zero"], raw["t_test"], g))
    found = forecast_from_curves(*_plateau(9000, 4000), T_MEM, calibration=Calibration(cuts))
    assert found.restricted["weight"] > 0.95 and found.test_loss["weight"] < 0.05
    assert found.t_grok == pytest.approx(9000, rel=0.05)


def test_student_t_quantiles():
    assert _t_quantile(0.95, 1) == pytest.approx(6.314, abs=2e-3)
    assert _t_quantile(0.95, 4) == pytest.approx(2.132, abs=2e-3)
    assert _t_quantile(0.95, 1000) == pytest.approx(1.646, abs=2e-3)  # close to the normal
    with pytest.raises(OptionError, match="df >= 1"):
        _t_quantile(0.95, 0)


def test_the_interval_covers_new_runs_at_its_level():
    # runs whose T_grok scatters around the restricted loss's zero by a log-normal factor
    # (sd 0.15): calibrated on 8 of them, the 90% interval must cover about 90% of 200 new
    # ones, and at least 80%
    rng = np.random.default_rng(5)
    ratios = np.exp(0.15 * rng.standard_normal(208))
    groks = rng.uniform(5000, 12000, 208)
    cal = _calibration(list(groks[:8]), ratios=list(ratios[:8]), test_at=None, noise=0.01)
    inside = []
    for g, r in zip(groks[8:], ratios[8:], strict=True):
        upto = int(START + 0.4 * (g - START))
        found = forecast_from_curves(*_plateau(g, upto, noise=0.01, seed=int(g)), T_MEM,
                                     calibration=cal)  # fmt: skip
        actual = T_MEM + r * (g - T_MEM)
        inside.append(found.low <= actual <= found.high)
    assert 0.8 <= np.mean(inside) <= 0.99


def test_not_yet_when_the_plateau_is_short_flat_or_the_estimates_disagree():
    cal = _calibration([5000, 8000, 12000])
    t, rl, te, tl = _plateau(9000, 4000)
    with pytest.raises(NotYetError, match="at least 5 plateau checkpoints"):
        forecast_from_curves(t[:3], rl[:3], te, tl, T_MEM, calibration=cal)
    with pytest.raises(NotYetError, match="not falling"):
        forecast_from_curves(t, np.full(len(t), 2.0), te, tl, T_MEM, calibration=cal)
    # the test loss says 2.5x later than the restricted loss: beyond DISAGREE, not yet
    late = _plateau(9000, 4000, test_at=T_MEM + 2.5 * (9000 - T_MEM))
    with pytest.raises(NotYetError, match=f"disagree.*more than {DISAGREE:g}x"):
        forecast_from_curves(*late, T_MEM, calibration=cal)
    # 1.5x apart is within the rule: a forecast between the two
    near = _plateau(9000, 4000, test_at=T_MEM + 1.5 * (9000 - T_MEM))
    found = forecast_from_curves(*near, T_MEM, calibration=cal)
    assert 9000 < found.t_grok < T_MEM + 1.5 * (9000 - T_MEM)


def test_the_forecast_does_not_get_worse_as_it_sees_more_of_the_plateau():
    # synthetic runs with the real plateau's features: an early transient in the restricted
    # loss, noise, and a T_grok that scatters around the restricted loss's zero.  Calibrated
    # on 10 runs, the median error on 40 new runs must not grow with the cut.
    rng = np.random.default_rng(11)
    groks = rng.uniform(4000, 12000, 50)
    ratios = np.exp(0.1 * rng.standard_normal(50))
    kw = {"noise": 0.05, "transient": 0.8}
    cal = _calibration(list(groks[:10]), ratios=list(ratios[:10]), **kw)
    errors = {}
    for f in (1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4):
        errs = []
        for i, (g, r) in enumerate(zip(groks[10:], ratios[10:], strict=True)):
            upto = int(START + f * (g - START))
            curves = _plateau(g, upto, seed=100 + i, **kw)
            found = forecast_from_curves(*curves, T_MEM, calibration=cal)
            errs.append(abs(math.log(found.t_grok / (T_MEM + r * (g - T_MEM)))))
        errors[f] = float(np.median(errs))
    cuts = sorted(errors)
    for early, later in zip(cuts, cuts[1:], strict=False):
        assert errors[later] <= errors[early] * 1.1 + 0.005, errors
    assert errors[3 / 4] < errors[1 / 4], errors


def test_the_shipped_calibration_never_saw_a_test_run():
    runs = {c.run for c in CALIBRATION.cuts}
    assert len(runs) == 5 and "add-p113-paper-init999-data598" in runs
    test_seeds = range(7105, 7117)  # the test runs of both batches
    assert not any(f"init{s}" in r for r in runs for s in test_seeds)
    model = CALIBRATION.model()
    assert 1.0 < model.k["restricted"] < 1.5 and 0 < model.k["test_loss"] < 1


def _fake_run(tmp_path, rows):
    """A tiny run with random checkpoints at 0, 20, 40, 60 and the given metrics rows."""
    run = write_random_run(tiny_config(), tmp_path / "run", n_checkpoints=4)
    full = [
        {"lr": 1e-3, "train_loss": 1.0, "test_loss": None, "train_acc": None, "test_acc": None, **r}
        for r in rows
    ]
    atomic_write_text(run.path / files.METRICS, metrics_header() + format_metric_rows(full))
    return run


# metrics of a fake run that memorises at epoch 40 and groks at 60 (checkpoints 0-60 by 20)
MEMORISES_AT_40_GROKS_AT_60 = [
    {"epoch": 0, "test_loss": 2.4, "train_acc": 0.1, "test_acc": 0.1},
    {"epoch": 20, "test_loss": 3.0, "train_acc": 0.5, "test_acc": 0.1},
    {"epoch": 40, "test_loss": 4.0, "train_acc": 1.0, "test_acc": 0.2},
    {"epoch": 60, "test_loss": 0.01, "train_acc": 1.0, "test_acc": 1.0},
]


def test_refuses_before_memorisation_and_reports_already_grokked(tmp_path):
    run = _fake_run(tmp_path, MEMORISES_AT_40_GROKS_AT_60)
    with pytest.raises(NotMemorisedError, match="not memorised by epoch 20"):
        forecast_t_grok(run, upto=20)
    with pytest.raises(NotMemorisedError, match="not memorised by epoch 20"):
        forecast_t_grok(run, upto=39)  # the data end at the last checkpoint <= upto
    done = forecast_t_grok(run)
    assert done.status == "already grokked" and done.t_grok == 60 and done.t_mem == 40
    assert "already grokked: T_grok = 60" in str(done)
    with pytest.raises(OptionError, match="at least 5 plateau checkpoints"):
        forecast_t_grok(run, upto=40)  # memorised, but one plateau checkpoint
    assert main(["forecast", str(run.path), "--upto", "20"]) == 2
    assert main(["forecast", str(run.path)]) == 0


def test_not_yet_is_an_answer_with_its_reason(tmp_path):
    run = _fake_run(tmp_path, MEMORISES_AT_40_GROKS_AT_60)
    early = forecast_or_not_yet(run, upto=39)  # data end at the checkpoint at 20
    assert (early.status, early.t_grok, early.low, early.upto, early.t_mem) == (
        "not yet", None, None, 20, None,
    )  # fmt: skip
    assert "not memorised by epoch 20" in early.reason
    assert str(early).startswith("no forecast yet at epoch 20: ") and early.reason in str(early)
    short = forecast_or_not_yet(run, upto=40)  # memorised at 40, one plateau checkpoint
    assert short.status == "not yet" and short.t_mem == 40
    assert "at least 5 plateau checkpoints" in short.reason
    assert forecast_or_not_yet(run).status == "already grokked"
    with pytest.raises(OptionError, match="upto must be an epoch >= 0"):
        forecast_or_not_yet(run, upto=-1)  # bad input is still an error


def test_the_report_block_says_forecast_interval_or_why_not():
    base = {"upto": 3000, "t_mem": 150, "low": None, "high": None}
    found = Forecast(
        status="forecast", t_grok=8765.4, **{**base, "low": 7000.0, "high": 11234.0},
        plateau_start=1400, n_points=31, restricted={"estimate": 8000.0, "weight": 0.45},
        test_loss={"estimate": 9500.0, "weight": 0.55}, interval="interval from 5 runs",
    )  # fmt: skip
    block = forecast_section(found)
    for text in ("data up to epoch 3,000", "<b>8,765</b>", "90% interval 7,000 to 11,234",
                 "31 plateau checkpoints, epochs 1,400 to 3,000", "8000 (weight 0.45)",
                 "9500 (weight 0.55)", "interval from 5 runs"):  # fmt: skip
        assert text in block, (text, block)
    assert "Warning" not in block
    other = forecast_section(Forecast(**{**found.to_dict(), "warning": "another <setup>"}))
    assert "<b>Warning.</b> another &lt;setup&gt;" in other
    done = forecast_section(Forecast(status="already grokked", t_grok=8640.0, **base))
    assert "Already grokked: T_grok = <b>8,640</b>" in done
    why = "a forecast needs at least 5 plateau checkpoints <after> T_mem"
    not_yet = forecast_section(Forecast(status="not yet", t_grok=None, reason=why, **base))
    assert "Not yet." in not_yet and "&lt;after&gt;" in not_yet and "<after>" not in not_yet


def test_evaluation_skips_runs_it_cannot_cut_and_writes_its_files(tmp_path, capsys):
    _fake_run(
        tmp_path,
        [
            {"epoch": 0, "test_loss": 2.4, "train_acc": 0.1, "test_acc": 0.1},
            {"epoch": 20, "test_loss": 3.0, "train_acc": 1.0, "test_acc": 0.1},
            {"epoch": 60, "test_loss": 0.01, "train_acc": 1.0, "test_acc": 1.0},
        ],
    )
    result = evaluate_forecast(tmp_path, fractions=(0.5,))
    assert result["runs"][0]["status"] == "not yet"  # too few plateau checkpoints: the reason
    assert result["runs"][0]["forecast"] is None
    assert "plateau checkpoints" in result["runs"][0]["error"]
    assert result["median_rel_error"] == {"0.5": None}
    assert result["n_forecast"] == {"0.5": 0} and result["n_not_yet"] == {"0.5": 1}
    written = write_evaluation(result, tmp_path / "out", formats=("html",))
    assert {p.name for p in written} == {"forecast.json", "forecast.html", files.PLOTLY_JS}
    assert json.loads((tmp_path / "out" / "forecast.json").read_text())["fractions"] == [0.5]
    with pytest.raises(OptionError, match="fractions"):
        evaluate_forecast(tmp_path, fractions=(1.5,))
    out = tmp_path / "cli"
    code = main(
        [
            "forecast",
            str(tmp_path),
            "--evaluate",
            "--fractions",
            "0.5",
            "--out",
            str(out),
            "--formats",
            "html",
        ]
    )
    assert code == 0 and (out / "figures" / "forecast.html").is_file()
    assert "median relative error at f = 0.5" in capsys.readouterr().out


def _synthetic_cuts(runs):
    """Evaluation cuts of runs with the known plateau (T_grok 9,000 as curves say), each
    (name, setting, true T_grok)."""
    t, rl, te, tl = _plateau(9000, 4000)
    curves = {
        "upto": 4000, "t_mem": T_MEM, "t_grok": None, "plateau_start": START,
        "epochs": [int(e) for e in t], "restricted_loss": list(rl),
        "test_epochs": [int(e) for e in te], "test_loss": list(tl), "key_freqs": [1, 2, 3, 4],
    }  # fmt: skip
    return [
        {"run": name, "path": name, "setting": {"lr": lr}, "T_mem": T_MEM, "T_grok": grok,
         "fraction": 0.5, "upto": 4000, "curves": curves}
        for name, lr, grok in runs
    ]  # fmt: skip


def test_leave_one_out_calibrates_each_run_on_the_others(monkeypatch):
    import grokinterp.forecast as forecast

    # a, b, c share the plateau and its T_grok; d groks later (its constants differ)
    later = T_MEM + 1.5 * (9000 - T_MEM)
    cuts = _synthetic_cuts(
        [("a", 1e-3, 9000), ("b", 1e-3, 9000), ("c", 2e-3, 9000), ("d", 2e-3, later)]
    )
    monkeypatch.setattr(forecast, "_grokked_cuts", lambda source, fractions: (cuts, []))
    by_run = evaluate_forecast("sweep", fractions=(0.5,), leave_out="run")
    rows = {r["run"]: r for r in by_run["runs"]}
    assert rows["a"]["calibrated_on"] == ["b", "c", "d"]
    assert rows["d"]["calibrated_on"] == ["a", "b", "c"]
    assert rows["d"]["forecast"] == pytest.approx(9000, rel=1e-6)  # d's own never seen
    assert rows["d"]["rel_error"] == pytest.approx((later - 9000) / later, rel=1e-6)
    assert not rows["d"]["inside"]  # a, b and c agree exactly: a narrow interval
    assert by_run["leave_out"] == "run" and by_run["calibration"] is None
    by_setting = evaluate_forecast("sweep", fractions=(0.5,), leave_out="setting")
    rows = {r["run"]: r for r in by_setting["runs"]}
    assert rows["a"]["calibrated_on"] == ["c", "d"] and rows["c"]["calibrated_on"] == ["a", "b"]
    with pytest.raises(OptionError, match="leave_out"):
        evaluate_forecast("sweep", leave_out="seed")
    # calibrating on all four: one cut each, with the raw estimates and the true T_grok
    found = forecast._calibration_of(cuts, "test")
    assert [c.t_grok for c in found.cuts] == [9000, 9000, 9000, round(later)]
    assert all(c.t_zero == pytest.approx(9000, rel=1e-9) for c in found.cuts)


def test_a_calibration_round_trips_through_the_command_line_files(tmp_path, capsys):
    path = tmp_path / "forecast-calibration.json"
    mine = Calibration(_calibration([5000, 8000]).cuts, source="a p = 59 sweep")
    path.write_text(json.dumps(mine.to_dict()))
    assert Calibration.read(path) == mine
    with pytest.raises(OptionError, match="calibration file not found"):
        Calibration.read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"restricted_ratio": [1.0]}')  # an older version's
    with pytest.raises(OptionError, match="not a forecast calibration of this version"):
        Calibration.read(tmp_path / "bad.json")
    with pytest.raises(OptionError, match="at least 2 runs"):
        Calibration(_calibration([5000]).cuts)
    run = _fake_run(
        tmp_path,
        [
            {"epoch": 0, "test_loss": 2.4, "train_acc": 0.1, "test_acc": 0.1},
            {"epoch": 20, "test_loss": 3.0, "train_acc": 1.0, "test_acc": 0.1},
            {"epoch": 60, "test_loss": 0.01, "train_acc": 1.0, "test_acc": 1.0},
        ],
    )
    assert main(["forecast", str(run.path), "--calibration", str(path)]) == 0
    assert main(["forecast", str(run.path), "--calibration", str(tmp_path / "bad.json")]) == 2
    assert "not a forecast calibration" in capsys.readouterr().err
    # the fake run's plateau is one checkpoint long: nothing to calibrate on, said so
    assert main(["forecast", str(tmp_path), "--calibrate", "--fractions", "0.5"]) == 2
    assert "no calibration" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path), "--evaluate", "--calibrate"]) == 2


def test_a_run_of_another_setup_is_warned_that_the_constants_may_not_hold():
    cal = Calibration(_calibration([5000, 8000]).cuts, setting={"p": 113, "lr": 1e-3})
    assert cal.differs({"p": 59, "lr": 1e-3, "weight_decay": 5.0}) == {"p": (113, 59)}
    t, rl, te, tl = _plateau(9000, 4000)
    curves = {
        "upto": 4000, "t_mem": T_MEM, "epochs": list(t), "restricted_loss": list(rl),
        "test_epochs": list(te), "test_loss": list(tl), "key_freqs": [1, 2, 3, 4],
    }  # fmt: skip
    import grokinterp.forecast as forecast

    same = forecast._forecast_plateau({**curves, "setting": {"p": 113, "lr": 1e-3}}, cal)
    assert same.warning == "" and "Warning" not in str(same)
    other = forecast._forecast_plateau({**curves, "setting": {"p": 59, "lr": 1e-3}}, cal)
    assert "p 59 (calibration: 113)" in other.warning and "--calibrate" in other.warning
    assert other.warning in str(other) and other.t_grok == same.t_grok
    # a calibration made on runs shares only the fields all its runs agree on
    cuts = _synthetic_cuts([("a", 1e-3, 9000), ("b", 2e-3, 9000)])
    for cut, lr in zip(cuts, (1e-3, 2e-3), strict=True):
        cut["curves"] = {**cut["curves"], "setting": {"p": 59, "lr": lr}}
    assert forecast._calibration_of(cuts, "test").setting == {"p": 59}
    # runs that share one seed pair cannot show seed-to-seed scatter: the calibration says so
    for cut, seeds in zip(cuts, ((1, 2), (1, 2)), strict=True):
        cut["seeds"] = seeds
    assert (
        "share one init seed (1) and one data seed (2)"
        in forecast._calibration_of(cuts, "test").note
    )
    cuts[1]["seeds"] = (3, 4)
    assert forecast._calibration_of(cuts, "test").note == ""
    assert CALIBRATION.setting["p"] == 113 and CALIBRATION.setting["weight_decay"] == 1.0
