import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from grokinterp import files
from grokinterp.cli import main
from grokinterp.config import ConfigError, RunConfig
from grokinterp.model import build_model
from grokinterp.run import load_run
from grokinterp.schedule import checkpoint_epochs
from grokinterp.storage import RunFileError, atomic_write_text, read_metrics
from grokinterp.training import RunExistsError, train
from tests.conftest import tiny_config


def test_run_directory_describes_itself(tiny_run):
    cfg = tiny_run.config
    assert tiny_run.epochs == checkpoint_epochs(cfg.checkpoints, cfg.epochs) == [0, 20, 40, 60]
    assert tiny_run.train_idx.numel() == cfg.n_train
    m = tiny_run.metrics
    assert list(m["epoch"]) == list(range(cfg.epochs + 1))
    assert not np.isnan(m["train_loss"]).any()
    evaluated = ~np.isnan(m["test_loss"])
    expected = (m["epoch"] % cfg.eval_every == 0) | np.isin(m["epoch"], tiny_run.epochs)
    assert np.array_equal(evaluated, expected)
    assert np.array_equal(evaluated, ~np.isnan(m["train_acc"]))
    assert m["train_loss"][-1] < m["train_loss"][0]


def test_checkpoints_are_snapshots_not_live_references(tiny_run):
    first, last = tiny_run.state_dict_at(0), tiny_run.state_dict_at(60)
    init = build_model(tiny_run.config).state_dict()
    assert all(torch.equal(first[k], init[k]) for k in init)
    assert not torch.equal(first["embed.weight"], last["embed.weight"])
    assert all(v.dtype == torch.float32 for v in last.values())


def test_model_at_reproduces_logged_loss(tiny_run):
    model = tiny_run.model_at(40)
    ds = tiny_run.dataset
    logits = model(ds.train_tokens)[:, -1].double()
    loss = torch.nn.functional.cross_entropy(logits, ds.train_labels).item()
    logged = tiny_run.metrics["train_loss"][40]
    assert loss == pytest.approx(logged, rel=1e-5)


def test_reference_forward_trains_like_the_fast_path(tmp_path):
    fast = train(tiny_config(epochs=20, checkpoints="every:20"), tmp_path / "fast")
    slow = train(tiny_config(epochs=20, checkpoints="every:20", fast_path=False), tmp_path / "slow")
    np.testing.assert_allclose(fast.metrics["train_loss"], slow.metrics["train_loss"], rtol=1e-4)
    a, b = fast.state_dict_at(20), slow.state_dict_at(20)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-3)


def test_refuses_to_overwrite_a_different_run(tmp_path, tiny_run):
    out = tmp_path / "run"
    train(tiny_config(epochs=5), out)
    with pytest.raises(RunExistsError, match="different run.*epochs"):
        train(tiny_config(epochs=6), out)
    with pytest.raises(RunExistsError, match="--resume"):
        train(tiny_config(epochs=5), out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not empty"):
        train(tiny_config(epochs=5), tmp_path / "other")


# --- resume -------------------------------------------------------------------------------

RESUME_ARGS = [
    "--p",
    "11",
    "--frac-train",
    "0.5",
    "--d-model",
    "32",
    "--n-heads",
    "2",
    "--d-head",
    "16",
    "--d-mlp",
    "64",
    "--epochs",
    "600",
    "--checkpoints",
    "every:25",
    "--eval-every",
    "5",
    "--quiet",
]


def _cli(*args):
    return [sys.executable, "-m", "grokinterp", "train", *args]


def _files_equal(a, b):
    return a.read_bytes() == b.read_bytes()


def _kill_and_resume(tmp_path, args, kill_after_checkpoints, n_checkpoints=None):
    """Train ``args`` uninterrupted and killed-then-resumed; assert byte-identical runs.

    n_checkpoints: how many checkpoints the finished run has; None reads it from the
    uninterrupted run (where the run ends depends on T_grok, which moves across machines).
    """
    reference = tmp_path / "reference"
    subprocess.run(_cli(*args, "--out", str(reference)), check=True)
    if n_checkpoints is None:
        n_checkpoints = len(load_run(reference).epochs)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(killed)))
    ckpt_dir = killed / files.CHECKPOINT_DIR
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (
            ckpt_dir.is_dir()
            and len(list(ckpt_dir.glob("*.safetensors"))) >= kill_after_checkpoints
        ):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list(ckpt_dir.glob("*.safetensors")))
    assert n_before < n_checkpoints, "the run finished before it could be killed; kill it sooner"

    subprocess.run(_cli("--resume", str(killed), "--quiet"), check=True)
    ref_run, resumed = load_run(reference), load_run(killed)
    assert len(ref_run.epochs) == n_checkpoints
    assert resumed.epochs == ref_run.epochs
    for epoch in ref_run.epochs:
        assert _files_equal(
            files.checkpoint_path(reference, epoch), files.checkpoint_path(killed, epoch)
        ), epoch
    assert _files_equal(reference / files.OPTIMIZER, killed / files.OPTIMIZER)
    assert read_metrics(killed / files.METRICS) == read_metrics(reference / files.METRICS)
    assert not list(killed.rglob("*.tmp"))
    return n_before, ref_run


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_checkpoints", [2, 9])
def test_killed_and_resumed_run_is_bitwise_identical(tmp_path, kill_after_checkpoints):
    _kill_and_resume(tmp_path, RESUME_ARGS, kill_after_checkpoints, n_checkpoints=25)


