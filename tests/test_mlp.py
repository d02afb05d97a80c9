"""The mlp family on the token tasks: Gromov's planted quadratic solution, sparse-parity
measures on a planted network, training, resume and the stacked (batched) path."""

from __future__ import annotations

import math

import pytest
import torch

from grokinterp.errors import ConfigError
from grokinterp.measures.mlp import mlp_fourier, parity_measures
from grokinterp.models import get_family
from grokinterp.models.config import ToyConfig
from grokinterp.models.mlp import with_activation
from grokinterp.models.stacked import train_stacked
from grokinterp.models.train import train_toy
from grokinterp.run import load_run
from grokinterp.storage import read_metrics
from grokinterp.tasks import get_task
from grokinterp.toydata import make_toy_data, parity_relevant, sparse_parity


def gromov_weights(p: int, operation: str, freqs: tuple[int, ...], m: int = 6, scale=1.0):
    """Gromov (2023)'s analytic solution of the quadratic mlp, in the task's basis: per
    frequency k, m^2 units with input weights cos(w z_a + phi), cos(w z_b + psi) and output
    weights cos(w z_c + phi + psi) over group coordinates z (w = 2 pi k / n), the phases on
    an m x m grid so every term but cos(w (z_a + z_b - z_c)) averages out exactly."""
    basis = get_task(operation).basis(p)
    n, residue = basis.n, basis.residue
    z = torch.arange(n, dtype=torch.float64)
    W_in, W_out = [], []
    for k in freqs:
        w = 2 * math.pi * k / n
        for i in range(m):
            for j in range(m):
                phi, psi = 2 * math.pi * i / m, 2 * math.pi * j / m
                row = torch.zeros(2 * p, dtype=torch.float64)
                row[residue] = torch.cos(w * z + phi)
                row[p + residue] = torch.cos(w * z + psi)
                out = torch.zeros(p, dtype=torch.float64)
                out[residue] = torch.cos(w * z + phi + psi)
                W_in.append(row)
                W_out.append(out)
    W_in, W_out = torch.stack(W_in), torch.stack(W_out).T * scale
    params = {"W_in": W_in, "b_in": torch.zeros(len(W_in), dtype=torch.float64), "W_out": W_out}
    return with_activation(params, "quadratic")


