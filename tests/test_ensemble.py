import pytest
import torch

from grokinterp.bench.ensemble import EnsembleTrainer
from grokinterp.config import ConfigError
from grokinterp.data import make_dataset
from grokinterp.model import native_parameters
from grokinterp.training import Trainer, deterministic_algorithms
from tests.conftest import tiny_config


def test_ensemble_follows_each_run_trained_alone():
    """Each slice of the stacked ensemble is the run trained alone, to float rounding:
    same metrics every epoch and the same weights after 30 steps (past the warm-up)."""
    cfgs = [tiny_config(init_seed=s, data_seed=10 + s) for s in range(3)]
    with deterministic_algorithms():
        ensemble = EnsembleTrainer(cfgs)
        alone = [Trainer(c, make_dataset(c)) for c in cfgs]
        for epoch in range(30):
            rows = ensemble.epoch(epoch, evaluate=epoch % 5 == 0)
            for row, trainer in zip(rows, alone, strict=True):
                ref = trainer.epoch(epoch, evaluate=epoch % 5 == 0)
                assert row.keys() == ref.keys()
                for key in ref:
                    assert row[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key
    for i, trainer in enumerate(alone):
        mine = ensemble.state_dict(i)
        for name, param in native_parameters(trainer.model).items():
            torch.testing.assert_close(mine[name], param.detach(), rtol=1e-4, atol=1e-5)
    # the members really differ, so a mix-up of slices would be caught above
    first, second = ensemble.state_dict(0), ensemble.state_dict(1)
    assert not torch.equal(first["head.weight"], second["head.weight"])


def test_ensemble_refuses_members_of_another_shape():
    with pytest.raises(ConfigError, match="d_mlp"):
        EnsembleTrainer([tiny_config(), tiny_config(d_mlp=32)])
    with pytest.raises(ConfigError, match="lr"):
        EnsembleTrainer([tiny_config(), tiny_config(lr=2e-3)])
    with pytest.raises(ConfigError, match="at least one"):
        EnsembleTrainer([])
