"""The toy model families of the seeds: registry, data, optimisers, runs, bound, exact path."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from grokinterp import files, train
from grokinterp.analysis import analyze_path
from grokinterp.decay_law import fit_inverse_lambda_law, ridge_bound
from grokinterp.errors import ConfigError, RunExistsError
from grokinterp.models import FAMILIES, TOY_MEASURES, get_family
from grokinterp.models.config import ToyConfig, config_from_dict
from grokinterp.models.train import ToyTrainer, loss_and_derivative
from grokinterp.ridge_path import exact_losses
from grokinterp.run import load_run
from grokinterp.storage import read_metrics
from grokinterp.toydata import competing_features, make_toy_data, ridge_data


def small_ridge(**kw) -> ToyConfig:
    base = dict(m=30, n_train=8, n_test=50, epochs=60, lr=0.05, weight_decay=0.05,
                checkpoints="every:20")  # fmt: skip
    return ToyConfig(**{**base, **kw})


# -- registry ------------------------------------------------------------------------------


def test_registry_declares_each_family():
    assert set(FAMILIES) == {"transformer", "linear", "random-features", "two-layer", "mlp"}
    assert get_family("transformer").measures is None  # every measure; the task decides
    for name in ("linear", "random-features", "two-layer"):
        family = get_family(name)
        assert family.applies("weight_norm_sq") and family.skip_reason("test_loss") is None
        assert "token embeddings" in family.skip_reason("attn_to")
    cfg = ToyConfig(family="random-features", width=7, m=5)
    assert get_family("random-features").parameters(cfg) == {"W": (7, 5), "a": (7,)}
    assert get_family("random-features").trained(cfg) == ("a",)
    assert get_family("two-layer").trained(cfg.replace(family="two-layer")) == ("W", "a")
    with pytest.raises(ConfigError, match="family must be one of"):
        get_family("cnn")


def test_transformer_family_is_the_model_of_today():
    from grokinterp.config import RunConfig
    from grokinterp.model import build_model

    cfg = RunConfig(p=7, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    family = get_family("transformer")
    model = family.init(cfg)
    ref = build_model(cfg)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert family.parameters(cfg) == {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert config_from_dict({"family": "transformer", "p": 7}) == RunConfig(p=7)


@pytest.mark.parametrize("family", ["linear", "random-features", "two-layer"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_analytic_gradients_equal_autograd(family, loss):
    cfg = ToyConfig(family=family, width=0 if family == "linear" else 6, m=5, n_train=4)
    data = make_toy_data(cfg)
    fam = get_family(family)
    params = fam.init(cfg, torch.Generator().manual_seed(3))
    y = data.y_train.sign() if loss == "logistic" else data.y_train
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    value, _ = loss_and_derivative(fam.forward(leaves, data.x_train), y, loss)
    value.backward()
    _, dz = loss_and_derivative(fam.forward(params, data.x_train), y, loss)
    grads = fam.grad(params, data.x_train, dz)
    for name in fam.trained(cfg):
        torch.testing.assert_close(grads[name], leaves[name].grad, rtol=1e-12, atol=1e-12)


# -- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"family": "linear", "width": 3}, "width is for the networks"),
        ({"family": "two-layer"}, "width must be >= 1"),
        ({"dataset": "mnist"}, "dataset must be one of"),
        ({"spectrum": "spiked"}, "needs spike_dims >= 1"),
        ({"optimizer": "sgd", "lr": 2.0, "weight_decay": 1.0}, "must be < 1"),
        ({"exact_path": True, "optimizer": "sgd"}, "exact_path is the closed form"),
        ({"c": 0.0}, "c must be > 0"),
        ({"lr": "fast"}, "must be of type float"),
    ],
)
def test_bad_toy_configs_are_one_line_errors(fields, match):
    with pytest.raises(ConfigError, match=match) as err:
        ToyConfig(**fields)
    assert "\n" not in str(err.value)


def test_toy_config_round_trips_and_names_itself():
    cfg = ToyConfig(weight_decay=0.02, init_seed=3)
    assert ToyConfig.from_dict(cfg.to_dict()) == cfg
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.run_name == "ridge-linear-init3-wd0.02"
    with pytest.raises(ConfigError, match="unknown ToyConfig field"):
        ToyConfig.from_dict({"family": "linear", "d_model": 7})


# -- data ----------------------------------------------------------------------------------


def test_competing_features_is_a_pure_function_with_one_hot_memorisation():
    a, b = competing_features(6, 5, 3, seed=1), competing_features(6, 5, 3, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, competing_features(6, 5, 3, seed=2).x_train)
    assert torch.equal(a.x_train[:, 3:], torch.eye(6, dtype=torch.float64))
    assert torch.all(a.x_test[:, 3:] == 0)
    assert set(a.y_train.tolist()) <= {-1.0, 1.0}
    assert a.blocks == {"signal": (0, 3), "memorisation": (3, 9)}
    # the labels are the sign of one fixed direction of the signal features, train and test
    x = torch.cat([a.x_train[:, :3], a.x_test[:, :3]])
    y = torch.cat([a.y_train, a.y_test])
    w = torch.linalg.lstsq(x, y).solution
    assert ((x @ w).sign() == y).all()


def test_ridge_data_spectrum_and_targets():
    d = ridge_data(500, 10, 4, seed=0, spectrum="spiked", spike_dims=2, spike_value=0.25,
                   theta_norm=2.0)  # fmt: skip
    assert d.facts["lambda_min_sigma"] == 0.25 and d.facts["lambda_max_sigma"] == 1.0
    assert math.isclose(float(d.theta_star.norm()), 2.0)
    torch.testing.assert_close(d.x_train @ d.theta_star, d.y_train)  # no noise
    var = d.x_train.var(0)
    assert 0.15 < var[:2].max() < 0.35 and 0.8 < var[2:].min() < 1.2


# -- optimisers: hand computations ---------------------------------------------------------


def test_decoupled_sgd_matches_two_hand_steps():
    """Two steps of batch-1 SGD on logistic loss: decay, then the gradient at the decayed w."""
    cfg = ToyConfig(dataset="competing-features", n_train=2, n_test=2, d_sig=1,
                    optimizer="sgd", lr=0.5, weight_decay=0.2, init_scale=0.0)  # fmt: skip
    data = make_toy_data(cfg)
    for fast in (True, False):
        trainer = ToyTrainer(cfg, data, fast=fast)
        trainer.params["w"] = torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64)
        from grokinterp.schedule import epoch_generator

        order = torch.randperm(2, generator=epoch_generator(cfg.init_seed, 0, 1)).tolist()
        w = [0.3, -0.1, 0.2]
        for i in order:
            x = [float(data.x_train[i, 0]), 1.0 if i == 0 else 0.0, 1.0 if i == 1 else 0.0]
            y = float(data.y_train[i])
            w = [(1 - 0.5 * 0.2) * v for v in w]
            z = sum(a * b for a, b in zip(w, x, strict=True))
            g = -y / (1 + math.exp(y * z))
            w = [v - 0.5 * g * xj for v, xj in zip(w, x, strict=True)]
        trainer.step_epoch(0)
        np.testing.assert_allclose(trainer.params["w"].numpy(), w, rtol=1e-14)


def test_full_batch_gd_matches_two_hand_steps():
    cfg = small_ridge(m=3, n_train=2, lr=0.1, weight_decay=0.5)
    data = make_toy_data(cfg)
    trainer = ToyTrainer(cfg, data)
    X, y = data.x_train.numpy(), data.y_train.numpy()
    w = trainer.params["w"].numpy().copy()
    for _ in range(2):
        grad = 2 / 2 * X.T @ (X @ w - y) + 2 * 0.5 * w
        w = w - 0.1 * grad
    trainer.step_epoch(0)
    trainer.step_epoch(1)
    np.testing.assert_allclose(trainer.params["w"].numpy(), w, rtol=1e-13)


def test_ridge_gd_converges_to_the_closed_form_solution():
    cfg = small_ridge(lr=0.05, weight_decay=0.1)
    data = make_toy_data(cfg)
    trainer = ToyTrainer(cfg, data)
    for e in range(3000):
        trainer.step_epoch(e)
    X, y = data.x_train.numpy(), data.y_train.numpy()
    n, m = X.shape
    solution = np.linalg.solve(X.T @ X / n + 0.1 * np.eye(m), X.T @ y / n)
    np.testing.assert_allclose(trainer.params["w"].numpy(), solution, rtol=1e-9, atol=1e-12)


# -- exact path and bound ------------------------------------------------------------------


@pytest.mark.parametrize("spectrum", [{}, {"spectrum": "spiked", "spike_dims": 5,
                                           "spike_value": 4.0}])  # fmt: skip
def test_exact_ridge_path_equals_the_iterative_run(spectrum):
    cfg = small_ridge(epochs=400, init_scale=2.0, **spectrum)
    data = make_toy_data(cfg)
    trainer = ToyTrainer(cfg, data)
    rows = []
    for e in range(cfg.epochs + 1):
        rows.append(trainer.row(e, True))
        if e < cfg.epochs:
            trainer.step_epoch(e)
    _, train_loss, test_loss = exact_losses(cfg, data)
    np.testing.assert_allclose(train_loss, [r["train_loss"] for r in rows], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(test_loss, [r["test_loss"] for r in rows], rtol=1e-9)


def test_exact_path_run_matches_the_iterative_run(tmp_path):
    cfg = small_ridge(epochs=200, c=5.0)
    it = train(cfg, tmp_path / "it")
    ex = train(cfg.replace(exact_path=True), tmp_path / "ex")
    a, b = it.metrics, ex.metrics
    for col in ("train_loss", "test_loss", "train_acc", "test_acc"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-14)
    for e in it.epochs:
        torch.testing.assert_close(it.model_at(e)["w"], ex.model_at(e)["w"], rtol=1e-9, atol=1e-12)


def test_bound_matches_a_hand_computed_case():
    # (m - n) nu^2 / 2 = 96 * 0.25 / 2 = 12; sqrt(c / lambda_min) + |theta*| = sqrt(0.5/2) + 1.5 = 2
    # ln(12 / 4) / (4 * 0.1 * 0.01) = ln 3 * 250
    value = ridge_bound(m=100, n=4, nu=0.5, lambda_min=2.0, theta_norm=1.5, c=0.5, lr=0.1,
                        lam=0.01)  # fmt: skip
    assert value == pytest.approx(250 * math.log(3), rel=1e-12)
    assert ridge_bound(100, 4, 0.5, 2.0, 1.5, 0.5, 0.1, 0.0) == math.inf
    with pytest.raises(ValueError, match="m > n"):
        ridge_bound(4, 4, 1, 1, 1, 1, 0.1, 0.1)


def test_inverse_lambda_law_recovers_a_planted_slope():
    lams = np.array([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
    fit = fit_inverse_lambda_law(lams, 7.0 * (1 / lams) ** 0.8)
    assert fit["slope"] == pytest.approx(0.8) and fit["r2"] == pytest.approx(1.0)
    fit = fit_inverse_lambda_law([*lams, 0.1], [*(3 / lams), np.nan])
    assert fit["n_left_out"] == 1 and fit["slope_ci"][0] <= 1 <= fit["slope_ci"][1] + 1e-9


# -- runs ----------------------------------------------------------------------------------


def test_a_toy_run_is_an_ordinary_run_directory(tmp_path):
    cfg = ToyConfig(dataset="competing-features", n_train=16, n_test=16, optimizer="sgd",
                    lr=0.05, weight_decay=1e-3, init_scale=0.0, epochs=30,
                    checkpoints="every:10")  # fmt: skip
    run = train(cfg, tmp_path / "cf")
    for name in (files.CONFIG, files.DATA, files.METRICS, files.OPTIMIZER):
        assert (run.path / name).is_file()
    opened = load_run(run.path)
    assert opened.config == cfg and opened.epochs == [0, 10, 20, 30]
    assert opened.model_at(30)["w"].dtype == torch.float64
    summary = analyze_path(run.path)[str(run.path)]
    assert summary["bound"]["value"] is None and "ridge" in summary["bound"]["reason"]
    assert set(summary["skipped_measures"]) and "attn_to" in summary["skipped_measures"]
    assert {"w.signal", "w.memorisation", "total"} <= set(summary["weight_norm_sq_final"])
    final = summary["weight_norm_sq_final"]
    assert final["w.signal"] + final["w.memorisation"] == pytest.approx(final["total"])
    with pytest.raises(RunExistsError, match="already holds a run"):
        train(cfg, tmp_path / "cf")


def _cli(*args):
    return [sys.executable, "-m", "grokinterp", "train", *args]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["linear", "two-layer"])
def test_killed_toy_run_resumes_byte_exact(tmp_path, family):
    config = tmp_path / "toy.json"
    width = 0 if family == "linear" else 16
    cfg = ToyConfig(family=family, width=width, dataset="competing-features",
                    n_train=64, n_test=64, optimizer="sgd", lr=0.05, weight_decay=1e-2,
                    init_scale=0.0 if family == "linear" else 0.5, epochs=400,
                    checkpoints="every:20")  # fmt: skip
    config.write_text(cfg.to_json())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(_cli("--config", str(config), "--out", str(reference), "--quiet"), check=True,
                   env=env)  # fmt: skip
    proc = subprocess.Popen(_cli("--config", str(config), "--out", str(killed), "--quiet"), env=env)
    ckpts = killed / files.CHECKPOINT_DIR
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and len(list(ckpts.glob("*.safetensors"))) >= 4:
            break
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(ckpts.glob("*.safetensors"))) < 21, "finished before the kill; kill sooner"
    subprocess.run(_cli("--resume", str(killed), "--quiet"), check=True, env=env)
    ref, res = load_run(reference), load_run(killed)
    assert ref.epochs == res.epochs and len(ref.epochs) == 21
    for e in ref.epochs:
        a = files.checkpoint_path(reference, e).read_bytes()
        assert a == files.checkpoint_path(killed, e).read_bytes(), e
    assert (reference / files.METRICS).read_bytes() == (killed / files.METRICS).read_bytes()
    assert read_metrics(killed / files.METRICS)[-1]["epoch"] == 400


def test_cli_trains_a_toy_config_and_refuses_transformer_fields(tmp_path, capsys):
    from grokinterp.cli import main

    config = tmp_path / "toy.json"
    config.write_text(small_ridge(epochs=20).to_json())
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert load_run(tmp_path / "r").metrics["epoch"][-1] == 20
    assert main(["train", "--config", str(config), "--d-model", "64", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "unknown ToyConfig field(s) ['d_model']" in err and len(err.strip().splitlines()) == 1


def test_toy_measures_are_the_declared_ones():
    assert TOY_MEASURES[:4] == ("train_loss", "test_loss", "train_acc", "test_acc")


def test_a_diverging_toy_run_stops_with_a_one_line_error(tmp_path):
    cfg = small_ridge(lr=5.0, epochs=200)  # far above 1 / lambda_max of X^T X / n
    with pytest.raises(FloatingPointError, match="diverged; lower lr") as err:
        train(cfg, tmp_path / "it")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="stability limit") as err:
        train(cfg.replace(exact_path=True), tmp_path / "ex")
    assert "\n" not in str(err.value)


def test_the_summary_of_a_ridge_run_holds_its_bound_and_prints_it(tmp_path):
    from grokinterp.analysis import format_summary

    cfg = small_ridge(epochs=2000, c=5.0, exact_path=True, checkpoints="log:10")
    run = train(cfg, tmp_path / "r")
    summary = analyze_path(run.path)[str(run.path)]
    bound = summary["bound"]
    expected = ridge_bound(30, 8, 1.0, 1.0, 1.0, 5.0, 0.05, 0.05)
    assert bound["value"] == pytest.approx(expected) and bound["inputs"]["m"] == 30
    assert summary["t_generalise"] == summary["phases"]["T_grok"]["epoch"]
    assert bound["holds"] == (summary["t_generalise"] >= expected)
    text = format_summary(summary)
    assert "linear on ridge" in text and "ridge bound" in text
