import pytest
import torch

from grokinterp.config import RunConfig
from grokinterp.train import train


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
