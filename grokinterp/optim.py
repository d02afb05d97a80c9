"""Optimisers and Grokfast gradient filters of a run (``RunConfig.optimizer``, ``grokfast``).

The exact update rules are in docs/training-options.md.  ``adamw`` is torch's AdamW
(decoupled weight decay, the default); ``adam`` and ``sgd`` add ``weight_decay * w`` to the
gradient (an L2 penalty).  A Grokfast filter (Lee et al. 2024, "Grokfast: Accelerated
Grokking by Amplifying Slow Gradients") rewrites the gradients after backward and before
the optimiser step, as the authors' ``gradfilter_ema`` and ``gradfilter_ma`` do:

- ``ema``: mu <- alpha * mu + (1 - alpha) * g (mu starts as the first g), g <- g + lamb * mu;
- ``ma``: keep the last ``window`` raw gradients; once ``window`` are kept,
  g <- g + lamb * mean(kept), the current gradient included; before that g is unchanged.

``RunConfig.orthograd`` wraps any of the three in :class:`OrthoGrad` (Prieto et al. 2025,
"Grokking at the edge of numerical stability", arXiv:2501.04697, "perpendicular gradient"):
before each step, each parameter tensor's gradient g loses its component along the
tensor's weights w and is rescaled to its former norm,

    g_perp = g - (w . g / w . w) w,    g <- g_perp * |g| / |g_perp|,

(w = 0 leaves g unchanged), then the wrapped optimiser steps as usual.  It runs after the
Grokfast filter, on the gradient the optimiser would have used.

Filter state is a dict of tensors so it is saved with the optimiser state and a resumed
run continues bitwise (:meth:`GradFilter.state_tensors`, :meth:`GradFilter.load_state_tensors`).
"""

from __future__ import annotations

from collections import deque

import torch

from grokinterp.config import RunConfig

__all__ = [
    "EmaFilter",
    "GradFilter",
    "MaFilter",
    "OrthoGrad",
    "build_grad_filter",
    "build_optimizer",
    "orthogonalise_",
]

_TINY = 1e-30  # guards the divisions of orthogonalise_ when w or g_perp is 0


def build_optimizer(cfg: RunConfig, params: list[torch.nn.Parameter]):
    """The torch optimiser ``cfg.optimizer`` over ``params`` (learning rate set per step),
    wrapped in :class:`OrthoGrad` when ``cfg.orthograd``."""
    base = _base_optimizer(cfg, params)
    return OrthoGrad(base) if cfg.orthograd else base


@torch.no_grad()
def orthogonalise_(params: list[torch.nn.Parameter]) -> None:
    """Replace each ``p.grad`` by its part orthogonal to ``p`` (flattened), rescaled to the
    gradient's former norm, in place (the :class:`OrthoGrad` projection)."""
    for p in params:
        if p.grad is None:
            continue
        w, g = p.detach().flatten(), p.grad.flatten()
        g_perp = g - (w @ g) / (w @ w + _TINY) * w
        p.grad.copy_((g_perp * (g.norm() / (g_perp.norm() + _TINY))).view_as(p.grad))


class OrthoGrad:
    """Any torch optimiser, stepping on the gradient with its component along each weight
    tensor removed (:func:`orthogonalise_`).  State, param groups, ``zero_grad`` and
    ``state_dict`` are the wrapped optimiser's, so checkpoints and resume are unchanged."""

    def __init__(self, base: torch.optim.Optimizer):
        self.base = base

    @property
    def param_groups(self) -> list[dict]:
        return self.base.param_groups

    @property
    def state(self):
        return self.base.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for group in self.base.param_groups:
            orthogonalise_(group["params"])
        self.base.step()

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


def _base_optimizer(cfg: RunConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
        )
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
    )


class GradFilter:
    """No filter (``grokfast = "none"``): the gradients pass unchanged."""

    def apply(self, params: list[torch.nn.Parameter]) -> None:
        """Rewrite ``p.grad`` of every parameter in place (after backward, before the step)."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise ValueError(f"unexpected gradient-filter state {sorted(tensors)}")


class EmaFilter(GradFilter):
    """Grokfast-EMA: mu <- alpha mu + (1 - alpha) g, g <- g + lamb mu; mu_0 = the first g."""

    def __init__(self, alpha: float, lamb: float):
        self.alpha, self.lamb = alpha, lamb
        self.mu: list[torch.Tensor] | None = None

    @torch.no_grad()
    def apply(self, params: list[torch.nn.Parameter]) -> None:
        grads = [p.grad for p in params]
        if self.mu is None:  # as the reference: start from g, then update (mu stays ~g)
            self.mu = [g.detach().clone() for g in grads]
        for mu, g in zip(self.mu, grads, strict=True):
            mu.copy_(mu * self.alpha + g * (1 - self.alpha))
            g.copy_(g + mu * self.lamb)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.mu is None else {f"{i}.ema": m for i, m in enumerate(self.mu)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.mu = [tensors[f"{i}.ema"].clone() for i in range(len(tensors))] or None


class MaFilter(GradFilter):
    """Grokfast-MA: g <- g + lamb * mean(last ``window`` raw gradients) once ``window`` are kept."""

    def __init__(self, window: int, lamb: float):
        self.window, self.lamb = window, lamb
        self.kept: list[deque[torch.Tensor]] | None = None

    @torch.no_grad()
    def apply(self, params: list[torch.nn.Parameter]) -> None:
        grads = [p.grad for p in params]
        if self.kept is None:
            self.kept = [deque(maxlen=self.window) for _ in grads]
        for kept, g in zip(self.kept, grads, strict=True):
            kept.append(g.detach().clone())  # the raw gradient, before the filter
            if len(kept) == self.window:
                mean = sum(kept) / len(kept)  # summed oldest first, as the reference
                g.copy_(g + mean * self.lamb)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.kept is None:
            return {}
        # (n_kept, *shape), oldest first
        return {f"{i}.window": torch.stack(list(k)) for i, k in enumerate(self.kept)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        n = len(tensors)
        self.kept = [
            deque((t.clone() for t in tensors[f"{i}.window"].unbind(0)), maxlen=self.window)
            for i in range(n)
        ] or None


def build_grad_filter(cfg: RunConfig) -> GradFilter:
    """The gradient filter ``cfg.grokfast`` with its settings."""
    if cfg.grokfast == "ema":
        return EmaFilter(cfg.grokfast_alpha, cfg.grokfast_lamb)
    if cfg.grokfast == "ma":
        return MaFilter(cfg.grokfast_window, cfg.grokfast_lamb)
    return GradFilter()
