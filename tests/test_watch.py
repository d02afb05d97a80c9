"""grokinterp watch: follows a run while it trains, and stops cleanly on Ctrl-C."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokinterp import files
from grokinterp.analysis import read_table
from grokinterp.cli import main
from grokinterp.config import OptionError
from grokinterp.run import load_run
from grokinterp.storage import RunFileError, read_json
from grokinterp.watch import MIN_REFRESH_S, watch
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
REFRESH_TAG = "http-equiv='refresh'"


def _env() -> dict:
    # One torch thread per process: on a small shared machine, two processes with two
    # threads each run many times slower than with one.
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _report(run_dir: Path) -> str:
    return (run_dir / files.FIGURES_DIR / files.REPORT).read_text()


def _temporaries(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def stopped_run(tmp_path, tiny_run):
    """A copy of the tiny run as a killed trainer leaves it: no final checkpoint yet.

    Returns the run directory and the final checkpoint, moved aside.
    """
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    final = files.checkpoint_path(run_dir, tiny_run.config.epochs)
    aside = tmp_path / final.name
    os.replace(final, aside)
    return run_dir, aside


def test_watch_keeps_watching_a_stopped_run_then_finishes(stopped_run):
    run_dir, final = stopped_run
    total = load_run(run_dir).config.epochs
    events = []

    def record(event):
        assert event.kind != "analysed" or event.new > 0, "re-analysed an unchanged run"
        events.append((event, _report(run_dir) if event.report else None))

    # The trainer is gone: one analysis, then idle polls (no re-analysis) until the timeout.
    with pytest.raises(TimeoutError, match="no finished run"):
        watch(run_dir, interval=0.05, timeout=1.0, on_update=record)
    assert [e.kind for e, _ in events] == ["analysed"]
    event, report = events[0]
    assert event.refresh == MIN_REFRESH_S and event.epochs == tuple(load_run(run_dir).epochs)
    assert f"<meta {REFRESH_TAG} content='{MIN_REFRESH_S}'>" in report
    assert "Training in progress" in report

    # The final checkpoint lands (as a resumed trainer would write it): final report.
    def land_final(event):
        record(event)
        if event.kind == "analysed":
            os.replace(final, files.checkpoint_path(run_dir, total))

    events.clear()
    last = watch(run_dir, interval=0.05, timeout=600, on_update=land_final)
    assert [e.kind for e, _ in events] == ["analysed", "done"]
    assert last.kind == "done" and last.epochs[-1] == total and last.refresh is None
    assert last.new == 1  # only the final checkpoint was new to the second watch
    assert "http-equiv" not in events[-1][1] and "Training in progress" not in events[-1][1]
    assert events[0][0].forecast is not None and "Forecast of T_grok" in events[0][1]
    assert last.forecast is None and "Forecast of T_grok" not in events[-1][1]
    assert read_table(run_dir / files.ANALYSIS_TABLE)["epoch"].max() == total
    summary = read_json(run_dir / files.SUMMARY)
    assert summary["final_epoch"] == total and summary["run_complete"]
    assert list(last.key_freqs) == summary["key_frequencies"]
    assert not _temporaries(run_dir)


def test_watch_waits_for_a_run_that_does_not_exist(tmp_path):
    events = []
    with pytest.raises(TimeoutError):
        watch(tmp_path / "later", interval=0.02, timeout=0.3, on_update=events.append)
    # one message per reason, not one per poll
    assert [e.message for e in events] == [f"waiting for {tmp_path / 'later'}: no config.json yet"]
    with pytest.raises(RunFileError, match="nothing to analyse"):
        watch(tmp_path / "later", once=True)
    with pytest.raises(OptionError, match="interval"):
        watch(tmp_path, interval=0)


def test_watch_once_writes_a_report_that_does_not_reload(stopped_run):
    run_dir, _ = stopped_run
    event = watch(run_dir, once=True)
    assert event.kind == "analysed" and event.refresh is None  # still training, but once
    assert "http-equiv" not in _report(run_dir)
    assert not list((run_dir / files.FIGURES_DIR).glob("*.png"))  # HTML only
    assert 0 < event.analysis_seconds <= event.seconds
    # the live forecast: the tiny run has no plateau to read, so "not yet", with the reason
    assert event.forecast.status == "not yet" and event.forecast.reason
    assert "Forecast of T_grok" in _report(run_dir) and "Not yet." in _report(run_dir)
    assert str(event.forecast) in event.message
    quiet = watch(run_dir, once=True, forecast=False)
    assert quiet.forecast is None and "Forecast of T_grok" not in _report(run_dir)


def test_cli_watch_once(stopped_run, capsys):
    run_dir, _ = stopped_run
    assert main(["watch", str(run_dir), "--once"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch 40 of 60: 3 checkpoints analysed (+3)"), out
    assert out[1].startswith("  open file://") and out[1].endswith(files.REPORT)
    assert main(["watch", str(run_dir / "nowhere"), "--once"]) == 2
    err = capsys.readouterr().err
    assert "no config.json yet; nothing to analyse" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_watch_follows_grokinterp_train_to_the_end(tmp_path):
    cfg = tiny_config(epochs=300, checkpoints="every:50")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg.to_dict()))
    run_dir = tmp_path / "run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "grokinterp", "train", "--quiet"]
        + ["--config", str(config_file), "--out", str(run_dir)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []

    def record(event):
        report = _report(run_dir) if event.report else None
        seen.append((event.kind, event.epochs, report))

    try:
        last = watch(run_dir, interval=0.1, timeout=900, on_update=record)
        assert trainer.wait(timeout=300) == 0, trainer.stderr.read()
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    kinds = [kind for kind, _, _ in seen]
    assert kinds[0] == "waiting" and kinds[-1] == "done" and "analysed" in kinds
    assert all(REFRESH_TAG in report for kind, _, report in seen if kind == "analysed")
    assert REFRESH_TAG not in seen[-1][2]
    epochs = load_run(run_dir).epochs
    assert epochs[-1] == cfg.epochs and list(last.epochs) == epochs
    assert sorted(read_table(run_dir / files.ANALYSIS_TABLE)["epoch"].unique()) == epochs
    assert read_json(run_dir / files.SUMMARY)["final_epoch"] == cfg.epochs
    assert not _temporaries(run_dir)


def _start_watch(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grokinterp", "watch", str(run_dir), "--interval", "0.1"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("when", ["idle", "working"])
def test_ctrl_c_stops_watch_cleanly(stopped_run, tmp_path, when):
    """SIGINT while it polls an unchanged run, or soon after a run appears (while it
    analyses or writes the report): exit code 0, one line on stderr, no temporary file,
    and whatever analysis and report are on disk are complete."""
    staged, _ = stopped_run
    run_dir = staged if when == "idle" else tmp_path / "appears"
    proc = _start_watch(run_dir)
    try:
        first = proc.stdout.readline()
        if when == "idle":
            assert first.startswith("epoch "), first
            assert proc.stdout.readline().startswith("  open file://")
            time.sleep(0.5)
        else:
            assert first.startswith("waiting for"), first
            os.rename(staged, run_dir)  # the whole run appears at once
            time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)  # generous: shared, loaded CI machines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.splitlines() == [f"stopped watching {run_dir}"]
    assert "Traceback" not in out
    assert not _temporaries(run_dir)
    if (run_dir / files.SUMMARY).exists():
        read_table(run_dir / files.ANALYSIS_TABLE)
        read_json(run_dir / files.SUMMARY)
    for page in (run_dir / files.FIGURES_DIR).glob("*.html"):
        assert page.read_text().rstrip().endswith("</html>"), page
