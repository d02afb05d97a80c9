"""Running sweeps: statuses, the table of runs, resume after a kill, figures, CLI."""

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokinterp import files
from grokinterp.cli import main
from grokinterp.storage import read_json, read_metrics
from grokinterp.sweep import InlineBackend, load_sweep, run_sweep
from grokinterp.sweep import worker as worker_module
from grokinterp.sweep.manifest import MANIFEST, RUNS_TABLE, read_manifest, run_dir
from tests.conftest import assert_same_runs

# Three runs of a model that groks at epoch 125 to 135 (by machine) with lr 3e-2
# (T_mem 45): lr 3e-2 is done
# (stopped 20 epochs after T_grok), lr 1e-3 is censored at the 170-epoch cap, and the
# lr 1e-2 run is made to fail.
SMALL = """
name = "small"
[base]
p = 23
frac_train = 0.8
d_model = 32
n_heads = 2
d_head = 16
d_mlp = 128
eval_every = 5
epochs = 170
stop_after_grok = 20
checkpoints = "every:10"
[grid]
lr = [3e-2, 1e-3, 1e-2]
"""
DONE, CENSORED, FAILED = "lr0.03", "lr0.001", "lr0.01"


def _first_test_acc_epoch(run: Path, threshold: float = 0.99) -> int:
    """T_grok read straight from a run's metrics.csv: the first epoch whose test accuracy
    reaches the threshold (the value moves across machines with the float rounding)."""
    rows = read_metrics(run / files.METRICS)
    return next(int(r["epoch"]) for r in rows if (r["test_acc"] or 0) >= threshold)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweeps")
    spec = folder / "small.toml"
    spec.write_text(SMALL)
    real = worker_module.train_and_analyze

    def failing(cfg, out):
        if cfg.name == FAILED:
            raise RuntimeError("this run was made to fail")
        return real(cfg, out)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker_module, "train_and_analyze", failing)
        updates = []
        sweep_dir = run_sweep(
            spec, folder / "small", backend=InlineBackend(), on_update=updates.append
        )
    return sweep_dir, spec, updates


@pytest.mark.slow
def test_statuses_and_the_table_of_runs(small_sweep):
    sweep_dir, _, updates = small_sweep
    statuses = {n: r["status"] for n, r in read_manifest(sweep_dir)["runs"].items()}
    assert statuses == {DONE: "done", CENSORED: "censored", FAILED: "failed"}
    assert updates[-1].counts == {
        "pending": 0,
        "running": 0,
        "done": 1,
        "censored": 1,
        "failed": 1,
    }

    table = load_sweep(sweep_dir).set_index("name")
    assert list(table.index) == [DONE, CENSORED, FAILED]  # the spec's order
    done, censored, failed = table.loc[DONE], table.loc[CENSORED], table.loc[FAILED]
    assert done["lr"] == 0.03 and done["p"] == 23 and done["stop_after_grok"] == 20
    # done: grokked, stopped 20 epochs after T_grok, with the quantities of its summary
    t_grok = _first_test_acc_epoch(run_dir(sweep_dir, DONE))
    assert 100 < t_grok < 170, "this config should grok before the cap"
    assert done["grokked"] and done["T_grok"] == t_grok and done["end_epoch"] == t_grok + 20
    assert 0 < done["T_mem"] < done["T_grok"]
    summary = read_json(run_dir(sweep_dir, DONE) / files.SUMMARY)
    assert done["final_test_acc"] == summary["final"]["test_acc"] > 0.9  # may dip below 0.99
    assert done["wnorm_end"] == pytest.approx(summary["final"]["weight_norm_sq"])
    # stopped 20 epochs after T_grok, it never saw its cleanup end: the key frequencies
    # of wherever it stopped stay in summary.json, the table shows none (docs/runs-csv.md)
    assert len(summary["key_frequencies"]) > 0 and summary["cleanup_seen"] is False
    assert not done["cleanup_seen"] and "cleanup_end" in done["not_seen"]
    assert math.isnan(done["n_key_freqs"]) and done["key_freqs"] in ("", None)
    # the norm at T_mem lies between the norms at the checkpoints either side of it
    t_mem = int(done["T_mem"])
    from grokinterp.analysis import read_table

    rows = read_table(run_dir(sweep_dir, DONE))
    norms = rows[(rows["measure"] == "weight_norm_sq") & (rows["key"] == "total")]
    norms = norms.set_index("epoch")["value"]
    below, above = norms[norms.index <= t_mem].iloc[-1], norms[norms.index >= t_mem].iloc[0]
    assert min(below, above) <= done["wnorm_T_mem"] <= max(below, above)
    # censored: no T_grok, recorded at the cap, still analysed
    assert not censored["grokked"] and math.isnan(censored["T_grok"])
    assert censored["end_epoch"] == 170 and censored["final_test_acc"] < 0.99
    # failed: its error, no analysis
    assert "this run was made to fail" in failed["error"]
    assert not failed["grokked"] and math.isnan(failed["T_mem"])


