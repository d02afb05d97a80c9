"""The configuration of a toy run: one frozen dataclass, like :class:`grokinterp.config.RunConfig`.

A toy run trains a model family of :mod:`grokinterp.models` other than the transformer on
one of the seeds' data sets (:mod:`grokinterp.toydata`).  Its ``config.json`` carries a
``family`` field, which is how a stored config is told from a transformer's
(:func:`config_from_dict`).  Definitions: docs/toys.md.

- ``dataset = "competing-features"``: "Grokking & Delayed Generalization" (How I Study AI),
  the competing-features toy: ``n_train``, ``n_test``, ``d_sig``; logistic loss on labels +-1.
- ``dataset = "ridge"``: arXiv:2601.19791 (grokking in ridge regression): x ~ N(0, Sigma)
  in R^m, y = x . theta* + noise, ``c`` the test loss below which a run has generalised;
  squared loss.

``optimizer = "sgd"`` is the competing-features program's SGD: batch 1, reshuffled every
epoch, decoupled decay w <- (1 - lr wd) w before each gradient step.  ``optimizer = "gd"``
is full-batch gradient descent on data loss + wd * ||w||^2 (the ridge paper's objective,
wd = lambda): w <- w - lr (grad + 2 wd w).  Decay applies to the trained blocks only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from grokinterp.config import UNSAFE_NAME_CHARS, ConfigSerialisation, name_value
from grokinterp.errors import ConfigError
from grokinterp.models import FAMILIES
from grokinterp.schedule import checkpoint_epochs

TOY_FAMILIES = tuple(name for name in FAMILIES if name != "transformer")
DATASETS = ("competing-features", "ridge")
SPECTRA = ("isotropic", "spiked")
TOY_OPTIMIZERS = ("gd", "sgd")

# Fields that do not change what is learned, or that the run-name stem already holds.
_UNNAMED = frozenset({"family", "dataset", "epochs", "eval_every", "checkpoints", "name",
                      "exact_path"})  # fmt: skip
_ALIASES = {"weight_decay": "wd", "init_scale": "nu", "n_train": "n", "init_seed": "init",
            "data_seed": "data"}  # fmt: skip


@dataclass(frozen=True)
class ToyConfig(ConfigSerialisation):
    family: str = "linear"  # a toy family of grokinterp.models: linear, random-features, two-layer
    dataset: str = "ridge"  # "ridge" or "competing-features"
    # data (grokinterp.toydata)
    n_train: int = 40
    n_test: int = 1000
    data_seed: int = 0
    d_sig: int = 5  # competing-features: signal features (the rest are one-hot, one per point)
    m: int = 200  # ridge: input dimension
    spectrum: str = "isotropic"  # ridge: Sigma = I, or "spiked": spike_dims coords at spike_value
    spike_dims: int = 0
    spike_value: float = 1.0
    theta_norm: float = 1.0  # ridge: ||theta*||
    noise: float = 0.0  # ridge: std of the label noise
    c: float = 1.0  # ridge: generalised when the test loss < c
    # model (grokinterp.models)
    width: int = 0  # hidden ReLU units (random-features, two-layer); 0 for linear
    init_scale: float = 1.0  # nu: std of the initial trained weights (0: zero init)
    init_seed: int = 0  # the initial weights, and the SGD order (with the epoch)
    # optimisation
    optimizer: str = "gd"  # "gd": full batch, wd * ||w||^2 in the loss; "sgd": batch 1, decoupled
    lr: float = 0.05
    weight_decay: float = 0.01
    exact_path: bool = False  # linear ridge gd only: closed-form trajectory (ridge_path)
    epochs: int = 5000
    eval_every: int = 1
    checkpoints: str = "log:40+every:250"
    name: str = ""

    def __post_init__(self) -> None:
        self.check_field_types()
        for name, allowed in (
            ("family", TOY_FAMILIES),
            ("dataset", DATASETS),
            ("spectrum", SPECTRA),
            ("optimizer", TOY_OPTIMIZERS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"ToyConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        for name in ("n_train", "n_test", "d_sig", "m", "epochs", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"ToyConfig.{name} must be a positive integer, got {getattr(self, name)}"
                )
        if self.family == "linear" and self.width != 0:
            raise ConfigError(
                f"ToyConfig.width is for the networks; the linear family has none "
                f"(got {self.width}); set width 0 or family 'random-features' / 'two-layer'"
            )
        if self.family != "linear" and self.width < 1:
            raise ConfigError(
                f"ToyConfig.width must be >= 1 for family {self.family!r} (hidden ReLU units), "
                f"got {self.width}"
            )
        if not 0 <= self.spike_dims <= self.m:
            raise ConfigError(f"ToyConfig.spike_dims must lie in [0, m={self.m}], got "
                              f"{self.spike_dims}")  # fmt: skip
        if self.spectrum == "spiked" and (self.spike_dims == 0 or not self.spike_value > 0):
            raise ConfigError(
                "ToyConfig.spectrum 'spiked' needs spike_dims >= 1 and spike_value > 0 "
                f"(got {self.spike_dims}, {self.spike_value}); or use spectrum 'isotropic'"
            )
        for name in ("init_scale", "theta_norm", "noise", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ToyConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"ToyConfig.lr must be > 0, got {self.lr}")
        if not self.c > 0:
            raise ConfigError(f"ToyConfig.c must be > 0 (a test-loss threshold), got {self.c}")
        if self.optimizer == "sgd" and not self.lr * self.weight_decay < 1:
            raise ConfigError(
                f"ToyConfig: lr * weight_decay = {self.lr * self.weight_decay:g} must be < 1 "
                f"with optimizer 'sgd' (the decay factor 1 - lr wd must stay positive)"
            )
        if self.family == "random-features" and self.init_scale == 0:
            pass  # the output layer may start at zero: the features are fixed anyway
        elif self.family == "two-layer" and self.init_scale == 0:
            raise ConfigError(
                "ToyConfig.init_scale 0 leaves a two-layer ReLU net with zero gradients "
                "(both layers zero); use init_scale > 0"
            )
        if self.name and any(ch in self.name for ch in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"ToyConfig.name must be a plain folder name, got {self.name!r}")
        if self.exact_path and (self.family, self.dataset, self.optimizer) != (
            "linear",
            "ridge",
            "gd",
        ):
            raise ConfigError(
                "ToyConfig.exact_path is the closed form of gradient descent on ridge "
                "regression: it needs family 'linear', dataset 'ridge' and optimizer 'gd' "
                f"(got {self.family!r}, {self.dataset!r}, {self.optimizer!r}); set exact_path false"
            )
        checkpoint_epochs(self.checkpoints, self.epochs)

    # derived values
    @property
    def d_in(self) -> int:
        """Input dimension: m (ridge) or d_sig + n_train (competing-features)."""
        return self.m if self.dataset == "ridge" else self.d_sig + self.n_train

    @property
    def loss(self) -> str:
        """``squared`` for ridge (real targets), ``logistic`` for competing-features (+-1)."""
        return "squared" if self.dataset == "ridge" else "logistic"

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train if self.optimizer == "sgd" else 1

    @property
    def decay_per_step(self) -> float:
        """The factor by which decay alone shrinks a weight each step, as 1 - this:
        lr * wd (sgd, decoupled) or 2 lr wd (gd, the gradient of wd ||w||^2)."""
        return self.lr * self.weight_decay * (1 if self.optimizer == "sgd" else 2)

    @property
    def run_name(self) -> str:
        """``name``, or ``ridge-linear`` with every field off its default appended."""
        if self.name:
            return self.name
        parts = [f"{self.dataset}-{self.family}"]
        defaults = ToyConfig(dataset=self.dataset, family=self.family,
                             width=0 if self.family == "linear" else 1)  # fmt: skip
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _UNNAMED or value == getattr(defaults, f.name):
                continue
            parts.append(f"{_ALIASES.get(f.name, f.name)}{name_value(value)}")
        return UNSAFE_NAME_CHARS.sub("_", "-".join(parts))


def is_toy(data: dict[str, Any] | Any) -> bool:
    """Whether a config (a dict or an object) describes a toy run: it names a ``family``
    other than the transformer."""
    if isinstance(data, dict):
        return data.get("family", "transformer") != "transformer"
    return isinstance(data, ToyConfig)


def config_from_dict(data: dict[str, Any]):
    """A :class:`ToyConfig` when ``data`` names a toy family, else a ``RunConfig``."""
    from grokinterp.config import RunConfig

    if is_toy(data):
        return ToyConfig.from_dict(data)
    data = {k: v for k, v in data.items() if k != "family"}
    return RunConfig.from_dict(data)


def config_class(data: dict[str, Any]) -> type:
    """The config class a dict of fields belongs to (see :func:`config_from_dict`)."""
    from grokinterp.config import RunConfig

    return ToyConfig if is_toy(data) else RunConfig
