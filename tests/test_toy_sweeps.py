"""Toy runs in sweeps: spec, table of runs (with the bound), laws and figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grokinterp import files
from grokinterp.figures import write_figures, write_laws
from grokinterp.models.config import ToyConfig
from grokinterp.sweep import load_sweep, run_sweep, write_runs_table
from grokinterp.sweep.backends import InlineBackend
from grokinterp.sweep.spec import SpecError, parse_spec

SPEC = """
name = "ridge-tiny"
seeds = [[0, 0], [1, 1]]
[base]
family = "linear"
dataset = "ridge"
m = 40
n_train = 8
n_test = 100
epochs = 2500
exact_path = true
checkpoints = "log:10"
[grid]
weight_decay = [0.01, 0.02, 0.04]
"""


@pytest.fixture(scope="module")
def ridge_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-sweep")
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    sweep = run_sweep(spec, folder / "sweep", backend=InlineBackend())
    write_runs_table(sweep)
    return sweep


def test_a_toy_spec_expands_to_toy_configs():
    import tomllib

    spec = parse_spec(tomllib.loads(SPEC))
    runs = spec.runs()
    assert len(runs) == 6 and all(isinstance(c, ToyConfig) for c in runs.values())
    assert runs["wd0.01-init0-data0"].weight_decay == 0.01
    with pytest.raises(SpecError, match="field 'colour'"):
        parse_spec({"base": {"family": "linear", "colour": 7}})
    with pytest.raises(SpecError, match="weight_decay"):
        parse_spec({"base": {"family": "linear"}, "grid": {"weight_decay": [-1.0]}})


def test_the_table_of_toy_runs_holds_the_bound_beside_the_measured_time(ridge_sweep):
    table = load_sweep(ridge_sweep)
    assert set(table["status"]) == {"done"}
    assert "d_model" not in table and {"family", "m", "bound", "t_generalise"} <= set(table)
    np.testing.assert_array_equal(table["t_generalise"], table["T_grok"])
    from grokinterp.decay_law import ridge_bound

    row = table.iloc[0]
    expected = ridge_bound(40, 8, 1.0, 1.0, 1.0, 1.0, 0.05, row["weight_decay"])
    assert row["bound"] == pytest.approx(expected)
    assert (table["t_generalise"] >= table["bound"]).all()  # the bound holds here
    # halving lambda roughly doubles the time (the 1/lambda law)
    t = table.groupby("weight_decay")["t_generalise"].mean()
    assert 1.6 < t[0.01] / t[0.02] < 2.4 and 1.6 < t[0.02] / t[0.04] < 2.4


def test_laws_fit_the_inverse_lambda_law_and_draw_the_bound(ridge_sweep):
    fit, written = write_laws(ridge_sweep, n_boot=200, formats=["html"])
    law = fit["inverse_lambda_law"]["linear lr=0.05"]
    assert law["n_runs"] == 6 and 0.9 < law["slope"] < 1.1
    names = {p.name for p in written}
    assert {"laws_delay_vs_inverse_lambda.html", "laws_measured_vs_bound.html"} <= names
    assert json.loads((ridge_sweep / "laws.json").read_text())["inverse_lambda_law"]


def test_figures_of_a_toy_run(ridge_sweep):
    run_dir = ridge_sweep / "runs" / "wd0.01-init0-data0"
    written = write_figures(run_dir, formats=["html"])
    assert {p.name for p in written} >= {"curves.html", "block_norms.html", files.REPORT}


def test_compare_draws_transformer_and_toy_sweeps_on_one_axis(ridge_sweep):
    from pathlib import Path

    from grokinterp.decay_law import delay_points
    from grokinterp.figures import write_comparison

    transformer = Path(__file__).resolve().parent.parent / "docs/results/wd-lr-p59/runs.csv"
    written = write_comparison(ridge_sweep, [transformer], formats=["html"])
    assert [p.name for p in written if p.suffix == ".html"] == ["laws_compare_delay_vs_rate.html"]
    points = delay_points(load_sweep(ridge_sweep))
    table = load_sweep(ridge_sweep)
    # GD on lambda ||w||^2 decays a weight by 2 lr lambda per step, one step an epoch
    np.testing.assert_allclose(points["rate"], 2 * 0.05 * table["weight_decay"])
    np.testing.assert_allclose(points["delay_steps"], table["T_grok"] - table["T_mem"])


def test_bench_ridge_prints_both_timings_and_their_ratio(capsys):
    from grokinterp.cli import main

    assert main(["bench", "ridge", "--epochs", "50"]) == 0
    out = capsys.readouterr().out
    assert "iterative:" in out and "exact path:" in out and "speed-up:" in out