@pytest.mark.slow
def test_killed_and_resumed_run_with_training_options_is_bitwise_identical(tmp_path):
    """The optimiser, Grokfast and RNG state of the training options survive a real kill
    (tests/test_training_options.py covers each option alone, in-process)."""
    options = ["--optimizer", "adam", "--weight-decay", "0.01", "--dropout", "0.1"]
    options += ["--grokfast", "ma", "--grokfast-window", "5", "--batch-size", "20"]
    args = [*RESUME_ARGS[:RESUME_ARGS.index("--epochs")], "--epochs", "150", "--checkpoints",
            "every:10", "--eval-every", "5", "--quiet", *options]  # fmt: skip
    _kill_and_resume(tmp_path, args, kill_after_checkpoints=4, n_checkpoints=16)


# --- stop_after_grok ----------------------------------------------------------------------

# Groks in a few hundred epochs (T_mem 45, T_grok 125 to 135 depending on the machine's
# float rounding): p = 23, 80% of pairs, lr 3e-2.
GROKKING = dict(
    p=23, frac_train=0.8, lr=3e-2, d_model=32, n_heads=2, d_head=16, d_mlp=128, eval_every=5
)


def _t_grok(run):
    m = run.metrics
    hit = m["epoch"][np.nan_to_num(m["test_acc"]) >= 0.99]
    return int(hit[0]) if len(hit) else None


@pytest.mark.slow
def test_stop_after_grok_ends_the_run_n_epochs_after_t_grok(tmp_path):
    full = train(RunConfig(**GROKKING, epochs=220, checkpoints="every:5"), tmp_path / "full")
    t_grok = _t_grok(full)
    assert t_grok is not None and t_grok + 30 < 220, "this config should grok early"
    cfg = RunConfig(**GROKKING, epochs=220, checkpoints="every:5", stop_after_grok=30)
    stopped = train(cfg, tmp_path / "stopped")
    end = t_grok + 30
    assert stopped.end_epoch == end and stopped.is_complete
    assert stopped.epochs == [e for e in full.epochs if e <= end]
    assert list(stopped.metrics["epoch"]) == list(range(end + 1))
    # The stop only moves where the loop ends: the same training bit for bit up to there,
    # and the final checkpoint is the model after `end` steps.
    for epoch in stopped.epochs:
        assert _files_equal(
            files.checkpoint_path(full.path, epoch), files.checkpoint_path(stopped.path, epoch)
        ), epoch
    rows, ref = read_metrics(stopped.path / files.METRICS), read_metrics(full.path / files.METRICS)
    assert rows[:-1] == ref[:end]
    assert rows[-1]["train_loss"] == pytest.approx(ref[end]["train_loss"], rel=1e-12)
    assert rows[-1]["test_acc"] == ref[end]["test_acc"]


