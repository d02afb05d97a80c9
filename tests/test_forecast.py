"""The T_grok forecast: synthetic plateaus with a known answer, refusals, evaluation, CLI."""

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
    Calibration,
    Forecast,
    NotMemorisedError,
    NotYetError,
    calibration_from_curves,
    evaluate_forecast,
    forecast_from_curves,
    forecast_or_not_yet,
    forecast_t_grok,
)
from grokinterp.storage import atomic_write_text, format_metric_rows, metrics_header
from tests.conftest import tiny_config

T_MEM, T_GROK, PEAK, RATE = 150, 9000, 3600.0, 6e-5


def _plateau(upto: int, noise: float = 0.0, seed: int = 0):
    """Curves with a known T_grok: the restricted loss falls linearly to 0 at T_GROK
    (ratio 1), the sum of squared weights decays as PEAK exp(-RATE (t - 1400))."""
    rng = np.random.default_rng(seed)
    t = np.arange(1400, upto + 1, 50)
    rl = 3.5 * (T_GROK - t) / (T_GROK - 1400) + noise * rng.standard_normal(len(t))
    wn = PEAK * np.exp(-RATE * (t - 1400)) * np.exp(noise * 0.01 * rng.standard_normal(len(t)))
    critical = math.exp(-RATE * (T_GROK - 1400))  # the norm at T_grok over its peak
    return t, rl, wn, Calibration((0.9, 1.0, 1.1), (critical * 0.95, critical, critical * 1.05))


@pytest.mark.parametrize("upto", [3000, 4500])
def test_known_exponential_plateau_gives_t_grok_inside_the_interval(upto):
    t, rl, wn, cal = _plateau(upto, noise=0.02)
    found = forecast_from_curves(t, rl, wn, T_MEM, PEAK, calibration=cal, n_boot=300)
    assert found.status == "forecast" and found.upto == upto
    assert found.t_grok == pytest.approx(T_GROK, rel=0.02)
    assert found.low < T_GROK < found.high
    assert found.low < found.t_grok < found.high
    assert found.restricted["estimate"] == pytest.approx(T_GROK, rel=0.02)
    assert found.norm["estimate"] == pytest.approx(T_GROK, rel=0.02)
    assert found.norm["rate"] == pytest.approx(RATE, rel=0.05)
    # exact curves and a one-value calibration: exact answer
    t, rl, wn, cal = _plateau(upto)
    exact = Calibration((1.0,), (cal.critical_norm[1],))
    found = forecast_from_curves(t, rl, wn, T_MEM, PEAK, calibration=exact, n_boot=50)
    assert found.t_grok == pytest.approx(T_GROK, rel=1e-9)
    assert found.low == pytest.approx(T_GROK, rel=1e-9)


def test_the_calibration_moves_the_forecast():
    t, rl, wn, cal = _plateau(3000)
    late = Calibration((1.2,), (cal.critical_norm[1],))
    found = forecast_from_curves(t, rl, wn, T_MEM, PEAK, calibration=late, n_boot=0)
    assert found.restricted["estimate"] == pytest.approx(T_MEM + 1.2 * (T_GROK - T_MEM))
    assert found.low is None and found.high is None


def test_flat_or_short_plateaus_are_refused():
    t, rl, wn, cal = _plateau(3000)
    with pytest.raises(OptionError, match="not falling"):
        forecast_from_curves(t, np.full(len(t), 2.0) + 1e-6 * t, wn, T_MEM, PEAK, calibration=cal)
    with pytest.raises(OptionError, match="at least 5 plateau checkpoints"):
        forecast_from_curves(t[:3], rl[:3], wn[:3], T_MEM, PEAK, calibration=cal)
    with pytest.raises(OptionError, match="same shape"):
        forecast_from_curves(t, rl[:-1], wn, T_MEM, PEAK, calibration=cal)


