"""The linear family: f(x) = w . x, w in R^d (logistic or squared loss, by the data set).

Init w ~ N(0, nu^2 I) with nu = ``init_scale`` (0: the competing-features program's zero
init).  With squared loss on the ridge data this is the ridge paper's model
(arXiv:2601.19791); with logistic loss on the competing-features data, the
competing-features program's logistic regression.
"""

from __future__ import annotations

import math

import torch

from grokinterp.models import TOY_MEASURES, ModelFamily, normal, toy_skip_text


def _parameters(cfg) -> dict[str, tuple[int, ...]]:
    return {"w": (cfg.d_in,)}


def _init(cfg, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"w": normal(generator, cfg.d_in, std=cfg.init_scale)}


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (N, d) -> (N,)."""
    return x @ params["w"]


def grad(params: dict[str, torch.Tensor], x: torch.Tensor, dz: torch.Tensor) -> dict:
    """The gradient of a loss whose derivative by the outputs is dz (N,): x^T dz."""
    return {"w": x.T @ dz}  # (d,)


def sgd_epoch(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    order: list[int],
    lr: float,
    wd: float,
    loss: str,
) -> dict[str, torch.Tensor]:
    """One epoch of batch-1 SGD with decoupled decay, in numpy (the per-step torch calls
    cost ~10x more): for i in order, w <- (1 - lr wd) w, then w <- w - lr l'(w . x_i) x_i.
    The same update as the generic path of grokinterp.models.train (tested equal)."""
    w = params["w"].numpy().copy()  # (d,)
    xs, ys = x.numpy(), y.numpy()
    shrink = 1 - lr * wd
    for i in order:
        w *= shrink
        xi, yi = xs[i], float(ys[i])
        z = float(xi @ w)
        if loss == "squared":
            dz = 2 * (z - yi)
        else:  # -y sigmoid(-y z), written so that exp never overflows
            m = yi * z
            dz = -yi / (1 + math.exp(m)) if m < 0 else -yi * math.exp(-m) / (1 + math.exp(-m))
        w -= (lr * dz) * xi
    return {"w": torch.from_numpy(w)}


FAMILY = ModelFamily(
    name="linear",
    description="f(x) = w . x; w ~ N(0, nu^2)",
    parameters=_parameters,
    trained=lambda cfg: ("w",),
    init=_init,
    forward=forward,
    measures=TOY_MEASURES,
    skip_text=toy_skip_text("linear"),
    grad=grad,
    sgd_epoch=sgd_epoch,
)
