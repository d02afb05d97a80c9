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
DATASETS = ("competing-features", "ridge", "modular", "sparse-parity")
TOKEN_DATASETS = ("modular", "sparse-parity")  # the mlp family's data sets (docs/mlp.md)
SPECTRA = ("isotropic", "spiked")
TOY_OPTIMIZERS = ("gd", "sgd", "adamw")
ACTIVATIONS = ("relu", "quadratic")
OBJECTIVES = ("auto", "ce", "mse")

# Fields that do not change what is learned, or that the run-name stem already holds.
_UNNAMED = frozenset({"family", "dataset", "epochs", "eval_every", "checkpoints", "name",
                      "exact_path", "stop_after_grok"})  # fmt: skip
# The mlp family's fields, named in a run's name only on its data sets.
_TOKEN_FIELDS = frozenset({"p", "operation", "frac_train", "n_bits", "k_relevant", "activation",
                           "objective", "beta1", "beta2"})  # fmt: skip
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
    # the mlp family on the token tasks (docs/mlp.md); ignored by the other data sets
    p: int = 23  # modular: the modulus
    operation: str = "add"  # modular: a task of grokinterp.tasks (add, sub, mul, ...)
    frac_train: float = 0.3  # modular: share of the valid pairs used for training
    n_bits: int = 20  # sparse-parity: input bits (+-1)
    k_relevant: int = 3  # sparse-parity: the bits whose parity is the label
    activation: str = "relu"  # mlp: "relu" or "quadratic" (Gromov 2023)
    objective: str = "auto"  # modular: "ce" (auto) or "mse" on one-hot targets
    beta1: float = 0.9  # adamw
    beta2: float = 0.98  # adamw
    stop_after_grok: int = 0  # N > 0: end N epochs after T_grok (test acc >= 0.99); 0: off

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
        self._check_token_fields()
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
        for name in ("init_scale", "theta_norm", "noise", "weight_decay", "stop_after_grok"):
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

    def _check_token_fields(self) -> None:
        """The mlp family and its data sets (docs/mlp.md)."""
        for name, allowed in (("activation", ACTIVATIONS), ("objective", OBJECTIVES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"ToyConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        token_data = self.dataset in TOKEN_DATASETS
        if token_data != (self.family == "mlp"):
            raise ConfigError(
                f"ToyConfig: the data sets {TOKEN_DATASETS} are trained by family 'mlp' and "
                f"family 'mlp' trains only them (got family {self.family!r}, dataset "
                f"{self.dataset!r})"
            )
        if self.optimizer == "adamw" and self.family != "mlp":
            raise ConfigError("ToyConfig.optimizer 'adamw' is for family 'mlp'; use 'gd' or 'sgd'")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"ToyConfig.{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.objective == "mse" and self.dataset != "modular":
            raise ConfigError("ToyConfig.objective 'mse' is for dataset 'modular'; use 'auto'")
        if self.dataset == "modular":
            from grokinterp.tasks import get_task

            if self.p < 3 or self.p % 2 == 0:
                raise ConfigError(f"ToyConfig.p must be an odd number >= 3, got {self.p}")
            get_task(self.operation).check(self.p)
            if not 0.0 < self.frac_train < 1.0 or not 1 <= self.n_train_points < self.n_pairs:
                raise ConfigError(
                    f"ToyConfig.frac_train must leave both splits non-empty (0 < frac < 1), got "
                    f"{self.frac_train} of {self.n_pairs} pairs"
                )
            if self.optimizer == "sgd":
                raise ConfigError(
                    "ToyConfig: dataset 'modular' trains full batch; use optimizer 'adamw' or 'gd'"
                )
        if self.dataset == "sparse-parity" and not 1 <= self.k_relevant <= self.n_bits:
            raise ConfigError(
                f"ToyConfig.k_relevant must lie in [1, n_bits={self.n_bits}], got {self.k_relevant}"
            )

    # derived values
    @property
    def n_pairs(self) -> int:
        """modular: the task's valid pairs at p (p^2, or p (p - 1) for div)."""
        from grokinterp.tasks import get_task

        return get_task(self.operation).n_valid(self.p)

    @property
    def n_train_points(self) -> int:
        """Training points: frac_train of the valid pairs (modular), else n_train."""
        if self.dataset == "modular":
            return int(self.frac_train * self.n_pairs)
        return self.n_train

    @property
    def d_out(self) -> int:
        """Outputs per input: p logits (modular), else one."""
        return self.p if self.dataset == "modular" else 1

    @property
    def d_in(self) -> int:
        """Input dimension: m (ridge), d_sig + n_train (competing-features), 2p (modular:
        one-hot a and b, concatenated) or n_bits (sparse-parity)."""
        if self.dataset == "modular":
            return 2 * self.p
        if self.dataset == "sparse-parity":
            return self.n_bits
        return self.m if self.dataset == "ridge" else self.d_sig + self.n_train

    @property
    def loss(self) -> str:
        """``squared`` for ridge (real targets), ``logistic`` for competing-features and
        sparse-parity (+-1), ``ce`` (softmax cross-entropy) or ``mse`` (squared error on one-hot
        targets, Gromov 2023) for modular (p classes)."""
        if self.dataset == "modular":
            return "mse" if self.objective == "mse" else "ce"
        return "squared" if self.dataset == "ridge" else "logistic"

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train_points if self.optimizer == "sgd" else 1

    @property
    def decay_per_step(self) -> float:
        """The factor by which decay alone shrinks a weight each step, as 1 - this:
        lr * wd (sgd and adamw, decoupled) or 2 lr wd (gd, the gradient of wd ||w||^2)."""
        return self.lr * self.weight_decay * (2 if self.optimizer == "gd" else 1)

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
            if f.name in _TOKEN_FIELDS and self.dataset not in TOKEN_DATASETS:
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
