"""Sharpness: the top eigenvalue of the Hessian of the training loss.

Definition: docs/measures.md, "Sharpness".

``lambda_max = max eig of d^2 L_train / d theta^2`` over every trainable parameter theta
(all weights, and the MLP biases when ``RunConfig.biases == "mlp"``; the attention
biases are held at zero and are not parameters).  It is found by power iteration on
Hessian-vector products, ``H v = d/de grad L(theta + e v)`` at e = 0, computed with
``torch.func`` (forward-mode ``jvp`` of the reverse-mode ``grad``), so the Hessian is
never built.  Everything runs in float64: after memorisation the training loss is about
1e-7, below what float32 can resolve, and so are its curvatures' differences.

Power iteration converges to the eigenvalue of largest magnitude.  When that one is
negative (a saddle), a second power iteration on ``H - lambda I``, whose eigenvalues
are all >= 0 and largest for the top one, gives the most positive eigenvalue, so the
result is always the top (most positive) eigenvalue.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from grokinterp.config import RunConfig
from grokinterp.data import Dataset
from grokinterp.forward import last_position
from grokinterp.measures.losses import cross_entropy

__all__ = ["power_iteration", "top_hessian_eigenvalue", "train_loss_sharpness", "trainable_keys"]

DEFAULT_TOL = 1e-3  # relative change of the Rayleigh quotient between iterations
DEFAULT_MAX_ITER = 50


def power_iteration(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[float, int]:
    """The eigenvalue of largest magnitude of a symmetric map, and the iterations used.

    matvec: v (n,) -> A v.  Starts from a seeded standard-normal vector; stops when the
    Rayleigh quotient v^T A v changes by at most ``tol`` times its size, or after
    ``max_iter`` products.

    >>> A = torch.diag(torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64))
    >>> value, _ = power_iteration(lambda v: A @ v, 3, tol=1e-12, max_iter=500)
    >>> round(value, 6)
    5.0
    """
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=generator, dtype=dtype)
    v = v / v.norm()
    value = float("nan")
    for it in range(1, max_iter + 1):
        w = matvec(v)  # (n,)
        new = float(v @ w)  # Rayleigh quotient of a unit vector
        norm = w.norm()
        if norm == 0:  # v lies in the null space: A v = 0
            return 0.0, it
        converged = abs(new - value) <= tol * abs(new)
        value, v = new, w / norm
        if converged:
            return value, it
    return value, max_iter


def top_hessian_eigenvalue(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    theta: torch.Tensor,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    seed: int = 0,
) -> tuple[float, int]:
    """The most positive eigenvalue of the Hessian of ``loss_fn`` at ``theta`` (n,).

    Returns (eigenvalue, Hessian-vector products used).  Hessian-vector products are
    ``torch.func.jvp`` of ``torch.func.grad(loss_fn)``, in ``theta``'s dtype.
    """
    grad = torch.func.grad(loss_fn)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(grad, (theta,), (v,))[1]

    n = theta.numel()
    value, used = power_iteration(hvp, n, tol, max_iter, seed, theta.dtype)
    if value < 0:  # the dominant eigenvalue is negative: find the top one of H - value I
        shift = value
        top, more = power_iteration(lambda v: hvp(v) - shift * v, n, tol, max_iter, seed + 1)
        value, used = top + shift, used + more
    return value, used


@functools.lru_cache(maxsize=16)
def trainable_keys(cfg: RunConfig) -> tuple[str, ...]:
    """TransformerLens state-dict keys of the parameters training updates, sorted."""
    from grokinterp.model import build_model, tl_parameters

    model = build_model(cfg)
    return tuple(sorted(k for k, v in tl_parameters(model).items() if v.requires_grad))


def train_loss_sharpness(
    state: dict[str, torch.Tensor],
    cfg: RunConfig,
    dataset: Dataset,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    seed: int = 0,
) -> tuple[float, int]:
    """Top Hessian eigenvalue of the training loss at one checkpoint, in float64.

    state: a TransformerLens state dict (one checkpoint).  The loss is the mean
    cross-entropy at '=' over the run's training pairs, from
    :func:`grokinterp.forward.last_position` (the forward pass training uses).
    Returns (eigenvalue, Hessian-vector products used).
    """
    keys = trainable_keys(cfg)
    missing = [k for k in keys if k not in state]
    if missing:
        raise KeyError(f"checkpoint lacks trainable tensors {missing}")
    fixed = {k: v.detach().double() for k, v in state.items() if k not in keys}
    shapes = [state[k].shape for k in keys]
    sizes = [state[k].numel() for k in keys]
    theta = torch.cat([state[k].detach().double().flatten() for k in keys])  # (n,)
    tokens = dataset.train_tokens
    a, b, labels = tokens[:, 0], tokens[:, 1], dataset.train_labels

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = flat.split(sizes)
        weights = {**fixed, **{k: t.view(s) for k, t, s in zip(keys, parts, shapes, strict=True)}}
        logits = last_position(
            weights, a, b, cfg.n_heads, cfg.act_fn, attn_coeff=cfg.attn_coeff
        ).logits  # (N, p)
        return cross_entropy(logits, labels)

    return top_hessian_eigenvalue(loss, theta, tol, max_iter, seed)