@pytest.mark.slow
def test_a_damaged_run_is_named_and_the_rest_still_tabled(small_sweep, tmp_path, caplog):
    sweep_dir, _, _ = small_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    (run_dir(copy, CENSORED) / files.SUMMARY).write_text('{"phases": ')  # cut off
    with caplog.at_level(logging.WARNING):
        table = load_sweep(copy).set_index("name")
    assert f"run {CENSORED}" in caplog.text
    assert "not valid JSON" in table.loc[CENSORED, "problem"]
    t_grok = _first_test_acc_epoch(run_dir(sweep_dir, DONE))
    assert table.loc[DONE, "problem"] == "" and table.loc[DONE, "T_grok"] == t_grok


def test_a_manifest_from_before_a_config_field_existed_tables_its_default(small_sweep, tmp_path):
    import pandas as pd

    sweep_dir, _, _ = small_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["runs"].values():
        for field in ("optimizer", "dropout", "grokfast"):
            del entry["config"][field]  # as written before these options existed
    (copy / "manifest.json").write_text(json.dumps(manifest))
    old, new = load_sweep(copy), load_sweep(sweep_dir)
    assert list(old["optimizer"]) == ["adamw"] * 3 and list(old["dropout"]) == [0.0] * 3
    pd.testing.assert_frame_equal(old.drop(columns=["wall_s", "disk_bytes"]),
                                  new.drop(columns=["wall_s", "disk_bytes"]))  # fmt: skip


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_retries_failed_ones_on_request(small_sweep, tmp_path):
    sweep_dir, spec, _ = small_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    before = {
        n: files.checkpoint_path(run_dir(copy, n), 0).stat().st_mtime_ns for n in (DONE, CENSORED)
    }
    started = []
    backend = InlineBackend()
    real_run = backend.run

    def spy(sweep, names, threads, on_result, on_start=None):
        started.extend(names)
        real_run(sweep, names, threads, on_result, on_start)

    backend.run = spy
    run_sweep(spec, copy, backend=backend)
    assert started == []  # done and censored are finished; failed waits for --retry-failed
    assert read_manifest(copy)["runs"][FAILED]["status"] == "failed"
    run_sweep(spec, copy, backend=backend, retry_failed=True)
    assert started == [FAILED]
    runs = read_manifest(copy)["runs"]
    assert runs[FAILED]["status"] in ("done", "censored") and runs[FAILED]["error"] is None
    for name, mtime in before.items():  # finished runs were not touched
        assert files.checkpoint_path(run_dir(copy, name), 0).stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_cli_analyze_and_figures_of_a_sweep(small_sweep, tmp_path, capsys):
    sweep_dir, _, _ = small_sweep
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    assert main(["analyze", str(copy)]) == 0
    assert (copy / RUNS_TABLE).is_file()
    assert "3 runs" in capsys.readouterr().out
    import pandas as pd

    table = pd.read_csv(copy / RUNS_TABLE)
    assert list(table["name"]) == [DONE, CENSORED, FAILED]
    assert main(["figures", str(copy), "--formats", "html"]) == 0
    written = {p.name for p in (copy / "figures").iterdir()}
    assert {"report.html", "curves.html", "t_grok_vs_lr.html"} <= written
    report = (copy / "figures" / "report.html").read_text()
    assert DONE in report and "censored" in report and "made to fail" in report