def test_stop_after_grok_without_grokking_trains_to_the_cap(tmp_path):
    run = train(tiny_config(stop_after_grok=10), tmp_path / "run")
    assert _t_grok(run) is None
    assert run.end_epoch == run.config.epochs == run.epochs[-1] and run.is_complete
    assert run.metrics["epoch"][-1] == run.config.epochs


def test_stop_after_grok_must_not_be_negative():
    with pytest.raises(ConfigError, match="stop_after_grok must be >= 0"):
        tiny_config(stop_after_grok=-1)


GROKKING_ARGS = [
    *("--p", "23", "--frac-train", "0.8", "--lr", "0.03", "--d-model", "32", "--n-heads", "2"),
    *("--d-head", "16", "--d-mlp", "128", "--eval-every", "5", "--epochs", "600"),
    *("--checkpoints", "every:25", "--stop-after-grok", "200", "--quiet"),
]


@pytest.mark.slow
def test_a_stopped_run_killed_after_t_grok_resumes_bitwise_identical(tmp_path):
    # Killed after the checkpoint at epoch 175 > T_grok (125 to 135, by machine): the
    # resumed run must find T_grok in its kept metrics and stop at the same epoch,
    # T_grok + 200.
    n_before, ref = _kill_and_resume(tmp_path, GROKKING_ARGS, 8)
    t_grok = _t_grok(ref)
    assert t_grok is not None and ref.epochs[-1] == t_grok + 200
    assert (n_before - 1) * 25 > t_grok


# --- atomic writes and bad files ----------------------------------------------------------


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    atomic_write_text(target, "old")

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new" * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_truncated_checkpoint_gives_a_clear_error(tmp_path, tiny_run):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.path, run_dir)
    path = files.checkpoint_path(run_dir, 20)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RunFileError, match=r"epoch_000020\.safetensors.*truncated"):
        load_run(run_dir).state_dict_at(20)


def test_foreign_checkpoint_gives_a_clear_error(tmp_path, tiny_run):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.path, run_dir)
    path = files.checkpoint_path(run_dir, 40)
    save_file({"x": torch.zeros(2)}, str(path))
    with pytest.raises(RunFileError, match=r"epoch_000040\.safetensors.*not a grokinterp"):
        load_run(run_dir).model_at(40)


def test_missing_files_give_clear_errors(tmp_path, tiny_run):
    with pytest.raises(RunFileError, match="no such run directory"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFileError, match="not a grokinterp run directory"):
        load_run(tmp_path / "empty")
    with pytest.raises(RunFileError, match="no checkpoint at epoch 7.*0, 20, 40, 60"):
        tiny_run.state_dict_at(7)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / files.CONFIG).write_text('{"p": 11, "epo')
    with pytest.raises(RunFileError, match=r"config\.json.*not valid JSON"):
        load_run(bad)
    (bad / files.CONFIG).write_text('{"p": 4}')
    with pytest.raises(RunFileError, match=r"config\.json.*RunConfig\.p"):
        load_run(bad)


def test_metrics_reader_ignores_a_cut_off_last_line(tmp_path, tiny_run):
    text = (tiny_run.path / files.METRICS).read_text()
    path = tmp_path / files.METRICS
    path.write_text(text + "61,0.001,0.5")
    assert read_metrics(path) == read_metrics(tiny_run.path / files.METRICS)


# --- CLI ------------------------------------------------------------------------------------


def test_cli_reports_bad_config_without_traceback(capsys):
    assert main(["train", "--p", "2"]) == 2
    err = capsys.readouterr().err
    assert "RunConfig.p must be >= 3" in err and "Traceback" not in err


def test_cli_config_file_with_overrides(tmp_path, capsys):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(tiny_config(epochs=8).to_json())
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(cfg_file), "--epochs", "10", "--out", str(out), "--quiet"])
        == 0
    )
    assert load_run(out).config == tiny_config(epochs=10)
    assert main(["train", "--config", str(cfg_file), "--out", str(out), "--quiet"]) == 2
    assert "different run" in capsys.readouterr().err


