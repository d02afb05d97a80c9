"""The random-feature family: f(x) = a . relu(W x) / sqrt(width), W frozen at its init.

W (width, d) ~ N(0, 1/d) and stays there (not trained, not decayed); a (width,) ~
N(0, nu^2) is trained: ridge regression in the features relu(W x) / sqrt(width), the
random-feature network of arXiv:2601.19791.
"""

from __future__ import annotations

import math

import torch

from grokinterp.models import TOY_MEASURES, ModelFamily, normal, toy_skip_text


def _parameters(cfg) -> dict[str, tuple[int, ...]]:
    return {"W": (cfg.width, cfg.d_in), "a": (cfg.width,)}


def _init(cfg, generator: torch.Generator) -> dict[str, torch.Tensor]:
    W = normal(generator, cfg.width, cfg.d_in, std=1 / math.sqrt(cfg.d_in))
    return {"W": W, "a": normal(generator, cfg.width, std=cfg.init_scale)}


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (N, d) -> (N,)."""
    hidden = torch.relu(x @ params["W"].T)  # (N, width)
    return hidden @ params["a"] / math.sqrt(params["a"].shape[0])


def grad(params: dict[str, torch.Tensor], x: torch.Tensor, dz: torch.Tensor) -> dict:
    """The gradient in a of a loss whose derivative by the outputs is dz (N,)."""
    hidden = torch.relu(x @ params["W"].T)  # (N, width)
    return {"a": hidden.T @ dz / math.sqrt(params["a"].shape[0])}


FAMILY = ModelFamily(
    name="random-features",
    description="f(x) = a . relu(W x) / sqrt(width); W ~ N(0, 1/d) frozen, a ~ N(0, nu^2)",
    parameters=_parameters,
    trained=lambda cfg: ("a",),
    init=_init,
    forward=forward,
    measures=TOY_MEASURES,
    skip_text=toy_skip_text("random-features"),
    grad=grad,
)
