"""A run directory: opening one (config, split, checkpoints, metrics, and models at any
epoch) and the writer of its files (:func:`write_run_files`, :func:`save_checkpoint`), which
training, the benchmarks and the tests all write through."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from transformer_lens import ActivationCache
from transformer_lens.model_bridge import TransformerBridge

from grokinterp import files
from grokinterp.config import ConfigError, RunConfig
from grokinterp.data import Dataset, all_pairs, make_dataset, make_tokens
from grokinterp.errors import OptionError
from grokinterp.model import build_model
from grokinterp.models import ModelFamily, get_family
from grokinterp.models.config import ToyConfig, is_toy
from grokinterp.schedule import end_epoch, first_grok_epoch, first_mem_epoch
from grokinterp.storage import (
    RunFileError,
    atomic_write_text,
    load_tensors,
    metrics_header,
    read_json,
    read_metrics,
    save_tensors,
    write_json,
)
from grokinterp.tasks import get_task
from grokinterp.toydata import ToyData, make_toy_data


class Run:
    """A run directory, read-only.  Use :func:`load_run` to open one."""

    def __init__(self, path: Path, config: RunConfig, train_idx: torch.Tensor):
        self.path = Path(path)
        self.config = config
        self.train_idx = train_idx

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, {len(self.epochs)} checkpoints)"

    @cached_property
    def dataset(self) -> Dataset:
        return make_dataset(self.config, train_idx=self.train_idx)

    @property
    def epochs(self) -> list[int]:
        """Sorted epochs of the complete checkpoints on disk (re-read on every access)."""
        folder = self.path / files.CHECKPOINT_DIR
        if not folder.is_dir():
            return []
        found = (files.checkpoint_epoch(f) for f in folder.iterdir())
        return sorted(e for e in found if e is not None)

    @property
    def end_epoch(self) -> int:
        """The epoch training ends at: the epochs cap, or ``stop_after_grok`` epochs after
        T_grok in the logged metrics (see :func:`grokinterp.schedule.end_epoch`)."""
        cfg = self.config
        if not cfg.stop_after_grok and not cfg.stop_after_grok_delays:
            return cfg.epochs
        rows = read_metrics(self.path / files.METRICS)
        return end_epoch(
            cfg.stop_after_grok,
            cfg.epochs,
            first_grok_epoch(rows),
            delays=cfg.stop_after_grok_delays,
            t_mem=first_mem_epoch(rows),
        )

    @property
    def is_complete(self) -> bool:
        return self.end_epoch in self.epochs

    @property
    def metrics(self) -> dict[str, np.ndarray]:
        """Logged metrics as columns (NaN where a value was not logged that epoch)."""
        rows = read_metrics(self.path / files.METRICS)
        return {
            col: np.array([np.nan if r[col] is None else r[col] for r in rows], dtype=float)
            if col != "epoch"
            else np.array([r["epoch"] for r in rows], dtype=int)
            for col in files.METRIC_COLUMNS
        }

    def state_dict_at(self, epoch: int) -> dict[str, torch.Tensor]:
        """The checkpoint's state dict (TransformerLens keys, float32)."""
        path = files.checkpoint_path(self.path, epoch)
        if not path.is_file():
            raise RunFileError(
                f"{path}: no checkpoint at epoch {epoch}; available epochs: "
                f"{_summarise(self.epochs)}"
            )
        tensors, metadata = load_tensors(path, files.CHECKPOINT_FORMAT)
        if metadata.get("epoch") != str(epoch):
            raise RunFileError(f"{path}: holds epoch {metadata.get('epoch')}, not {epoch}")
        return tensors

    def model_at(self, epoch: int, device: str | torch.device = "cpu") -> TransformerBridge:
        """The TransformerLens model with this checkpoint's weights."""
        model = build_model(self.config, device=device)
        state = self.state_dict_at(epoch)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise RunFileError(
                f"{files.checkpoint_path(self.path, epoch)}: does not fit this run's model ({err})"
            ) from None
        return model

    @torch.no_grad()
    def cache_at(
        self,
        epoch: int,
        names_filter: str | list[str] | Callable[[str], bool] | None = None,
        device: str | torch.device = "cpu",
    ) -> tuple[torch.Tensor, ActivationCache]:
        """The logits and TransformerLens activation cache on all p^2 inputs at ``epoch``.

        Runs ``model_at(epoch).run_with_cache`` on the token triples [a, b, '='] for every
        pair, batch index i = a*p + b (the order of :func:`grokinterp.data.all_pairs`).

        Returns (logits, cache): logits (p^2, 3, p), one row of output logits per position
        (``logits[:, -1]`` are the answers at '='); the cache holds every hook's activation
        with the batch axis first, e.g. ``hook_embed`` (p^2, 3, d_model),
        ``blocks.0.attn.hook_pattern`` (p^2, n_heads, query 3, key 3),
        ``blocks.0.mlp.hook_post`` (p^2, 3, d_mlp).  ``names_filter`` (a hook name, a list
        of names or a predicate) keeps only those hooks, as in ``run_with_cache``.
        """
        model = self.model_at(epoch, device=device)
        a, b = all_pairs(self.config.p)
        tokens = make_tokens(a, b, self.config.p).to(device)  # (p^2, 3)
        return model.run_with_cache(tokens, names_filter=names_filter)