def test_cli_default_out_dir_is_named_after_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "train",
                "--p",
                "7",
                "--epochs",
                "3",
                "--d-model",
                "16",
                "--d-head",
                "4",
                "--d-mlp",
                "16",
                "--quiet",
            ]
        )
        == 0
    )
    name = RunConfig(p=7, epochs=3, d_model=16, d_head=4, d_mlp=16).run_name
    assert name == "add-p7-paper-init999-data598-d_model16-d_head4-d_mlp16"
    assert load_run(tmp_path / "checkpoints" / name).is_complete


@pytest.mark.slow
def test_default_size_training_is_reproducible_across_processes(tmp_path):
    # At p = 113 the backward of the fast path's lookups is only reproducible between
    # processes with deterministic algorithms on (tiny configs do not show the problem).
    args = ["--epochs", "3", "--checkpoints", "list:2,3", "--quiet"]
    for name in ("one", "two"):
        subprocess.run(_cli(*args, "--out", str(tmp_path / name)), check=True)
    for epoch in (2, 3):
        assert _files_equal(
            files.checkpoint_path(tmp_path / "one", epoch),
            files.checkpoint_path(tmp_path / "two", epoch),
        ), epoch


def test_train_restores_the_deterministic_algorithms_setting(tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    train(tiny_config(epochs=2), tmp_path / "run")
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_run_written_before_init_existed_reads_as_native(tmp_path, tiny_run):
    import shutil

    from grokinterp import files
    from grokinterp.run import read_config

    old = tmp_path / "old"
    shutil.copytree(tiny_run.path, old)
    data = json.loads((old / files.CONFIG).read_text())
    del data["init"], data["init_scale"]
    (old / files.CONFIG).write_text(json.dumps(data))
    assert read_config(old) == tiny_run.config.replace(init="native")


@pytest.mark.slow
def test_stop_after_grok_delays_runs_on_a_multiple_of_the_delay(tmp_path):
    # GROKKING: T_mem 45, T_grok 135, so one delay is 90 epochs; 0.5 delays = 45 > 30.
    full = train(RunConfig(**GROKKING, epochs=220, checkpoints="every:5"), tmp_path / "full")
    m = full.metrics
    t_mem = int(m["epoch"][np.nan_to_num(m["train_acc"]) >= 0.99][0])
    t_grok = _t_grok(full)
    end = t_grok + max(30, int(np.ceil(0.5 * (t_grok - t_mem))))
    assert end < 220 and end > t_grok + 30, "this config should have a delay over 60 epochs"
    cfg = RunConfig(
        **GROKKING,
        epochs=220,
        checkpoints="every:5",
        stop_after_grok=30,
        stop_after_grok_delays=0.5,
    )
    stopped = train(cfg, tmp_path / "stopped")
    assert stopped.end_epoch == end and stopped.is_complete
    assert stopped.epochs[-1] == end and stopped.metrics["epoch"][-1] == end
    # Killed after T_grok and resumed, it stops at the same epoch (T_mem, T_grok read back).

    def kill(row):
        if row["epoch"] == t_grok + 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed", on_epoch=kill)
    resumed = train(None, tmp_path / "resumed", resume=True)
    assert resumed.end_epoch == end and resumed.epochs == stopped.epochs


def test_stop_after_grok_delays_alone_and_its_bounds():
    from grokinterp.schedule import end_epoch

    assert end_epoch(0, 25000, 8000, delays=1.0, t_mem=100) == 15900
    assert end_epoch(0, 25000, 8000, delays=0.5, t_mem=100) == 11950
    assert end_epoch(2000, 25000, 8000, delays=0.1, t_mem=100) == 10000  # the later stop
    assert end_epoch(0, 12000, 8000, delays=1.0, t_mem=100) == 12000  # the cap
    assert end_epoch(0, 12000, None, delays=1.0, t_mem=100) == 12000  # not grokked
    assert end_epoch(0, 12000, 8000) == 12000  # both off
    with pytest.raises(ConfigError, match="stop_after_grok_delays must be a finite number"):
        tiny_config(stop_after_grok_delays=-1.0)
    with pytest.raises(ConfigError, match="stop_after_grok_delays must be a finite number"):
        tiny_config(stop_after_grok_delays=float("inf"))
