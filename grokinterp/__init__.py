"""grokinterp: train, measure and explain grokking on modular arithmetic."""

from grokinterp.config import RunConfig
from grokinterp.errors import ConfigError, OptionError, RunExistsError, RunFileError
from grokinterp.laws import fit_laws
from grokinterp.model import build_model
from grokinterp.models.config import ToyConfig
from grokinterp.run import Run, load_run
from grokinterp.sweep import load_sweep, run_sweep
from grokinterp.training import train

__all__ = [
    "ConfigError",
    "OptionError",
    "Run",
    "RunConfig",
    "RunExistsError",
    "RunFileError",
    "ToyConfig",
    "build_model",
    "fit_laws",
    "load_run",
    "load_sweep",
    "run_sweep",
    "train",
]