def _summarise(epochs: list[int]) -> str:
    if len(epochs) <= 8:
        return str(epochs)
    return f"[{', '.join(map(str, epochs[:4]))}, ..., {', '.join(map(str, epochs[-3:]))}]"


# Fields added after runs were first written, with the value those older runs used.
_LEGACY_DEFAULTS = {"init": "native", "init_scale": 1.0}


def read_config(run_dir: Path) -> RunConfig:
    """A run's stored config.  Runs written before ``init`` existed trained with ``native``.
    A toy run's config (it names a ``family``) is a :class:`~grokinterp.models.config.ToyConfig`."""
    path = Path(run_dir) / files.CONFIG
    data = read_json(path)
    if is_toy(data):
        return read_toy_config(run_dir)
    data = {**_LEGACY_DEFAULTS, **data} if isinstance(data, dict) else data
    try:
        return RunConfig.from_dict(data)
    except (ConfigError, TypeError) as err:
        raise RunFileError(f"{path}: not a valid grokinterp run config: {err}") from None


def read_split(run_dir: Path, config: RunConfig) -> torch.Tensor:
    path = Path(run_dir) / files.SPLIT
    data = read_json(path)
    idx = data.get("train_idx")
    if not isinstance(idx, list) or not all(isinstance(i, int) for i in idx):
        raise RunFileError(f"{path}: expected {{'train_idx': [int, ...]}}")
    if len(idx) != config.n_train or not all(0 <= i < config.p**2 for i in idx):
        raise RunFileError(
            f"{path}: expected {config.n_train} distinct indices in [0, {config.p**2}), "
            f"found {len(idx)}"
        )
    out = torch.tensor(idx, dtype=torch.long)
    if not get_task(config.operation).valid_mask(config.p)[out].all():
        raise RunFileError(f"{path}: train indices outside the valid pairs of {config.operation}")
    return out


def find_runs(path: str | Path) -> list[Path]:
    """The run directory ``path``, or the run directories directly inside it."""
    path = Path(path)
    if (path / files.CONFIG).is_file():
        return [path]
    if not path.is_dir():
        raise RunFileError(f"{path}: no such run directory")
    runs = sorted(d for d in path.iterdir() if (d / files.CONFIG).is_file())
    if not runs:
        raise RunFileError(f"{path}: neither a run directory nor a folder of run directories")
    return runs


def load_run(path: str | Path) -> Run:
    """Open a run directory written by ``grokinterp train``."""
    path = Path(path)
    if not path.is_dir():
        raise RunFileError(f"{path}: no such run directory")
    if not (path / files.CONFIG).is_file():
        raise RunFileError(
            f"{path}: not a grokinterp run directory (no {files.CONFIG}); "
            f"point at a folder written by 'grokinterp train'"
        )
    config = read_config(path)
    if not isinstance(config, RunConfig):  # a toy model family (grokinterp.models)
        return load_toy_run(path)
    return Run(path, config, read_split(path, config))


# ---------------------------------------------------------------------------- toy runs


class ToyRun(Run):
    """A toy run directory, read-only.  ``dataset`` is its :class:`ToyData`; ``model_at``
    gives the parameters as a dict of float64 tensors."""

    def __init__(self, path: Path, config: ToyConfig):
        super().__init__(path, config, train_idx=torch.arange(config.n_train_points))

    @cached_property
    def dataset(self) -> ToyData:  # type: ignore[override]
        return make_toy_data(self.config)

    @property
    def family(self) -> ModelFamily:
        return get_family(self.config.family)

    @property
    def end_epoch(self) -> int:
        """The epochs cap, or ``stop_after_grok`` epochs after T_grok in the metrics."""
        cfg = self.config
        if not cfg.stop_after_grok:
            return cfg.epochs
        rows = read_metrics(self.path / files.METRICS)
        return end_epoch(cfg.stop_after_grok, cfg.epochs, first_grok_epoch(rows))

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


# ---------------------------------------------------------------------------- writing


def write_run_files(out: Path, cfg: RunConfig, train_idx: torch.Tensor) -> None:
    """Start a run directory: split.json, metrics.csv (its header) and config.json.

    The config goes last: a folder with a config is a run that can be resumed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / files.SPLIT, {"train_idx": train_idx.tolist()})
    atomic_write_text(out / files.METRICS, metrics_header())
    atomic_write_text(out / files.CONFIG, cfg.to_json() + "\n")


def save_checkpoint(out: Path, epoch: int, state_dict: dict[str, torch.Tensor]) -> Path:
    """Write the model weights of ``epoch``: checkpoints/epoch_NNNNNN.safetensors."""
    path = files.checkpoint_path(out, epoch)
    meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(epoch)}
    save_tensors(path, state_dict, meta)
    return path
