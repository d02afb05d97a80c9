"""The run configuration: one frozen dataclass that fully describes a training run.

Defaults follow Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability" (see docs/reproducing-the-paper.md). Everything a run needs to be
reproduced lives here; derived values are properties, and bad values are refused at
construction.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from grokinterp.errors import ConfigError, OptionError  # noqa: F401  (re-exported)
from grokinterp.schedule import checkpoint_epochs
from grokinterp.tasks import TASKS, get_task, is_prime  # noqa: F401  (is_prime re-exported)

OPERATIONS = tuple(TASKS)  # the task registry (grokinterp.tasks, docs/tasks.md)
BIAS_MODES = ("mlp", "none")
INIT_SCHEMES = ("paper", "tl-demo", "native")  # see grokinterp.model.init_stds
LOSS_DTYPES = ("float64", "float32")
OPTIMIZERS = ("adamw", "adam", "sgd")  # see docs/training-options.md
GROKFAST_FILTERS = ("none", "ema", "ma")
LOSSES = ("softmax", "stablemax")  # see grokinterp.measures.collapse

# The derived run name (RunConfig.run_name): fields already in its stem, or that do not
# change what is learned (the run's length and bookkeeping), are not appended.
_UNNAMED = frozenset(
    {
        "p", "operation", "init", "init_scale", "init_seed", "data_seed", "name", "epochs",
        "stop_after_grok", "stop_after_grok_delays", "eval_every", "checkpoints", "fast_path",
    }
)  # fmt: skip
# Short names of fields in run names, shared with the sweep's run names
# (grokinterp.sweep.spec.ALIASES extends them); other fields appear under their own name.
FIELD_ALIASES = {"weight_decay": "wd", "frac_train": "frac", "warmup_steps": "warmup"}
_NAME_ALIASES = {**FIELD_ALIASES, "batch_size": "batch"}
# Characters a run name (a folder name) may not hold; each becomes "_".
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=-]")


def name_value(value: Any) -> str:
    """A field value as run names write it: floats by ``g`` (1e-3 -> 0.001), bools lower."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


