"""Sharpness: power iteration on Hessian-vector products, and the opt-in table measure."""

import shutil

import numpy as np
import pytest
import torch

from grokinterp import load_run, train
from grokinterp.analysis import analyze, read_table
from grokinterp.analysis.pipeline import boundary_checkpoints, costly_epochs
from grokinterp.cli import main
from grokinterp.data import make_dataset
from grokinterp.errors import OptionError
from grokinterp.forward import last_position
from grokinterp.measures.losses import cross_entropy
from grokinterp.measures.sharpness import (
    power_iteration,
    top_hessian_eigenvalue,
    train_loss_sharpness,
    trainable_keys,
)
from grokinterp.model import build_model
from grokinterp.storage import read_json
from tests.conftest import tiny_config

CFG = tiny_config(p=7, d_model=8, n_heads=2, d_head=4, d_mlp=8, frac_train=0.6)


def _spd(n: int, top: float, seed: int = 0) -> torch.Tensor:
    """A random symmetric matrix with eigenvalues linspace(-1, 0.8 top) and ``top``."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eig = torch.cat(
        [
            torch.linspace(0.1, 0.8 * top, n - 1, dtype=torch.float64),
            torch.tensor([top], dtype=torch.float64),
        ]
    )
    return q @ torch.diag(eig) @ q.T


def test_quadratic_loss_gives_its_top_eigenvalue():
    H = _spd(30, 7.5)
    value, used = top_hessian_eigenvalue(
        lambda x: 0.5 * x @ H @ x, torch.zeros(30, dtype=torch.float64), tol=1e-10, max_iter=1000
    )
    assert value == pytest.approx(7.5, rel=1e-6)
    assert 1 < used <= 1000
    diag = torch.diag(torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64))
    value, _ = top_hessian_eigenvalue(
        lambda x: 0.5 * x @ diag @ x, torch.ones(3, dtype=torch.float64), tol=1e-12, max_iter=2000
    )
    assert value == pytest.approx(3.0, rel=1e-8)


def test_a_dominant_negative_eigenvalue_still_gives_the_top_one():
    H = torch.diag(torch.tensor([-6.0, -1.0, 2.0, 0.5], dtype=torch.float64))
    dominant, _ = power_iteration(lambda v: H @ v, 4, tol=1e-12, max_iter=2000)
    assert dominant == pytest.approx(-6.0, rel=1e-8)
    top, _ = top_hessian_eigenvalue(
        lambda x: 0.5 * x @ H @ x, torch.zeros(4, dtype=torch.float64), tol=1e-12, max_iter=2000
    )
    assert top == pytest.approx(2.0, rel=1e-6)


def test_power_iteration_is_deterministic_and_stops_at_max_iter():
    H = _spd(20, 3.0, seed=1)
    first = power_iteration(lambda v: H @ v, 20, tol=0.0, max_iter=7)
    assert first == power_iteration(lambda v: H @ v, 20, tol=0.0, max_iter=7)
    assert first[1] == 7


def test_tiny_model_matches_the_full_hessian():
    data = make_dataset(CFG)
    state = {k: v.detach() for k, v in build_model(CFG).state_dict().items()}
    keys = trainable_keys(CFG)
    assert "blocks.0.attn.q.bias" not in keys and "blocks.0.mlp.in.bias" in keys
    shapes, sizes = [state[k].shape for k in keys], [state[k].numel() for k in keys]
    theta = torch.cat([state[k].double().flatten() for k in keys])
    fixed = {k: v.double() for k, v in state.items() if k not in keys}
    a, b = data.train_tokens[:, 0], data.train_tokens[:, 1]

    def loss(flat):
        w = {
            **fixed,
            **{k: t.view(s) for k, t, s in zip(keys, flat.split(sizes), shapes, strict=True)},
        }
        return cross_entropy(last_position(w, a, b, CFG.n_heads).logits, data.train_labels)

    full = torch.autograd.functional.hessian(loss, theta, vectorize=True)  # (n, n), n = 544
    expected = torch.linalg.eigvalsh(full)[-1].item()
    value, used = train_loss_sharpness(state, CFG, data, tol=1e-9, max_iter=2000)
    assert value == pytest.approx(expected, rel=1e-6)
    assert used > 2


def test_costly_epochs_and_boundaries():
    assert sorted(costly_epochs([0, 10, 20, 30, 40], 2)) == [0, 20, 40]
    assert sorted(costly_epochs([0, 10, 20, 30], 2)) == [0, 20, 30]  # the last always
    assert sorted(costly_epochs([0, 10], 1)) == [0, 10]
    summary = {"phases": {"T_mem": {"epoch": 15}, "T_grok": {"epoch": None}, "x": {"epoch": 30}}}
    assert boundary_checkpoints(summary, [0, 10, 20, 30]) == {20, 30}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(CFG.replace(epochs=60, checkpoints="every:10"), out)
    return out


def test_sharpness_is_opt_in_and_sparse(trained, tmp_path):
    run_dir = tmp_path / "tiny"
    shutil.copytree(trained, run_dir)
    table = analyze(run_dir)
    assert "sharpness" not in set(table["measure"])
    assert read_json(run_dir / "summary.json")["final"]["sharpness"] is None
    table = analyze(run_dir, measures=["default", "sharpness"], sharpness_every=3)
    sharp = table[(table.measure == "sharpness") & (table.key == "")]
    epochs = load_run(run_dir).epochs  # 0, 10, ..., 60
    summary = read_json(run_dir / "summary.json")
    expected = costly_epochs(epochs, 3) | boundary_checkpoints(summary, epochs)
    assert set(sharp["epoch"]) == expected and len(expected) < len(epochs)
    assert np.isfinite(sharp["value"]).all()
    assert summary["final"]["sharpness"] == pytest.approx(sharp["value"].iloc[-1])
    run = load_run(run_dir)
    at = int(sharp["epoch"].iloc[1])
    direct, _ = train_loss_sharpness(run.state_dict_at(at), run.config, run.dataset)
    assert sharp["value"].iloc[1] == pytest.approx(direct, rel=1e-9)
    # a default analysis afterwards keeps the stored sharpness rows; the table round-trips
    again = analyze(run_dir)
    assert set(again[again.measure == "sharpness"]["epoch"]) == expected
    wide = read_table(run_dir).pivot_table(index="epoch", columns="measure", values="value")
    assert wide["sharpness"].isna().sum() == len(epochs) - len(expected)


def test_bad_sharpness_options(trained, tmp_path, capsys):
    run_dir = tmp_path / "tiny"
    shutil.copytree(trained, run_dir)
    with pytest.raises(OptionError, match="sharpness_every"):
        analyze(run_dir, measures=["sharpness"], sharpness_every=0)
    with pytest.raises(OptionError, match="unknown measure"):
        analyze(run_dir, measures=["sharpnes"])
    code = main(
        ["analyze", str(run_dir), "--measures", "sharpness", "--sharpness-every", "4", "--quiet"]
    )
    assert code == 0
    sharp = read_table(run_dir).query("measure == 'sharpness' and key == ''")
    assert {0, 40, 60} <= set(sharp["epoch"])
    assert main(["analyze", str(run_dir), "--sharpness-every", "0", "--quiet"]) == 2
    assert "sharpness_every must be >= 1" in capsys.readouterr().err


def test_bench_sharpness_reports_seconds_per_checkpoint():
    from grokinterp.bench import bench_sharpness, format_bench_sharpness

    result = bench_sharpness(CFG, n_checkpoints=1)
    assert result["p"] == 7 and result["n_params"] == 544 and result["s_per_checkpoint"] > 0
    assert 1 <= result["iterations"][0] <= result["max_iter"]
    assert "s/checkpoint" in format_bench_sharpness(result)
