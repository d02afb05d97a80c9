"""The exact path of gradient descent on ridge regression: every epoch's losses in closed form.

Gradient descent on L(theta) = (1/n)||X theta - y||^2 + lam ||theta||^2 is linear:
theta_{t+1} = (I - lr H) theta_t + lr b with H = 2 (X^T X / n + lam I) and b = 2 X^T y / n.
With theta_inf = H^-1 b (the ridge solution) and X = U S V^T (thin SVD, V: m x r),

    theta_t - theta_inf = V diag(q^t) V^T delta_0 + q_0^t P_null delta_0,
    q_i = 1 - 2 lr (s_i^2 / n + lam),   q_0 = 1 - 2 lr lam,   delta_0 = theta_0 - theta_inf,

since the m - r directions orthogonal to the data all decay by the same q_0.  So the
residuals on any inputs are a constant plus r + 1 columns times those powers, and a loss is
a quadratic form in d_t = (q^t delta_row, q_0^t): (|a|^2 + 2 d_t . C^T a + d_t^T C^T C d_t) / N.
Every epoch costs O((r + 1)^2) instead of a pass over the data: :func:`exact_losses`.

:func:`write_exact_run` writes a toy run directory from it (ToyConfig.exact_path);
:func:`grokinterp.bench.ridge.bench_ridge` times it against the iterative run
(``grokinterp bench ridge``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grokinterp import files
from grokinterp.errors import ConfigError
from grokinterp.models.config import ToyConfig
from grokinterp.schedule import checkpoint_epochs
from grokinterp.storage import atomic_write_text, format_metric_rows, metrics_header, save_tensors
from grokinterp.toydata import ToyData

__all__ = ["RidgePath", "exact_losses", "ridge_path"]


@dataclass(frozen=True)
class RidgePath:
    """The closed form of one GD run: theta_t = theta_inf + V (q^t * delta_row) + q0^t
    delta_null.  V (m, r), q (r,), delta_row (r,), delta_null (m,), all float64 numpy."""

    theta_inf: np.ndarray
    V: np.ndarray
    q: np.ndarray
    q0: float
    delta_row: np.ndarray
    delta_null: np.ndarray

    def powers(self, epochs: np.ndarray) -> np.ndarray:
        """d_t = (q^t * delta_row, q0^t) for each epoch: (T, r + 1)."""
        t = np.asarray(epochs, dtype=float)[:, None]
        row = self.q[None, :] ** t * self.delta_row[None, :]  # (T, r)
        return np.concatenate([row, self.q0**t], axis=1)

    def theta(self, epoch: int) -> np.ndarray:
        """theta at ``epoch``, (m,)."""
        d = self.powers(np.array([epoch]))[0]
        return self.theta_inf + self.V @ d[:-1] + d[-1] * self.delta_null

    def losses(self, x: np.ndarray, y: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """Mean squared error of theta_t on (x (N, m), y (N,)) at each epoch: (T,)."""
        a = x @ self.theta_inf - y  # (N,)
        C = np.concatenate([x @ self.V, (x @ self.delta_null)[:, None]], axis=1)  # (N, r + 1)
        G, g = C.T @ C, C.T @ a  # (r + 1, r + 1), (r + 1,)
        d = self.powers(epochs)  # (T, r + 1)
        quad = ((d @ G) * d).sum(axis=1)
        return np.maximum(a @ a + 2 * d @ g + quad, 0.0) / len(y)


def ridge_path(
    x: np.ndarray, y: np.ndarray, theta0: np.ndarray, lr: float, lam: float
) -> RidgePath:
    """The closed form of GD from theta0 on (1/n)||x theta - y||^2 + lam ||theta||^2."""
    n, m = x.shape
    U, s, Vt = np.linalg.svd(x, full_matrices=False)
    keep = s > s.max() * max(n, m) * np.finfo(float).eps  # the data's rank r
    s, V = s[keep], Vt[keep].T  # (r,), (m, r)
    h = s**2 / n + lam  # eigenvalues of X^T X / n + lam on the data's row space
    if lam > 0:
        theta_inf = V @ ((V.T @ (x.T @ y) / n) / h)
    else:  # the minimum-norm path limit from theta0: its null part never moves
        theta_inf = V @ ((V.T @ (x.T @ y) / n) / h) + (theta0 - V @ (V.T @ theta0))
    delta = theta0 - theta_inf
    delta_row = V.T @ delta
    delta_null = delta - V @ delta_row
    return RidgePath(theta_inf, V, 1 - 2 * lr * h, 1 - 2 * lr * lam, delta_row, delta_null)


def _path_of(cfg: ToyConfig, data: ToyData) -> RidgePath:
    from grokinterp.models import get_family

    generator = torch.Generator().manual_seed(cfg.init_seed)
    theta0 = get_family("linear").init(cfg, generator)["w"].numpy()
    return ridge_path(data.x_train.numpy(), data.y_train.numpy(), theta0, cfg.lr,
                      cfg.weight_decay)  # fmt: skip


def exact_losses(cfg: ToyConfig, data: ToyData, epochs: np.ndarray | None = None):
    """(epochs, train losses, test losses) of a linear ridge GD run, without iterating."""
    epochs = np.arange(cfg.epochs + 1) if epochs is None else np.asarray(epochs)
    path = _path_of(cfg, data)
    train = path.losses(data.x_train.numpy(), data.y_train.numpy(), epochs)
    test = path.losses(data.x_test.numpy(), data.y_test.numpy(), epochs)
    return epochs, train, test


def write_exact_run(
    cfg: ToyConfig, out: Path, data: ToyData, on_epoch: Callable[[dict], None] | None = None
) -> None:
    """The metrics and checkpoints of a run, from the closed form (written in one go).

    Refuses a learning rate above the stability limit: with |q_i| > 1 the iteration
    diverges, and there is nothing to record."""
    path = _path_of(cfg, data)
    if max(np.abs(path.q).max(), abs(path.q0)) > 1:
        h_max = (1 - path.q.min()) / (2 * cfg.lr)
        raise ConfigError(
            f"ToyConfig.lr = {cfg.lr:g} makes gradient descent diverge on this data: the "
            f"stability limit is 1 / lambda_max(X^T X / n + lambda I) = {1 / h_max:.4g}; "
            f"lower lr"
        )
    epochs = np.arange(cfg.epochs + 1)
    train = path.losses(data.x_train.numpy(), data.y_train.numpy(), epochs)
    test = path.losses(data.x_test.numpy(), data.y_test.numpy(), epochs)
    rows = []
    for e in epochs:
        evaluate = e % cfg.eval_every == 0 or e == cfg.epochs
        row = {"epoch": int(e), "lr": cfg.lr, "train_loss": float(train[e])}
        if evaluate:
            row.update(train_acc=float(train[e] < cfg.c), test_loss=float(test[e]),
                       test_acc=float(test[e] < cfg.c))  # fmt: skip
        rows.append(row)
    for e in checkpoint_epochs(cfg.checkpoints, cfg.epochs):
        meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(e)}
        theta = torch.from_numpy(path.theta(e))
        save_tensors(files.checkpoint_path(out, e), {"w": theta}, meta, dtype=None)
    meta = {"format": files.OPTIMIZER_FORMAT, "epoch": str(cfg.epochs)}
    save_tensors(out / files.OPTIMIZER, {"epoch": torch.tensor([cfg.epochs])}, meta, dtype=None)
    atomic_write_text(out / files.METRICS, metrics_header() + format_metric_rows(rows))
    if on_epoch is not None:
        for row in rows:
            on_epoch(row)