def test_sweep_figures_mark_censored_cells():
    import pandas as pd

    from grokinterp.plots.sweep import t_grok_heatmap, t_grok_vs_field

    table = pd.DataFrame(
        {
            "name": ["a", "b", "c", "d"],
            "status": ["done", "done", "censored", "done"],
            "grokked": [True, True, False, True],
            "T_grok": [100.0, 300.0, math.nan, 50.0],
            "end_epoch": [150.0, 350.0, 1000.0, 100.0],
            "lr": [1e-3, 1e-3, 1e-3, 3e-3],
            "weight_decay": [1.0, 1.0, 2.0, 2.0],
        }
    )
    heat = t_grok_heatmap(table, "lr", "weight_decay").data[0]
    cells = {
        (x, y): (z, t)
        for y, zr, tr in zip(heat.y, heat.z, heat.text, strict=True)
        for x, z, t in zip(heat.x, zr, tr, strict=True)
    }
    assert cells[("0.001", "1.0")][0] == 200  # median over the two seeds
    z, text = cells[("0.001", "2.0")]
    assert math.isnan(z) and "censored" in text and "1000" in text
    assert cells[("0.003", "2.0")][0] == 50
    assert math.isnan(cells[("0.003", "1.0")][0])  # no run there
    fig = t_grok_vs_field(table, "lr")
    censored = [t for t in fig.data if "censored" in t.name]
    assert len(censored) == 1 and list(censored[0].y) == [1000.0]


def test_curves_coloured_by_run_name_tell_zipped_runs_apart():
    import numpy as np
    import pandas as pd

    from grokinterp.plots.sweep import accuracy_loss_curves

    # a zip of (grokfast, lr): two runs share grokfast = none, two share lr = 1e-3
    table = pd.DataFrame(
        {
            "name": ["ema-lr0.001", "none-lr0.001", "none-lr0.003"],
            "grokfast": ["ema", "none", "none"],
            "lr": [1e-3, 1e-3, 3e-3],
        }
    )
    m = {"epoch": np.arange(3), "test_acc": np.ones(3), "test_loss": np.ones(3)}
    curves = {name: m for name in table["name"]}
    by_field = accuracy_loss_curves(curves, table, "grokfast")
    assert len({t.line.color for t in by_field.data}) == 2  # two runs drawn alike
    by_name = accuracy_loss_curves(curves, table, "name")
    legend = [t.name for t in by_name.data if t.showlegend]
    assert legend == [f"name = {n}" for n in table["name"]]
    assert len({t.line.color for t in by_name.data}) == 3


# --- resume after a kill ------------------------------------------------------------------

TINY = Path(__file__).resolve().parent / "data" / "sweep-tiny.toml"


def _sweep_cli(*args):
    return [sys.executable, "-m", "grokinterp", "sweep", *args]


@pytest.mark.slow
def test_a_sweep_killed_mid_run_resumes_byte_identical(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.read_text().replace("[[999, 598], [1, 2]]", "[[999, 598]]"))
    reference = run_sweep(spec, tmp_path / "reference", backend=InlineBackend())

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = [str(spec), "--out", str(killed), "--workers", "2", "--quiet"]
    # A new session: the coordinator and its workers form one process group, killed at once.
    proc = subprocess.Popen(_sweep_cli(*args), env=env, start_new_session=True)
    deadline = time.time() + 900  # generous: on a loaded machine the imports alone are slow
    while time.time() < deadline and proc.poll() is None:
        counts = [len(list(d.glob("checkpoints/*.safetensors"))) for d in killed.glob("runs/*")]
        if counts and max(counts) >= 4:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / MANIFEST).is_file(), "no run had started within the deadline"
    statuses = {r["status"] for r in read_manifest(killed)["runs"].values()}
    assert statuses & {"running", "pending"}, "the sweep finished before it could be killed"

    subprocess.run(_sweep_cli(*args), env=env, check=True)
    assert_same_runs(reference, killed)
    assert (killed / MANIFEST).is_file()