class ConfigSerialisation:
    """``to_dict`` / ``from_dict`` / JSON / ``replace`` for a frozen config dataclass
    (RunConfig, and the toy families' ToyConfig): an unknown field is a ConfigError that
    lists the allowed ones.  :meth:`check_field_types` is the type check both run first in
    ``__post_init__``."""

    def check_field_types(self) -> None:
        """ConfigError for a field whose value is not of its annotated type (int, float,
        str or bool; an int is a float, a bool is not an int)."""
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"int": int, "float": (int, float), "str": str, "bool": bool}[f.type]
            if isinstance(value, bool) and f.type != "bool" or not isinstance(value, expected):
                raise ConfigError(
                    f"{type(self).__name__}.{f.name} must be of type {f.type}, got {value!r} "
                    f"({type(value).__name__})"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} field(s) {unknown}; allowed fields: {sorted(known)}"
            )
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class RunConfig(ConfigSerialisation):
    # task: (a op b) mod p on token triples [a, b, '=']
    p: int = 113
    operation: str = "add"
    frac_train: float = 0.3
    data_seed: int = 598
    # model: one-layer transformer, no LayerNorm (Nanda et al. 2023)
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    biases: str = (
        "mlp"  # "mlp": MLP biases trained, attention/unembed biases held at 0; "none": all at 0
    )
    init_seed: int = 999
    init: str = "paper"  # "paper" (Nanda et al.'s code), "tl-demo" (legacy TL) or "native" (TL 4)
    init_scale: float = 1.0  # a factor on every initial weight (Omnigrok uses > 1)
    # optimiser: full-batch AdamW with a linear warm-up (docs/training-options.md)
    optimizer: str = "adamw"  # "adamw" (decoupled decay), "adam" or "sgd" (decay as L2)
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9  # adam and adamw
    beta2: float = 0.98  # adam and adamw
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    warmup_steps: int = 10  # counted in optimiser steps
    batch_size: int = 0  # 0: full batch; N > 0: minibatches of N, one step each
    dropout: float = 0.0  # GPT-2-style dropout in training steps only (fast path)
    # Grokfast gradient filter (Lee et al. 2024), applied before each optimiser step
    grokfast: str = "none"  # "none", "ema" or "ma"
    grokfast_alpha: float = 0.98  # ema decay
    grokfast_lamb: float = 2.0  # amplification of the slow gradient
    grokfast_window: int = 100  # ma window, in optimiser steps
    epochs: int = 25_000  # the cap: a run that never groks ends here (censored in a sweep)
    stop_after_grok: int = 0  # N > 0: end N epochs after T_grok (test acc >= 0.99); 0: off
    # F > 0: end no sooner than F x (T_grok - T_mem) epochs after T_grok, so that cleanup,
    # which lasts about as long as the delay, is seen (docs/phases.md); 0: off
    stop_after_grok_delays: float = 0.0
    loss_dtype: str = "float64"
    fast_path: bool = True  # last-position-only forward; False trains through model(tokens)
    # logging and checkpoints
    eval_every: int = 10
    checkpoints: str = "default"  # see grokinterp.schedule for the grammar
    name: str = ""  # run name; empty means derived from the task and seeds
    # mechanisms (docs/training-options.md): attention = attn_coeff x softmax pattern +
    # (1 - attn_coeff) x uniform (Zhong et al. 2023); the training loss's normaliser,
    # "softmax" (cross-entropy) or "stablemax" (Prieto et al. 2025); orthograd: the gradient's
    # component along each weight tensor removed before the optimiser step (Prieto et al.)
    attn_coeff: float = 1.0
    loss: str = "softmax"
    orthograd: bool = False

    def __post_init__(self) -> None:
        self.check_field_types()
        if self.p < 3:
            raise ConfigError(f"RunConfig.p must be >= 3, got {self.p}")
        if self.p % 2 == 0:
            raise ConfigError(
                f"RunConfig.p must be odd (the Fourier analysis of Z_p assumes no Nyquist "
                f"frequency), got {self.p}; use an odd prime such as 113"
            )
        get_task(self.operation).check(self.p)
        if not 0.0 < self.frac_train < 1.0:
            raise ConfigError(
                f"RunConfig.frac_train must lie strictly between 0 and 1, got {self.frac_train}"
            )
        n_train, n_valid = self.n_train, self.n_pairs
        if n_train < 1 or n_train >= n_valid:
            raise ConfigError(
                f"RunConfig.frac_train={self.frac_train} gives {n_train} of the {n_valid} valid "
                f"pairs of {self.operation!r} for training; both splits must be non-empty"
            )
        for name in ("d_model", "n_heads", "d_head", "d_mlp", "epochs", "eval_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"RunConfig.{name} must be a positive integer, got {getattr(self, name)}"
                )
        if self.act_fn not in ("relu", "gelu"):
            raise ConfigError(f"RunConfig.act_fn must be 'relu' or 'gelu', got {self.act_fn!r}")
        if self.biases not in BIAS_MODES:
            raise ConfigError(f"RunConfig.biases must be one of {BIAS_MODES}, got {self.biases!r}")
        if self.init not in INIT_SCHEMES:
            raise ConfigError(f"RunConfig.init must be one of {INIT_SCHEMES}, got {self.init!r}")
        if not self.init_scale > 0:
            raise ConfigError(f"RunConfig.init_scale must be > 0, got {self.init_scale}")
        if self.lr <= 0:
            raise ConfigError(f"RunConfig.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"RunConfig.weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"RunConfig.{name} must lie in [0, 1), got {getattr(self, name)}")
        self._check_training_options()
        if self.stop_after_grok < 0:
            raise ConfigError(
                f"RunConfig.stop_after_grok must be >= 0 (0 = train to the epochs cap, N = "
                f"stop N epochs after T_grok), got {self.stop_after_grok}"
            )
        if not (math.isfinite(self.stop_after_grok_delays) and self.stop_after_grok_delays >= 0):
            raise ConfigError(
                f"RunConfig.stop_after_grok_delays must be a finite number >= 0 (0 = off, F = "
                f"run on F x (T_grok - T_mem) epochs after T_grok), got "
                f"{self.stop_after_grok_delays}"
            )
        if self.warmup_steps < 0:
            raise ConfigError(f"RunConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.loss_dtype not in LOSS_DTYPES:
            raise ConfigError(
                f"RunConfig.loss_dtype must be one of {LOSS_DTYPES}, got {self.loss_dtype!r}"
            )
        if self.name and any(c in self.name for c in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"RunConfig.name must be a plain folder name, got {self.name!r}")
        # Validate the schedule grammar now so a bad spec fails before training starts.
        checkpoint_epochs(self.checkpoints, self.epochs)

    def _check_training_options(self) -> None:
        """The optimiser, dropout, Grokfast and minibatch fields (docs/training-options.md)."""
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"RunConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"RunConfig.momentum must lie in [0, 1), got {self.momentum}")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise ConfigError(
                "RunConfig.nesterov needs momentum > 0 with optimizer 'sgd'; "
                "set momentum (e.g. 0.9) or nesterov false"
            )
        if self.batch_size < 0:
            raise ConfigError(
                f"RunConfig.batch_size must be >= 0 (0 = full batch, N = minibatches of N), "
                f"got {self.batch_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"RunConfig.dropout must lie in [0, 1), got {self.dropout}")
        if self.dropout > 0 and not self.fast_path:
            raise ConfigError(
                "RunConfig.dropout > 0 is implemented on the fast path only; "
                "set fast_path true or dropout 0"
            )
        if self.grokfast not in GROKFAST_FILTERS:
            raise ConfigError(
                f"RunConfig.grokfast must be one of {GROKFAST_FILTERS}, got {self.grokfast!r}"
            )
        if not 0.0 <= self.grokfast_alpha < 1.0:
            raise ConfigError(
                f"RunConfig.grokfast_alpha must lie in [0, 1), got {self.grokfast_alpha}"
            )
        if not (math.isfinite(self.grokfast_lamb) and self.grokfast_lamb >= 0):
            raise ConfigError(
                f"RunConfig.grokfast_lamb must be a finite number >= 0, got {self.grokfast_lamb}"
            )
        if self.grokfast_window < 1:
            raise ConfigError(f"RunConfig.grokfast_window must be >= 1, got {self.grokfast_window}")
        if not 0.0 <= self.attn_coeff <= 1.0:
            raise ConfigError(
                f"RunConfig.attn_coeff must lie in [0, 1] (1 = learned attention, 0 = uniform), "
                f"got {self.attn_coeff}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"RunConfig.loss must be one of {LOSSES}, got {self.loss!r}")

    # derived values
    @property
    def d_vocab(self) -> int:
        """Input vocabulary: the residues 0..p-1 and the '=' token (token p)."""
        return self.p + 1

    @property
    def d_vocab_out(self) -> int:
        return self.p

    @property
    def equals_token(self) -> int:
        return self.p

    @property
    def n_pairs(self) -> int:
        """Number of valid pairs of the task: p^2, or p (p - 1) for div (b != 0)."""
        return get_task(self.operation).n_valid(self.p)

    @property
    def n_train(self) -> int:
        """Training pairs: frac_train of the valid pairs, rounded down."""
        return int(self.frac_train * self.n_pairs)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch: 1 (full batch) or ceil(n_train / batch_size)."""
        if self.batch_size == 0 or self.batch_size >= self.n_train:
            return 1
        return -(-self.n_train // self.batch_size)

    @property
    def run_name(self) -> str:
        """``name``, or one derived from the config: ``add-p113-paper-init999-data598`` for
        the defaults, with ``-lr0.003``, ``-sgd``, ``-dropout0.1``... appended for every
        option that differs from its default, so two different runs never share a folder.
        The run's length and bookkeeping (epochs, schedule, eval cadence) are left out."""
        if self.name:
            return self.name
        scale = "" if self.init_scale == 1 else f"x{self.init_scale:g}"
        parts = [f"{self.operation}-p{self.p}-{self.init}{scale}-init{self.init_seed}"]
        parts.append(f"data{self.data_seed}")
        defaults = RunConfig()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _UNNAMED or value == getattr(defaults, f.name):
                continue
            if f.name == "optimizer":
                parts.append(str(value))
            elif isinstance(value, bool):
                parts.append(f.name if value else f"no{f.name}")
            else:
                parts.append(f"{_NAME_ALIASES.get(f.name, f.name)}{name_value(value)}")
        return UNSAFE_NAME_CHARS.sub("_", "-".join(parts))
