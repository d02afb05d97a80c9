"""The default family: the one-layer transformer of Nanda et al. (2023), unchanged.

Built by :func:`grokinterp.model.build_model` (the one place a transformer is built),
trained through the fast last-position path (:func:`grokinterp.model.last_position_logits`,
proven equal to the TransformerLens forward in the tests); every registered measure
applies, with the task deciding which need a Fourier basis (:mod:`grokinterp.tasks`).
"""

from __future__ import annotations

import torch

from grokinterp.models import ModelFamily


def _parameters(cfg) -> dict[str, tuple[int, ...]]:
    from grokinterp.model import build_model

    return {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}


def _trained(cfg) -> tuple[str, ...]:
    from grokinterp.model import build_model, tl_parameters, trainable_parameters

    model = build_model(cfg)
    trained = {id(p) for p in trainable_parameters(model)}
    return tuple(name for name, p in tl_parameters(model).items() if id(p) in trained)


def _init(cfg, generator: torch.Generator | None = None):
    """The model itself (its draws come from ``cfg.init_seed``; ``generator`` is unused)."""
    from grokinterp.model import build_model

    return build_model(cfg)


def _forward(model, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at '='.  tokens (N, 3) -> (N, p)."""
    from grokinterp.model import last_position_logits

    return last_position_logits(model, tokens[:, 0], tokens[:, 1])


FAMILY = ModelFamily(
    name="transformer",
    description="one-layer transformer, no LayerNorm (Nanda et al. 2023); RunConfig",
    parameters=_parameters,
    trained=_trained,
    init=_init,
    forward=_forward,
    measures=None,
)
