import json
from pathlib import Path

import pytest
import torch

from grokinterp import files
from grokinterp.config import RunConfig
from grokinterp.sweep.manifest import read_manifest, run_dir
from grokinterp.training import train


def tiny_config(**changes) -> RunConfig:
    """A run small enough to train in about a second."""
    base = dict(
        p=11,
        frac_train=0.5,
        d_model=32,
        n_heads=2,
        d_head=16,
        d_mlp=64,
        epochs=60,
        checkpoints="every:20",
        eval_every=5,
    )
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A trained tiny run shared by read-only tests."""
    torch.manual_seed(0)
    return train(tiny_config(), tmp_path_factory.mktemp("runs") / "tiny")


def grokking_config(**changes) -> RunConfig:
    """A small run that really groks: about a minute of training on 2 CPU cores.

    p = 31, 60% of the pairs for training, weight decay 3: train accuracy reaches 99% at
    about epoch 100 and test accuracy at about epoch 500, and the final checkpoint has
    key frequencies (e.g. 11 and 12) with restricted loss below test loss.
    """
    base = dict(
        p=31,
        frac_train=0.6,
        d_model=64,
        n_heads=2,
        d_head=32,
        d_mlp=128,
        lr=3e-3,
        weight_decay=3.0,
        epochs=2000,
        checkpoints="log:20+every:50",
        eval_every=10,
    )
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="session")
def grokking_run(tmp_path_factory):
    """A trained and analysed run that groks (slow: train once per session)."""
    from grokinterp.analysis import analyze

    run = train(grokking_config(), tmp_path_factory.mktemp("runs") / "groks")
    analyze(run)
    return run


def assert_same_runs(reference: Path, other: Path) -> None:
    """Same statuses, and every training file of every run byte-identical."""
    ref_runs, new_runs = read_manifest(reference)["runs"], read_manifest(other)["runs"]
    assert {n: r["status"] for n, r in new_runs.items()} == {
        n: r["status"] for n, r in ref_runs.items()
    }
    for name in ref_runs:
        a, b = run_dir(reference, name), run_dir(other, name)
        ckpts = sorted(p.name for p in (a / files.CHECKPOINT_DIR).iterdir())
        assert ckpts and ckpts == sorted(p.name for p in (b / files.CHECKPOINT_DIR).iterdir())
        rels = [f"{files.CHECKPOINT_DIR}/{c}" for c in ckpts]
        for rel in [*rels, files.OPTIMIZER, files.METRICS, files.CONFIG, files.SPLIT]:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), (name, rel)
        assert (
            json.loads((a / files.SUMMARY).read_text())["phases"]
            == json.loads((b / files.SUMMARY).read_text())["phases"]
        )
        assert not list(b.rglob("*.tmp"))
