"""The two-layer ReLU family: f(x) = a . relu(W x) / sqrt(width), both layers trained.

W (width, d) ~ N(0, nu^2 / d), a (width,) ~ N(0, nu^2): ``init_scale`` nu scales both
layers, so the output at init scales as nu^2.  The two-layer network of arXiv:2601.19791.
"""

from __future__ import annotations

import math

import torch

from grokinterp.models import TOY_MEASURES, ModelFamily, normal, toy_skip_text
from grokinterp.models.random_features import forward


def _parameters(cfg) -> dict[str, tuple[int, ...]]:
    return {"W": (cfg.width, cfg.d_in), "a": (cfg.width,)}


def _init(cfg, generator: torch.Generator) -> dict[str, torch.Tensor]:
    W = normal(generator, cfg.width, cfg.d_in, std=cfg.init_scale / math.sqrt(cfg.d_in))
    return {"W": W, "a": normal(generator, cfg.width, std=cfg.init_scale)}


def grad(params: dict[str, torch.Tensor], x: torch.Tensor, dz: torch.Tensor) -> dict:
    """Both layers' gradients of a loss whose derivative by the outputs is dz (N,)."""
    scale = 1 / math.sqrt(params["a"].shape[0])
    pre = x @ params["W"].T  # (N, width)
    hidden = torch.relu(pre)
    d_hidden = dz[:, None] * params["a"][None, :] * scale * (pre > 0)  # (N, width)
    return {"W": d_hidden.T @ x, "a": hidden.T @ dz * scale}


FAMILY = ModelFamily(
    name="two-layer",
    description="f(x) = a . relu(W x) / sqrt(width); W ~ N(0, nu^2/d), a ~ N(0, nu^2), trained",
    parameters=_parameters,
    trained=lambda cfg: ("W", "a"),
    init=_init,
    forward=forward,
    measures=TOY_MEASURES,
    skip_text=toy_skip_text("two-layer"),
    grad=grad,
)
