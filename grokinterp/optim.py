"""Optimisers and Grokfast gradient filters of a run (``RunConfig.optimizer``, ``grokfast``).

The exact update rules are in docs/training-options.md.  ``adamw`` is torch's AdamW
(decoupled weight decay, the default); ``adam`` and ``sgd`` add ``weight_decay * w`` to the
gradient (an L2 penalty).  A Grokfast filter (Lee et al. 2024, "Grokfast: Accelerated
Grokking by Amplifying Slow Gradients") rewrites the gradients after backward and before
the optimiser step, as the authors' ``gradfilter_ema`` and ``gradfilter_ma`` do:

- ``ema``: mu <- alpha * mu + (1 - alpha) * g (mu starts as the first g), g <- g + lamb * mu;
- ``ma``: keep the last ``window`` raw gradients; once ``window`` are kept,
  g <- g + lamb * mean(kept), the current gradient included; before that g is unchanged.

Filter state is a dict of tensors so it is saved with the optimiser state and a resumed
run continues bitwise (:meth:`GradFilter.state_tensors`, :meth:`GradFilter.load_state_tensors`).
"""

from __future__ import annotations

from collections import deque

import torch

from grokinterp.config import RunConfig

__all__ = ["GradFilter", "EmaFilter", "MaFilter", "build_optimizer", "build_grad_filter"]


def build_optimizer(cfg: RunConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The torch optimiser ``cfg.optimizer`` over ``params`` (learning rate set per step)."""
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
