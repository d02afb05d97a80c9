"""grokinterp: train, measure and explain grokking on modular arithmetic."""

from grokinterp.config import ConfigError, RunConfig
from grokinterp.model import build_model
from grokinterp.run import Run, load_run
from grokinterp.storage import RunFileError
from grokinterp.sweep import load_sweep, run_sweep
from grokinterp.train import RunExistsError, train

__all__ = [
    "ConfigError",
    "Run",
    "RunConfig",
    "RunExistsError",
    "RunFileError",
    "build_model",
    "load_run",
    "load_sweep",
    "run_sweep",
    "train",
]
