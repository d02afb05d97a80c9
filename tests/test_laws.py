"""The grokking-delay laws: fits on tables built from known laws, bootstrap CIs, censored
and failed runs, degenerate input, the sweep table's norm columns and the CLI."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grokinterp import files
from grokinterp.cli import main
from grokinterp.config import RunConfig
from grokinterp.errors import OptionError
from grokinterp.figures.sweep import load_or_build_table, write_sweep_figures
from grokinterp.laws import (
    LawFitError,
    bootstrap_line,
    fit_laws,
    fit_line,
    law_points,
)
from grokinterp.storage import write_json
from grokinterp.sweep import load_sweep
from grokinterp.sweep.manifest import MANIFEST, RUNS_TABLE, run_dir

LRS = (1e-3, 3e-3, 1e-2)
WDS = (0.3, 1.0, 3.0)


def _table(b=0.8, a=1.5, noise=0.0, seed=0, A=0.7, B=40.0, reps=2):
    """Grokked runs on a 3 x 3 grid of (lr, wd) whose delay follows law (a) exactly:
    delay = exp(a) (1/(lr wd))^b (times exp(noise)); their norms make law (b) exact with A, B:
    ln(norm_mem / norm_post) = (delay - B) lr wd / A."""
    rng = np.random.default_rng(seed)
    rows = []
    for lr in LRS:
        for wd in WDS:
            for rep in range(reps):
                delay = math.exp(a) * (1 / (lr * wd)) ** b * math.exp(noise * rng.normal())
                log_ratio = (delay - B) * lr * wd / A
                t_mem = 50.0 + 10 * rep
                rows.append(
                    {
                        "name": f"lr{lr}-wd{wd}-r{rep}",
                        "status": "done",
                        "grokked": True,
                        "T_mem": t_mem,
                        "T_grok": t_mem + delay,
                        "end_epoch": t_mem + delay + 100,
                        "lr": lr,
                        "weight_decay": wd,
                        # sums of squares: norm_mem = 20, norm_post = 20 exp(-log_ratio)
                        "wnorm_memorisation_end": 400.0,
                        "wnorm_cleanup_end": 400.0 * math.exp(-2 * log_ratio),
                        "wnorm_T_grok": math.nan,
                    }
                )
    return pd.DataFrame(rows)


def _bad_rows():
    nan = math.nan
    common = {"wnorm_memorisation_end": 400.0, "wnorm_cleanup_end": 1.0, "wnorm_T_grok": nan}
    return pd.DataFrame(
        [
            # never grokked: the cap is 900, so its delay is beyond 900 - 50
            {"name": "cens", "status": "censored", "grokked": False, "T_mem": 50.0,
             "T_grok": nan, "end_epoch": 900.0, "lr": 1e-3, "weight_decay": 0.1, **common},
            {"name": "fail", "status": "failed", "grokked": False, "T_mem": nan,
             "T_grok": nan, "end_epoch": nan, "lr": 1e-3, "weight_decay": 0.1, **common},
            {"name": "wait", "status": "pending", "grokked": False, "T_mem": nan,
             "T_grok": nan, "end_epoch": nan, "lr": 1e-3, "weight_decay": 0.1, **common},
        ]
    )  # fmt: skip


# ---------------------------------------------------------------------------- exact laws


def test_fit_line_is_exact_on_a_line():
    fit = fit_line([1, 2, 3, 4, 5], [1.5, 3.5, 5.5, 7.5, 9.5], n_boot=100)
    assert fit["slope"] == pytest.approx(2.0, abs=1e-12)
    assert fit["intercept"] == pytest.approx(-0.5, abs=1e-12)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-12) and fit["n_fitted"] == 5
    # hand computation on 3 points: x = 0, 1, 2; y = 0, 2, 1 -> slope 0.5, intercept 0.5,
    # residuals -0.5, 1, -0.5 (SS 1.5), SS_tot 2: R^2 = 0.25
    fit = fit_line([0, 1, 2], [0, 2, 1], n_boot=0)
    assert (fit["slope"], fit["intercept"], fit["r2"]) == pytest.approx((0.5, 0.5, 0.25))
    assert fit["slope_ci"] is None


def test_law_a_recovers_b_and_a_from_an_exact_power_law():
    fit = fit_laws(_table(b=0.8, a=1.5), n_boot=300)
    law = fit["law_a"]
    assert law["slope"] == pytest.approx(0.8, abs=1e-9)
    assert law["intercept"] == pytest.approx(1.5, abs=1e-9)
    assert law["r2"] == pytest.approx(1.0, abs=1e-12)
    assert law["n_fitted"] == 18 and fit["n_grokked"] == 18
    lo, hi = law["slope_ci"]
    assert lo == pytest.approx(0.8, abs=1e-9) and hi == pytest.approx(0.8, abs=1e-9)
    assert law["predicted_slope_in_ci"] is False  # b = 1 is outside a CI pinned at 0.8
    assert fit_laws(_table(b=1.0, a=1.5), n_boot=300)["law_a"]["predicted_slope_in_ci"]


def test_law_b_recovers_A_and_B_from_exact_norms():
    law = fit_laws(_table(A=0.7, B=40.0), n_boot=300)["law_b"]
    assert law["ok"] and law["norm_mem"] == "memorisation_end"
    assert law["slope"] == pytest.approx(0.7, rel=1e-9)
    assert law["intercept"] == pytest.approx(40.0, rel=1e-7)
    assert law["r2"] == pytest.approx(1.0, abs=1e-12)
    assert law["slope_ci"] == pytest.approx([0.7, 0.7], rel=1e-9)


def test_law_b_takes_the_square_root_of_the_summed_squares():
    points = law_points(_table(A=1.0, B=0.0))
    # norm = sqrt(sum of squares): sqrt(400) = 20 at the end of memorisation
    assert np.allclose(points["norm_mem"], 20.0)
    assert np.allclose(points["x_b"], points["delay"])  # A = 1, B = 0: x_b is the delay


def test_other_norm_points_are_read_from_their_columns():
    table = _table(A=1.0, B=0.0)
    table["wnorm_T_grok"] = table["wnorm_cleanup_end"]
    table["wnorm_cleanup_end"] = 1.0  # wrong on purpose: must not be used
    law = fit_laws(table, n_boot=0, norms=("memorisation_end", "T_grok"))["law_b"]
    assert law["norm_post"] == "T_grok" and law["slope"] == pytest.approx(1.0, rel=1e-9)


# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_the_seeded_percentile_of_refits():
    x = np.log(np.arange(1.0, 13.0))
    y = 2.0 + 0.9 * x + np.random.default_rng(5).normal(0, 0.2, size=12)
    slopes, intercepts, dropped = bootstrap_line(x, y, n_boot=400, seed=7)
    # the same resamples, refitted one by one with numpy's polyfit
    idx = np.random.default_rng(7).integers(0, 12, size=(400, 12))
    expected = np.array([np.polyfit(x[i], y[i], 1) for i in idx])
    assert dropped == 0
    assert np.allclose(slopes, expected[:, 0]) and np.allclose(intercepts, expected[:, 1])
    fit = fit_line(x, y, n_boot=400, seed=7)
    assert fit["slope_ci"] == pytest.approx(np.quantile(expected[:, 0], [0.025, 0.975]).tolist())
    assert fit_line(x, y, n_boot=400, seed=7) == fit  # seeded
    assert fit_line(x, y, n_boot=400, seed=8)["slope_ci"] != fit["slope_ci"]


def test_bootstrap_ci_holds_the_truth_and_widens_with_noise():
    widths = []
    for noise in (0.01, 0.2):
        law = fit_laws(_table(b=0.8, a=1.5, noise=noise, seed=3, reps=4), seed=1)["law_a"]
        lo, hi = law["slope_ci"]
        assert lo < 0.8 < hi and law["slope"] == pytest.approx(0.8, abs=0.1)
        widths.append(hi - lo)
    assert widths[0] < 0.02  # near-exact data: a narrow interval
    assert widths[1] > 5 * widths[0]


def test_resamples_with_a_single_x_are_dropped_not_fitted():
    slopes, _, dropped = bootstrap_line([1.0, 1.0, 2.0], [1.0, 1.0, 3.0], n_boot=500, seed=0)
    assert dropped > 0 and len(slopes) == 500 - dropped
    assert np.allclose(slopes, 2.0)  # every kept resample has both x values: slope 2


# ---------------------------------------------------------------------------- exclusions


def test_censored_failed_and_unfinished_runs_are_excluded_and_reported():
    clean = fit_laws(_table(noise=0.1, seed=2), n_boot=200)
    mixed = fit_laws(pd.concat([_table(noise=0.1, seed=2), _bad_rows()]), n_boot=200)
    for law in ("law_a", "law_b"):
        for key in ("slope", "intercept", "r2", "n_fitted", "slope_ci"):
            assert mixed[law][key] == clean[law][key], (law, key)
    assert mixed["censored"] == ["cens"] and mixed["failed"] == ["fail"]
    assert mixed["unfinished"] == ["wait"]
    assert (mixed["n_runs"], mixed["n_grokked"], mixed["n_censored"], mixed["n_failed"]) == (
        21,
        18,
        1,
        1,
    )
    assert "cens" not in mixed["law_a"]["fitted_runs"]
    json.dumps(mixed, allow_nan=False)  # JSON-serialisable, no NaN
    points = law_points(pd.concat([_table(), _bad_rows()]))
    cens = points.set_index("name").loc["cens"]
    assert cens["role"] == "censored" and cens["delay_lower"] == 850.0  # cap - T_mem


def test_grokked_runs_without_a_delay_or_a_rate_are_left_out_with_why():
    table = _table()
    table.loc[0, "T_grok"] = table.loc[0, "T_mem"]  # grokked at T_mem: ln(0)
    table.loc[1, "weight_decay"] = 0.0
    table.loc[2, "wnorm_cleanup_end"] = math.nan
    fit = fit_laws(table, n_boot=0)
    names = table["name"]
    assert "T_grok <= T_mem" in fit["law_a"]["excluded"][names[0]]
    assert "lr * weight_decay" in fit["law_a"]["excluded"][names[1]]
    assert fit["law_a"]["n_fitted"] == 16 and names[2] in fit["law_a"]["fitted_runs"]
    assert "wnorm_cleanup_end" in fit["law_b"]["excluded"][names[2]]
    assert fit["law_b"]["n_fitted"] == 16  # no norm, no rate; a zero delay is fine in (b)
    assert names[0] in fit["law_b"]["fitted_runs"]


def test_law_b_without_norms_is_reported_and_law_a_still_fitted():
    table = _table().drop(columns=["wnorm_cleanup_end"])  # e.g. an old runs.csv
    fit = fit_laws(table, n_boot=0)
    assert fit["law_a"]["ok"] and fit["law_a"]["n_fitted"] == 18
    assert not fit["law_b"]["ok"] and "at least 3" in fit["law_b"]["reason"]
    # every grokked run is listed with why it was left out
    assert len(fit["law_b"]["excluded"]) == 18
    assert set(fit["law_b"]["excluded"].values()) == {
        "no weight norm at cleanup_end (wnorm_cleanup_end is missing or NaN)"
    }


def test_degenerate_tables_give_clear_errors():
    few = pd.concat([_table().iloc[:2], _bad_rows()])
    with pytest.raises(LawFitError, match="at least 3 grokked runs.*has 2"):
        fit_laws(few)
    same_rate = _table()
    same_rate["lr"], same_rate["weight_decay"] = 1e-3, 1.0
    with pytest.raises(LawFitError, match="lr \\* weight_decay = 0.001.*sweep lr or weight_decay"):
        fit_laws(same_rate)
    with pytest.raises(LawFitError, match="no column.*'T_grok'"):
        fit_laws(_table().drop(columns=["T_grok"]))
    with pytest.raises(OptionError, match="--bootstrap"):
        fit_laws(_table(), n_boot=-1)
    with pytest.raises(OptionError, match="--norms.*memorisation_end"):
        fit_laws(_table(), norms=("memorisation_end", "peak"))
    assert issubclass(LawFitError, OptionError)  # the CLI prints it as one line


# ---------------------------------------------------------------------------- figures


def test_figures_draw_fits_censored_runs_and_the_diagonal():
    from grokinterp.plots.laws import law_figures

    table = pd.concat([_table(b=1.0), _bad_rows()], ignore_index=True)
    fit = fit_laws(table, n_boot=50)
    figs = law_figures(law_points(table), fit)
    assert set(figs) == {"laws_delay_vs_rate", "laws_a_predicted", "laws_b_predicted"}
    traces = {t.name.split(":")[0]: t for t in figs["laws_delay_vs_rate"].data}
    assert list(traces["censored"].y) == [850.0] and list(traces["censored"].x) == [1e4]
    fit_line_ = traces["fit"]
    assert np.allclose(np.log(fit_line_.y), 1.5 + np.log(fit_line_.x))  # a + b ln x, b = 1
    assert len(traces["grokked runs"].x) == 18
    for name in ("laws_a_predicted", "laws_b_predicted"):
        by_name = {t.name.split(":")[0]: t for t in figs[name].data}
        diag = by_name["y = x"]
        assert np.allclose(diag.x, diag.y)
        runs = by_name["grokked runs"]
        assert np.allclose(runs.x, runs.y, rtol=1e-6)  # exact laws: on the diagonal


# ---------------------------------------------------------------------------- sweep folder


def _norm_rows(points):
    return [f"{e},weight_norm_sq,total,{v!r}" for e, v in points]


def _fake_sweep(folder: Path, runs: list[dict]) -> Path:
    """A sweep folder without training: manifest, and per finished run a summary.json and
    an analysis.csv holding only the total weight norm (what the table of runs reads)."""
    order, entries = [], {}
    for run in runs:
        cfg = RunConfig(p=23, lr=run["lr"], weight_decay=run["wd"], name=run["name"])
        order.append(run["name"])
        entries[run["name"]] = {"config": cfg.to_dict(), "status": run["status"], "error": None}
        if run["status"] not in ("done", "censored"):
            continue
        path = run_dir(folder, run["name"])
        path.mkdir(parents=True)
        phases = {k: {"epoch": run.get(k)} for k in ("T_mem", "T_grok", "memorisation_end")}
        phases.update({k: {"epoch": run.get(k)} for k in ("circuit_formation_end", "cleanup_end")})
        summary = {"phases": phases, "final_epoch": run["end"], "key_frequencies": [3]}
        summary["cleanup_seen"] = run.get("cleanup_end") is not None
        summary["not_seen"] = run.get("not_seen", {})
        write_json(path / files.SUMMARY, {**summary, "final": {}})
        lines = ["epoch,measure,key,value", *_norm_rows(run["norms"])]
        (path / files.ANALYSIS_TABLE).write_text("\n".join(lines) + "\n")
    write_json(
        folder / MANIFEST,
        {
            "format": "grokinterp-sweep-v1",
            "spec": {"name": "fake", "grid": {"lr": [], "weight_decay": []}},
            "order": order,
            "runs": entries,
        },
    )
    return folder


def test_the_table_of_runs_has_the_norm_at_T_grok(tmp_path):
    runs = [
        {"name": "g", "status": "done", "lr": 1e-3, "wd": 1.0, "T_mem": 50, "T_grok": 150,
         "memorisation_end": 100, "cleanup_end": 250, "end": 300,
         "norms": [(0, 10.0), (100, 20.0), (200, 40.0), (300, 80.0)]},
        {"name": "c", "status": "censored", "lr": 1e-3, "wd": 1.0, "T_mem": 50,
         "T_grok": None, "memorisation_end": 100, "end": 300,
         "norms": [(0, 10.0), (300, 70.0)]},
    ]  # fmt: skip
    table = load_sweep(_fake_sweep(tmp_path / "s", runs)).set_index("name")
    # linear between the checkpoints either side: 150 is halfway from 20 (100) to 40 (200)
    assert table.loc["g", "wnorm_T_grok"] == pytest.approx(30.0)
    assert table.loc["g", "wnorm_T_mem"] == pytest.approx(15.0)
    assert table.loc["g", "wnorm_memorisation_end"] == pytest.approx(20.0)
    assert table.loc["g", "wnorm_cleanup_end"] == pytest.approx(60.0)
    assert math.isnan(table.loc["c", "wnorm_T_grok"])  # censored: no T_grok


def _law_runs(n_lr=3):
    """Runs whose delay is 2 / (lr wd) exactly, norms falling as exp(-lr wd t) from the
    end of memorisation to the end of cleanup (law (b): A = 1, B = 0), one censored run
    and one failed run."""
    runs = []
    for lr in (1e-3, 2e-3, 4e-3)[:n_lr]:
        for wd in (0.5, 1.0):
            delay = 2.0 / (lr * wd)
            t_mem, mem_end = 40.0, 100.0
            clean_end = mem_end + delay
            sq_mem, sq_post = 400.0, 400.0 * math.exp(-2 * lr * wd * delay)
            end = 40.0 + delay + 200
            runs.append(
                {"name": f"lr{lr}-wd{wd}", "status": "done", "lr": lr, "wd": wd,
                 "T_mem": t_mem, "T_grok": t_mem + delay, "memorisation_end": mem_end,
                 "cleanup_end": clean_end, "end": end,
                 "norms": [(0, 100.0), (mem_end, sq_mem), (clean_end, sq_post), (end, sq_post)]}
            )  # fmt: skip
    runs.append(
        {"name": "slow", "status": "censored", "lr": 1e-4, "wd": 0.5, "T_mem": 40.0,
         "T_grok": None, "memorisation_end": 100.0, "end": 3000.0,
         "norms": [(0, 100.0), (3000, 300.0)]}
    )  # fmt: skip
    runs.append({"name": "broken", "status": "failed", "lr": 1e-3, "wd": 0.1})
    return runs


def test_law_b_leaves_out_and_lists_runs_whose_cleanup_was_not_seen(tmp_path):
    runs = _law_runs()
    why = "the run ended at 1240, before its cleanup was seen to end"
    runs[0].update(cleanup_end=None, not_seen={"cleanup_end": why})
    table = load_sweep(_fake_sweep(tmp_path / "s", runs)).set_index("name")
    cut = runs[0]["name"]
    assert not table.loc[cut, "cleanup_seen"] and table.loc[runs[1]["name"], "cleanup_seen"]
    assert math.isnan(table.loc[cut, "cleanup_end"]) and math.isnan(
        table.loc[cut, "wnorm_cleanup_end"]
    )
    # the key frequencies at the last checkpoint are not the run's final set: blank
    assert table.loc[cut, "key_freqs"] in ("", None) or pd.isna(table.loc[cut, "key_freqs"])
    assert math.isnan(table.loc[cut, "n_key_freqs"])
    assert table.loc[cut, "not_seen"] == f"cleanup_end: {why}"
    fit = fit_laws(table.reset_index(), n_boot=0)
    assert cut not in fit["law_b"]["fitted_runs"] and cut in fit["law_a"]["fitted_runs"]
    assert fit["law_b"]["excluded"] == {cut: f"cleanup_end not seen: {why}"}
    assert fit["law_b"]["n_fitted"] == fit["law_a"]["n_fitted"] - 1
    # ... and the fit on the rest is still exact (A = 1, B = 0)
    assert fit["law_b"]["slope"] == pytest.approx(1.0) and abs(fit["law_b"]["intercept"]) < 1e-6


def test_cli_laws_writes_laws_json_and_figures(tmp_path, capsys):
    sweep = _fake_sweep(tmp_path / "sweep", _law_runs())
    assert not (sweep / RUNS_TABLE).exists()
    code = main(["laws", str(sweep), "--bootstrap", "200", "--seed", "3", "--formats", "html"])
    out = capsys.readouterr().out
    assert code == 0
    assert (sweep / RUNS_TABLE).is_file()  # built, as 'grokinterp analyze' does
    fit = json.loads((sweep / files.LAWS_FILE).read_text())
    assert fit["law_a"]["slope"] == pytest.approx(1.0, abs=1e-9)
    assert fit["law_a"]["intercept"] == pytest.approx(math.log(2.0), abs=1e-9)
    assert fit["law_b"]["slope"] == pytest.approx(1.0, rel=1e-6)
    assert fit["law_b"]["intercept"] == pytest.approx(0.0, abs=1e-6)
    assert fit["censored"] == ["slow"] and fit["failed"] == ["broken"]
    assert fit["bootstrap"]["n"] == 200 and fit["bootstrap"]["seed"] == 3
    written = {p.name for p in (sweep / "figures").iterdir()}
    assert {"laws_delay_vs_rate.html", "laws_a_predicted.html", "laws_b_predicted.html"} <= written
    assert "b = 1 [1, 1]" in out and "R^2 = 1.0000" in out and "6 runs fitted" in out
    assert "censored (not fitted): slow" in out


def test_cli_laws_on_too_few_runs_is_one_clear_line(tmp_path, capsys):
    sweep = _fake_sweep(tmp_path / "sweep", _law_runs()[:2] + _law_runs()[-2:])
    assert main(["laws", str(sweep), "--formats", "html"]) == 2
    err = capsys.readouterr().err
    assert "grokinterp laws: error:" in err and "at least 3 grokked runs" in err
    assert "Traceback" not in err
    assert main(["laws", str(tmp_path), "--formats", "html"]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_runs_csv_is_rebuilt_only_when_missing_or_stale(tmp_path):
    sweep = _fake_sweep(tmp_path / "sweep", _law_runs())
    assert load_or_build_table(sweep)[1] is True  # missing
    assert load_or_build_table(sweep)[1] is False  # fresh
    summary = run_dir(sweep, "lr0.001-wd0.5") / files.SUMMARY
    later = (sweep / RUNS_TABLE).stat().st_mtime_ns + 10**9
    os.utime(summary, ns=(later, later))
    table, rebuilt = load_or_build_table(sweep)
    assert rebuilt is True and len(table) == 8


def test_the_sweep_report_shows_the_laws_figures(tmp_path):

    sweep = _fake_sweep(tmp_path / "sweep", _law_runs())
    written = {p.name for p in write_sweep_figures(sweep, formats=["html"])}
    assert "laws_delay_vs_rate.html" in written
    assert "id='laws_delay_vs_rate'" in (sweep / "figures" / "report.html").read_text()
    few = _fake_sweep(tmp_path / "few", _law_runs()[:2])  # too few to fit: no laws figures
    assert not any(p.name.startswith("laws_") for p in write_sweep_figures(few, ["html"]))


def _sweep_of_phases(folder: Path, runs: dict) -> Path:
    """A sweep folder whose runs' summaries come from detect_phases on (cut) curves, with
    the weight norm in analysis.csv, as build_summary writes them (the columns runs.csv
    reads)."""
    from grokinterp.phases import PHASE_NAMES, detect_phases

    order, entries = [], {}
    for name, (curves, norm) in runs.items():
        cfg = RunConfig(lr=1e-3, weight_decay=1.0, name=name)
        order.append(name)
        entries[name] = {"config": cfg.to_dict(), "status": "done", "error": None}
        phases = detect_phases(curves)
        path = run_dir(folder, name)
        path.mkdir(parents=True)
        write_json(
            path / files.SUMMARY,
            {
                "phases": {k: phases[k].to_dict() for k in PHASE_NAMES},
                "final_epoch": int(norm[0][-1]),
                "key_frequencies": [14, 35, 41, 42, 52],
                "cleanup_seen": phases["cleanup_end"].epoch is not None,
                "not_seen": {
                    k: phases[k].inputs["not_seen"]
                    for k in PHASE_NAMES
                    if phases[k].inputs.get("not_seen")
                },
                "final": {"test_loss": float(curves["test_loss"][1][-1])},
                "mechanism": {"pizza_class": "clock"},  # read at the last checkpoint
            },
        )
        pairs = zip(norm[0].tolist(), norm[1].tolist(), strict=True)
        lines = ["epoch,measure,key,value", *_norm_rows(pairs)]
        (path / files.ANALYSIS_TABLE).write_text("\n".join(lines) + "\n")
    write_json(
        folder / MANIFEST,
        {"format": "grokinterp-sweep-v1", "spec": {"name": "cut"}, "order": order, "runs": entries},
    )
    return folder


def test_runs_csv_columns_do_not_move_with_the_stop_on_the_default_schedule(tmp_path):
    from tests.test_phases import E, _cut, _default_schedule_curves

    curves = _default_schedule_curves(excluded_plateau=False)
    norm = (E, 1e4 * np.exp(-2e-4 * np.maximum(E - 1400, 0)))
    t_grok = 9200  # first default-schedule checkpoint with test accuracy >= 0.99
    stops = {"full": 25000, "cut": t_grok + 1000, "two-delays": t_grok + 2 * (t_grok - 200)}
    runs = {}
    for name, stop in stops.items():
        keep = norm[0] <= stop
        runs[name] = (_cut(curves, stop), (norm[0][keep], norm[1][keep]))
    table = load_sweep(_sweep_of_phases(tmp_path / "s", runs)).set_index("name")
    full, cut, two = table.loc["full"], table.loc["cut"], table.loc["two-delays"]
    assert full["T_grok"] == cut["T_grok"] == t_grok and full["cleanup_seen"]
    # at the end by definition: these move with the stop
    at_end = {"end_epoch", "wnorm_end", "final_test_loss", "stop_after_grok", "name"}
    # what needs the end of cleanup (or T_grok + settle) is not seen in the cut run ...
    blank = {"circuit_formation_end", "cleanup_end", "wnorm_cleanup_end", "n_key_freqs"}
    assert not cut["cleanup_seen"] and cut["key_freqs"] in ("", None) or pd.isna(cut["key_freqs"])
    assert "cleanup_end:" in cut["not_seen"] and "circuit_formation_end:" in cut["not_seen"]
    for column in blank:
        assert pd.isna(cut[column]), column
    # the clock/pizza class, read at the last checkpoint, is given only once cleanup is seen
    assert full["pizza_class"] == two["pizza_class"] == "clock"
    assert cut["pizza_class"] == "" and "pizza_class: read before cleanup" in cut["not_seen"]
    # ... and every other column is the complete run's, for the cut run and a run stopped
    # two delays after T_grok (the wd x lr sweep's stop), which sees everything
    for column in table.columns:
        if column in at_end | {"not_seen", "cleanup_seen", "key_freqs", "pizza_class"} | blank:
            continue
        for run in (cut, two):
            same = (pd.isna(full[column]) and pd.isna(run[column])) or full[column] == run[column]
            assert same, (column, full[column], run[column])
    for column in blank | {"key_freqs", "cleanup_seen"}:
        assert (pd.isna(full[column]) and pd.isna(two[column])) or full[column] == two[column]


def test_blank_unseen_applies_the_rule_to_an_old_runs_csv():
    from grokinterp.sweep.table import blank_unseen

    base = {"checkpoints": "log:40+every:250", "epochs": 15000, "key_freqs": "5,15",
            "n_key_freqs": 2, "T_mem": 100.0, "memorisation_end": 1000.0}  # fmt: skip
    rows = [
        # stopped 1,000 after T_grok: settle = max(0.5 * 3900, 500) = 1950 > 1000
        {**base, "name": "cut", "T_grok": 4000.0, "circuit_formation_end": 4100.0,
         "cleanup_end": 4900.0, "end_epoch": 5000.0, "wnorm_cleanup_end": 9.0},
        # ran to 12,000: cleanup_end + settle = 6,850 <= 11,250 (3 checkpoints before)
        {**base, "name": "long", "T_grok": 4000.0, "circuit_formation_end": 4100.0,
         "cleanup_end": 4900.0, "end_epoch": 12000.0, "wnorm_cleanup_end": 9.0},
        # T_grok + settle = 6,450 seen, cleanup_end + settle = 11,950 > 11,250: not seen
        {**base, "name": "late", "T_grok": 4000.0, "circuit_formation_end": 4100.0,
         "cleanup_end": 10000.0, "end_epoch": 12000.0, "wnorm_cleanup_end": 9.0},
        {**base, "name": "censored", "T_grok": math.nan, "circuit_formation_end": math.nan,
         "cleanup_end": math.nan, "end_epoch": 15000.0, "wnorm_cleanup_end": math.nan},
    ]  # fmt: skip
    out = blank_unseen(pd.DataFrame(rows)).set_index("name")
    assert list(out["cleanup_seen"]) == [False, True, False, False]
    cut, long, late, censored = (out.loc[n] for n in ("cut", "long", "late", "censored"))
    assert pd.isna(cut["circuit_formation_end"]) and pd.isna(cut["cleanup_end"])
    assert pd.isna(cut["wnorm_cleanup_end"]) and cut["key_freqs"] == ""
    assert pd.isna(cut["n_key_freqs"]) and "T_grok + settle = 5950" in cut["not_seen"]
    assert long["cleanup_end"] == 4900 and long["key_freqs"] == "5,15" and long["not_seen"] == ""
    assert late["circuit_formation_end"] == 4100 and pd.isna(late["cleanup_end"])
    assert "settle = 1950" in late["not_seen"]
    assert pd.isna(censored["memorisation_end"]) and "not grokked" in censored["not_seen"]
    # applying it again changes nothing
    again = blank_unseen(out.reset_index()).set_index("name")
    pd.testing.assert_frame_equal(again, out)