def test_calibration_is_documented_and_sane():
    assert CALIBRATION.restricted_ratio and CALIBRATION.critical_norm
    assert all(r > 0.5 for r in CALIBRATION.restricted_ratio)
    assert all(0 < c < 1 for c in CALIBRATION.critical_norm)


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
    # a flat plateau is "not yet" too, and the errors forecast_t_grok raises say so
    t, rl, wn, cal = _plateau(3000)
    with pytest.raises(NotYetError, match="not falling"):
        forecast_from_curves(t, np.full(len(t), 2.0), wn, T_MEM, PEAK, calibration=cal)


def test_the_report_block_says_forecast_interval_or_why_not():
    base = {"upto": 3000, "t_mem": 150, "low": None, "high": None}
    found = Forecast(
        status="forecast", t_grok=8765.4, **{**base, "low": 7000.0, "high": 11234.0},
        plateau_start=1400, n_points=31, restricted={"estimate": 8000.0},
        norm={"estimate": 9500.0},
    )  # fmt: skip
    block = forecast_section(found)
    for text in ("data up to epoch 3,000", "<b>8,765</b>", "90% interval 7,000 to 11,234",
                 "31 plateau checkpoints, epochs 1,400 to 3,000", "8,000", "9,500"):  # fmt: skip
        assert text in block, (text, block)
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
    result = evaluate_forecast(tmp_path, fractions=(0.5,), n_boot=10)
    assert result["runs"][0]["forecast"] is None  # too few plateau checkpoints: the reason
    assert "plateau checkpoints" in result["runs"][0]["error"]
    assert result["median_rel_error"] == {"0.5": None}
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


def test_calibration_values_are_checked():
    with pytest.raises(OptionError, match="paired"):
        Calibration((1.2, 1.3), (0.4,))
    with pytest.raises(OptionError, match="critical_norm in"):
        Calibration((1.2,), (1.4,))


def test_the_forecast_is_the_mean_of_the_two_estimates():
    t, rl, wn, cal = _plateau(3000)
    # ratio 1.25 puts the restricted-loss estimate at T_mem + 1.25 (T_GROK - T_mem)
    split = Calibration((1.25,), (cal.critical_norm[1],))
    found = forecast_from_curves(t, rl, wn, T_MEM, PEAK, calibration=split, n_boot=0)
    t_r = T_MEM + 1.25 * (T_GROK - T_MEM)
    assert found.restricted["estimate"] == pytest.approx(t_r)
    assert found.norm["estimate"] == pytest.approx(T_GROK)
    assert found.t_grok == pytest.approx((t_r + T_GROK) / 2)


def test_the_interval_carries_the_spread_of_the_calibration():
    t, rl, wn, cal = _plateau(3000)  # noise-free: the spread comes from the calibration only
    c = cal.critical_norm[1]
    # paired cuts: each pair moves both estimates the same way (as on real runs)
    paired = Calibration((0.9, 1.0, 1.1), (1.05 * c, c, 0.95 * c))
    found = forecast_from_curves(t, rl, wn, T_MEM, PEAK, calibration=paired, n_boot=200)
    assert found.t_grok == pytest.approx(T_GROK, rel=1e-9)
    earliest = (T_MEM + 0.9 * (T_GROK - T_MEM) + T_GROK - math.log(1.05) / RATE) / 2
    assert found.low == pytest.approx(earliest, rel=1e-6)  # the 5th percentile: pair 0
    assert found.high > 1.05 * T_GROK