@pytest.mark.parametrize(("p", "operation", "freqs"), [(23, "add", (2, 5, 9)), (23, "mul", (1, 4))])
def test_gromov_planted_solution_frequencies_and_restricted_loss(p, operation, freqs):
    params = gromov_weights(p, operation, freqs, scale=0.5)
    task = get_task(operation)
    grid = torch.arange(p * p)
    a, b = grid // p, grid % p
    # the network computes the task: argmax on every basis pair
    logits = get_family("mlp").forward(params, make_toy_data(ToyConfig(
        family="mlp", dataset="modular", p=p, operation=operation, width=1, frac_train=0.5
    )).x_train)  # fmt: skip
    assert logits.shape[-1] == p
    train, test = grid[: p * p // 2], grid[p * p // 2 :]
    out = mlp_fourier(params, p, operation, train, test)
    assert out["key_freqs"] == list(freqs)
    counts = out["neurons_per_freq"]
    assert [int(counts[k]) for k in freqs] == [36] * len(freqs) and int(counts[0]) == 0
    spectrum = out["embed_freq_norm"]  # only the planted frequencies carry weight
    off = [k for k in range(len(spectrum)) if k not in freqs]
    assert float(spectrum[off].abs().max()) < 1e-9 and float(spectrum[list(freqs)].min()) > 1
    assert out["restricted_loss"]["all"] == pytest.approx(out["full_loss"], rel=1e-9, abs=1e-12)
    assert out["full_loss"] < 0.1  # the solution is right, and confident
    assert out["excluded_loss"]["all"] > 10 * out["full_loss"]
    basis = task.basis(p)
    pairs = basis.pairs if basis.pairs is not None else grid
    from grokinterp.measures.mlp import mlp_hidden_all_pairs

    _, all_logits = mlp_hidden_all_pairs(params, p)
    answer = task.label(a, b, p)
    assert bool((all_logits[pairs].argmax(-1) == answer[pairs]).all())


def test_mlp_fourier_fails_on_wrong_frequencies():
    """The restricted loss to the wrong frequencies is no longer the full loss."""
    params = gromov_weights(23, "add", (2, 5, 9), scale=0.5)
    grid = torch.arange(23 * 23)
    out = mlp_fourier(params, 23, "add", grid[:200], grid[200:], key_freqs=(3, 4))
    assert out["restricted_loss"]["all"] > 2.0  # near log 23 = 3.1


def planted_parity(n_bits: int, relevant: tuple[int, ...], noise: float = 0.0):
    """A ReLU net computing the parity of 3 relevant bits from t = sum x_S:
    f(t) = 5 (-1 + relu(t + 3) - 2 relu(t + 1) + 2 relu(t - 1)) (+-5 on t = -3, -1, 1, 3)."""
    W_in = torch.zeros(4, n_bits, dtype=torch.float64)
    W_in[:3, list(relevant)] = 1.0
    W_in[:3] += noise * torch.ones(3, n_bits, dtype=torch.float64) * (
        torch.arange(n_bits) % 2 == 0
    ).double() * ~torch.isin(torch.arange(n_bits), torch.tensor(relevant))  # fmt: skip
    b_in = torch.tensor([3.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    W_out = 5 * torch.tensor([[1.0, -2.0, 2.0, -1.0]], dtype=torch.float64)
    return with_activation({"W_in": W_in, "b_in": b_in, "W_out": W_out}, "relu")


def test_parity_measures_on_a_planted_network():
    data = sparse_parity(10, 3, 200, 100, seed=4)
    assert data.relevant == parity_relevant(10, 3, 4) and len(data.relevant) == 3
    params = planted_parity(10, data.relevant)
    z = get_family("mlp").forward(params, data.x_test)
    assert bool((torch.sign(z) == data.y_test).all())
    out = parity_measures(params, data.relevant, data.x_test, data.y_test)
    assert out["relevant_weight_frac"] == pytest.approx(1.0)
    assert out["restricted_loss"] == pytest.approx(out["full_loss"]) and out["full_loss"] < 0.01
    assert out["excluded_loss"] == pytest.approx(math.log(2))  # t = 0 -> output 0
    # weight on the irrelevant bits: the fraction is exactly that mass's complement
    noisy = planted_parity(10, data.relevant, noise=0.5)
    frac = parity_measures(noisy, data.relevant, data.x_test, data.y_test)
    n_off = sum(1 for i in range(0, 10, 2) if i not in data.relevant)
    assert frac["relevant_weight_frac"] == pytest.approx(9 / (9 + 3 * n_off * 0.25))
    assert frac["restricted_loss"] == pytest.approx(out["full_loss"])  # noise columns removed


def tiny_mlp(**kw) -> ToyConfig:
    base = dict(family="mlp", dataset="modular", p=7, operation="add", frac_train=0.6, width=12,
                optimizer="adamw", lr=0.01, weight_decay=0.5, epochs=40, eval_every=5,
                checkpoints="every:20")  # fmt: skip
    return ToyConfig(**{**base, **kw})


def test_mlp_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="family 'mlp'"):
        ToyConfig(family="two-layer", dataset="modular", width=4)
    with pytest.raises(ConfigError, match="full batch"):
        tiny_mlp(optimizer="sgd")
    with pytest.raises(ConfigError, match="k_relevant"):
        tiny_mlp(dataset="sparse-parity", n_bits=4, k_relevant=5)
    with pytest.raises(ConfigError, match="activation"):
        tiny_mlp(activation="gelu")


def test_mlp_trains_resumes_and_analyses(tmp_path):
    from grokinterp.analysis import analyze_path

    cfg = tiny_mlp()
    run = train_toy(cfg, tmp_path / "a")
    assert run.epochs == [0, 20, 40]
    # resume after a cut: delete the last checkpoint, continue, same numbers
    cut = tmp_path / "b"
    train_toy(cfg.replace(epochs=20, checkpoints="every:20"), cut)
    import json

    (cut / "config.json").write_text(json.dumps(cfg.to_dict()))
    resumed = train_toy(None, cut, resume=True)
    a, b = run.model_at(40), resumed.model_at(40)
    assert all(torch.equal(a[k], b[k]) for k in a)
    summary = analyze_path(tmp_path / "a", frames=False)[str(tmp_path / "a")]
    assert "restricted_loss" not in summary["skipped_measures"]
    assert "mlp" in summary["mlp"]["kind"]
    assert isinstance(summary["key_frequencies"], list)


def test_sparse_parity_mlp_trains(tmp_path):
    cfg = ToyConfig(family="mlp", dataset="sparse-parity", n_bits=8, k_relevant=2, n_train=64,
                    n_test=32, width=16, optimizer="adamw", lr=0.01, weight_decay=0.1,
                    epochs=20, eval_every=5, checkpoints="every:10")  # fmt: skip
    run = train_toy(cfg, tmp_path / "parity")
    rows = read_metrics(run.path / "metrics.csv")
    assert rows[-1]["epoch"] == 20 and 0 <= rows[-1]["test_acc"] <= 1
    assert load_run(run.path).config.dataset == "sparse-parity"


def test_stacked_runs_equal_single_runs(tmp_path):
    settings = [(0.01, 0.5, 0, 0), (0.03, 0.1, 1, 3), (0.003, 1.0, 2, 0)]
    cfgs = [tiny_mlp(lr=lr, weight_decay=wd, init_seed=s, data_seed=s, stop_after_grok=st)
            for lr, wd, s, st in settings]  # fmt: skip
    errors = train_stacked(cfgs, [tmp_path / f"s{i}" for i in range(3)])
    assert set(errors.values()) == {None}
    for i, cfg in enumerate(cfgs):
        single = train_toy(cfg, tmp_path / f"r{i}")
        stacked = load_run(tmp_path / f"s{i}")
        assert stacked.epochs == single.epochs
        for e in single.epochs:
            x, y = stacked.model_at(e), single.model_at(e)
            for k in x:
                torch.testing.assert_close(x[k], y[k], rtol=1e-10, atol=1e-12)
        m1, m2 = (
            read_metrics(stacked.path / "metrics.csv"),
            read_metrics(single.path / "metrics.csv"),
        )
        assert [r["epoch"] for r in m1] == [r["epoch"] for r in m2]
        for r1, r2 in zip(m1, m2, strict=True):
            assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=1e-9)
            assert r1["test_acc"] == r2["test_acc"]


def test_a_toy_config_written_before_the_mlp_loads_unchanged():
    """Old toy configs lack the mlp's fields: they load with defaults that train as before,
    and keep their run names."""
    old = {"family": "two-layer", "dataset": "ridge", "width": 8, "m": 10, "n_train": 5,
           "weight_decay": 0.02, "init_seed": 3}  # fmt: skip
    cfg = ToyConfig.from_dict(old)
    assert cfg.optimizer == "gd" and cfg.stop_after_grok == 0 and cfg.loss == "squared"
    assert cfg.n_train_points == 5 and cfg.d_in == 10 and cfg.d_out == 1
    assert cfg.run_name == "ridge-two-layer-n5-m10-width8-init3-wd0.02"
    assert ToyConfig.from_dict(cfg.to_dict()) == cfg
