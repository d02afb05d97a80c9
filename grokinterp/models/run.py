"""Opening a toy run directory: its config, data, metrics and parameters at any epoch.

:func:`grokinterp.run.load_run` opens toy runs too (it returns a :class:`ToyRun`), so the
analysis, sweep and figure commands take them as they take transformer runs.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.errors import ConfigError, OptionError, RunFileError
from grokinterp.models import ModelFamily, get_family
from grokinterp.models.config import ToyConfig
from grokinterp.run import Run
from grokinterp.storage import read_json
from grokinterp.toydata import ToyData, make_toy_data

__all__ = ["ToyRun", "load_toy_run", "read_toy_config"]


class ToyRun(Run):
    """A toy run directory, read-only.  ``dataset`` is its :class:`ToyData`; ``model_at``
    gives the parameters as a dict of float64 tensors."""

    def __init__(self, path: Path, config: ToyConfig):
        super().__init__(path, config, train_idx=torch.arange(config.n_train))

    @cached_property
    def dataset(self) -> ToyData:  # type: ignore[override]
        return make_toy_data(self.config)

    @property
    def family(self) -> ModelFamily:
        return get_family(self.config.family)

    @property
    def end_epoch(self) -> int:
        return self.config.epochs

    @property
    def data_description(self) -> dict:
        return read_json(self.path / files.DATA)

    def model_at(self, epoch: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """The parameters at ``epoch``: {name: float64 tensor} (see the family's module)."""
        state = self.state_dict_at(epoch)
        shapes = self.family.parameters(self.config)
        if {k: tuple(v.shape) for k, v in state.items()} != shapes:
            raise RunFileError(
                f"{files.checkpoint_path(self.path, epoch)}: does not fit this run's "
                f"{self.config.family} model (expected {shapes})"
            )
        return {k: v.to(device) for k, v in state.items()}

    def outputs_at(self, epoch: int, x: torch.Tensor) -> torch.Tensor:
        return self.family.forward(self.model_at(epoch), x)

    def cache_at(self, *args, **kwargs):
        raise OptionError(
            f"{self.path}: a {self.config.family} run has no TransformerLens activation "
            f"cache ({self.family.skip_text}); use model_at or outputs_at"
        )


def read_toy_config(run_dir: Path) -> ToyConfig:
    path = Path(run_dir) / files.CONFIG
    try:
        return ToyConfig.from_dict(read_json(path))
    except (ConfigError, TypeError) as err:
        raise RunFileError(f"{path}: not a valid grokinterp toy config: {err}") from None


def load_toy_run(path: str | Path) -> ToyRun:
    path = Path(path)
    if not (path / files.DATA).is_file():
        raise RunFileError(f"{path}: a toy run needs its {files.DATA}; the folder is incomplete")
    return ToyRun(path, read_toy_config(path))