def test_calibration_from_curves_recovers_the_constants_of_a_known_plateau():
    t, rl, wn, cal = _plateau(4000)
    curves = {
        "epochs": t,
        "restricted_loss": rl,
        "weight_norm_sq": wn,
        "t_mem": T_MEM,
        "peak_norm_sq": PEAK,
    }
    r, c = calibration_from_curves(curves, T_GROK)
    assert r == pytest.approx(1.0, rel=1e-9)  # the restricted loss reaches 0 at T_GROK
    assert c == pytest.approx(cal.critical_norm[1], rel=1e-9)
    r_late, _ = calibration_from_curves(curves, T_MEM + 1.5 * (T_GROK - T_MEM))
    assert r_late == pytest.approx(1.5, rel=1e-9)
    rising = {**curves, "restricted_loss": rl[::-1], "weight_norm_sq": wn[::-1]}
    assert all(math.isnan(v) for v in calibration_from_curves(rising, T_GROK))


def _synthetic_cuts(runs):
    """Cuts of runs with the known plateau, each (name, setting, T_grok label)."""
    t, rl, wn, _ = _plateau(4000)
    curves = {
        "upto": 4000,
        "t_mem": T_MEM,
        "t_grok": None,
        "epochs": [int(e) for e in t],
        "restricted_loss": list(rl),
        "weight_norm_sq": list(wn),
        "peak_norm_sq": PEAK,
        "key_freqs": [1, 2, 3, 4],
    }
    return [
        {"run": name, "path": name, "setting": {"lr": lr}, "T_mem": T_MEM, "T_grok": grok,
         "fraction": 0.5, "upto": 4000, "curves": curves}
        for name, lr, grok in runs
    ]  # fmt: skip


def test_leave_one_out_calibrates_each_run_on_the_others(monkeypatch):
    import grokinterp.forecast as forecast

    # a, b, c share the plateau and its T_grok; d's T_grok is later (its constants differ)
    later = T_MEM + 1.5 * (T_GROK - T_MEM)
    cuts = _synthetic_cuts(
        [("a", 1e-3, T_GROK), ("b", 1e-3, T_GROK), ("c", 2e-3, T_GROK), ("d", 2e-3, later)]
    )
    monkeypatch.setattr(forecast, "_grokked_cuts", lambda source, fractions: (cuts, []))
    by_run = evaluate_forecast("sweep", fractions=(0.5,), n_boot=0, leave_out="run")
    rows = {r["run"]: r for r in by_run["runs"]}
    assert rows["a"]["calibrated_on"] == ["b", "c", "d"]
    assert rows["a"]["forecast"] == pytest.approx(T_GROK, rel=1e-6)  # median of b, c, d
    assert rows["d"]["calibrated_on"] == ["a", "b", "c"]
    assert rows["d"]["forecast"] == pytest.approx(T_GROK, rel=1e-6)  # d's own never seen
    assert rows["d"]["rel_error"] == pytest.approx((later - T_GROK) / later, rel=1e-6)
    assert by_run["leave_out"] == "run" and by_run["calibration"] is None
    by_setting = evaluate_forecast("sweep", fractions=(0.5,), n_boot=0, leave_out="setting")
    rows = {r["run"]: r for r in by_setting["runs"]}
    assert rows["a"]["calibrated_on"] == ["c", "d"] and rows["c"]["calibrated_on"] == ["a", "b"]
    with pytest.raises(OptionError, match="leave_out"):
        evaluate_forecast("sweep", leave_out="seed")
    # calibrating on all four: one pair per cut, the constants that would forecast each
    found = forecast._calibration_of(cuts, "test")
    assert found.restricted_ratio == pytest.approx((1.0, 1.0, 1.0, 1.5), rel=1e-3)


def test_a_calibration_round_trips_through_the_command_line_files(tmp_path, capsys):
    path = tmp_path / "forecast-calibration.json"
    mine = Calibration((1.1, 1.7), (0.7, 0.8), source="a p = 59 sweep")
    path.write_text(json.dumps(mine.to_dict()))
    assert Calibration.read(path) == mine
    with pytest.raises(OptionError, match="calibration file not found"):
        Calibration.read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"restricted_ratio": [1.0]}')
    with pytest.raises(OptionError, match="not a forecast calibration"):
        Calibration.read(tmp_path / "bad.json")
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
