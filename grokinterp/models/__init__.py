"""The model-family registry: what each ``family`` of a run trains, and which measures apply.

Like the task registry (:mod:`grokinterp.tasks`), each :class:`ModelFamily` declares

- its parameters (:meth:`ModelFamily.parameters`: name -> shape, and which are trained);
- its initialisation (a pure function of the config and a local generator);
- its forward pass (parameters, inputs -> outputs);
- the table measures that apply to it, and the reason every other one is skipped.

``transformer`` is the default family: the one-layer transformer of
:mod:`grokinterp.model` with its fast path and TransformerLens hooks, configured by
:class:`grokinterp.config.RunConfig`.  The toy families of the seeds (``linear``,
``random-features``, ``two-layer``; one module each) and the ``mlp`` of the token tasks
(modular arithmetic as one-hot pairs, sparse parity; docs/mlp.md) are configured by
:class:`grokinterp.models.config.ToyConfig`.  Definitions: docs/toys.md.

>>> sorted(FAMILIES)
['linear', 'mlp', 'random-features', 'transformer', 'two-layer']
>>> get_family("linear").skip_reason("embed_freq_norm")[:40]
'needs token embeddings, attention or a F'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from grokinterp.errors import ConfigError

__all__ = ["FAMILIES", "TOY_MEASURES", "ModelFamily", "get_family"]

# The measures of a toy run's analysis table (grokinterp.models.analysis).
TOY_MEASURES = ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm_sq",
                "generalisation_gap")  # fmt: skip


@dataclass(frozen=True)
class ModelFamily:
    """One model family.  ``measures`` is None for "every registered measure" (the
    transformer); otherwise the measures that apply, every other one being skipped with
    ``skip_text``."""

    name: str
    description: str
    parameters: Callable  # cfg -> {name: shape}
    trained: Callable  # cfg -> tuple of trained parameter names
    init: Callable  # (cfg, torch.Generator) -> {name: tensor}
    forward: Callable  # (params, x) -> outputs
    measures: tuple[str, ...] | None = None
    skip_text: str = ""
    grad: Callable | None = None  # (params, x, dz) -> {name: grad of the trained}
    sgd_epoch: Callable | None = None  # a faster batch-1 SGD epoch (see linear.sgd_epoch)

    def applies(self, measure: str) -> bool:
        return self.measures is None or measure in self.measures

    def skip_reason(self, measure: str) -> str | None:
        """Why ``measure`` is not computed for this family, or None if it is."""
        return None if self.applies(measure) else self.skip_text


def toy_skip_text(family: str) -> str:
    return (
        f"needs token embeddings, attention or a Fourier basis of a modular task; the "
        f"{family} model has none (it sees real-valued inputs)"
    )


def normal(generator: torch.Generator, *shape: int, std: float = 1.0) -> torch.Tensor:
    """std * N(0, 1) draws, float64, from ``generator``."""
    return std * torch.randn(*shape, generator=generator, dtype=torch.float64)


def _registry() -> dict[str, ModelFamily]:
    from grokinterp.models import linear, mlp, random_features, transformer, two_layer

    return {
        f.name: f
        for f in (
            transformer.FAMILY,
            linear.FAMILY,
            random_features.FAMILY,
            two_layer.FAMILY,
            mlp.FAMILY,
        )  # fmt: skip
    }


FAMILIES: dict[str, ModelFamily] = _registry()


def get_family(name: str) -> ModelFamily:
    """The registered family ``name``; ConfigError naming the allowed ones otherwise."""
    if name not in FAMILIES:
        raise ConfigError(f"family must be one of {tuple(FAMILIES)}, got {name!r} (docs/toys.md)")
    return FAMILIES[name]
