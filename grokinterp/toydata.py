"""The seeds' toy data sets, each a pure function of its fields and a seed.

``competing_features(n_train, n_test, d_sig, seed)`` ("Grokking & Delayed Generalization",
How I Study AI; the competing-features program): each training point has d_sig Gaussian
signal features and its own one-hot memorisation coordinate; test points have the signal
features only (their memorisation block is zero).  The label is sign(w . x_sig) in {-1, +1}
(+1 at 0) for a seeded unit vector w.  Inputs (N, d_sig + n_train).

``ridge_data(...)`` (arXiv:2601.19791, grokking in ridge regression): x ~ N(0, Sigma) in R^m
with Sigma diagonal, isotropic (I) or spiked (the first ``spike_dims`` coordinates at
variance ``spike_value``, the rest at 1); y = x . theta* + noise * N(0, 1), theta* =
``theta_norm`` times a seeded unit vector.

Both draw from one local generator seeded with ``seed`` (global RNG untouched), float64.

>>> d = competing_features(4, 3, 2, seed=0)
>>> tuple(d.x_train.shape), tuple(d.x_test.shape), d.x_train[:, 2:].tolist()[0]
((4, 6), (3, 6), [1.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from grokinterp.models.config import ToyConfig

__all__ = ["ToyData", "competing_features", "make_toy_data", "ridge_data", "ridge_spectrum"]


@dataclass(frozen=True)
class ToyData:
    """Train and test inputs and targets of a toy run, and what the data sets declare.

    x_*: (N, d) float64, y_*: (N,) float64 (+-1 for a classification set).  ``blocks``
    names slices of the input coordinates (competing-features: signal, memorisation), so a
    linear model's weight norm is reported per block.  ``facts``: the numbers the data
    description (data.json) records, e.g. lambda_min(Sigma) and ||theta*|| for ridge.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)
    theta_star: torch.Tensor | None = None
    sigma_diag: torch.Tensor | None = None


def competing_features(n_train: int, n_test: int, d_sig: int, seed: int) -> ToyData:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(d_sig, generator=generator, dtype=torch.float64)
    w = w / w.norm().clamp_min(1e-12)  # (d_sig,)
    s_train = torch.randn(n_train, d_sig, generator=generator, dtype=torch.float64)
    s_test = torch.randn(n_test, d_sig, generator=generator, dtype=torch.float64)

    def label(s: torch.Tensor) -> torch.Tensor:
        return torch.where(s @ w >= 0, 1.0, -1.0).to(torch.float64)  # (N,)

    d = d_sig + n_train
    x_train = torch.zeros(n_train, d, dtype=torch.float64)
    x_train[:, :d_sig] = s_train
    x_train[:, d_sig:] = torch.eye(n_train, dtype=torch.float64)  # one memorisation coord each
    x_test = torch.zeros(n_test, d, dtype=torch.float64)
    x_test[:, :d_sig] = s_test
    y_train, y_test = label(s_train), label(s_test)
    return ToyData(
        x_train,
        y_train,
        x_test,
        y_test,
        blocks={"signal": (0, d_sig), "memorisation": (d_sig, d)},
        facts={"frac_positive_train": float((y_train > 0).double().mean())},
    )


def ridge_spectrum(m: int, spectrum: str, spike_dims: int, spike_value: float) -> torch.Tensor:
    """The diagonal of Sigma, (m,) float64."""
    diag = torch.ones(m, dtype=torch.float64)
    if spectrum == "spiked":
        diag[:spike_dims] = spike_value
    return diag


def ridge_data(
    n_train: int,
    n_test: int,
    m: int,
    seed: int,
    spectrum: str = "isotropic",
    spike_dims: int = 0,
    spike_value: float = 1.0,
    theta_norm: float = 1.0,
    noise: float = 0.0,
) -> ToyData:
    generator = torch.Generator().manual_seed(seed)
    sigma = ridge_spectrum(m, spectrum, spike_dims, spike_value)  # (m,)
    direction = torch.randn(m, generator=generator, dtype=torch.float64)
    theta_star = theta_norm * direction / direction.norm()  # (m,)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, m, generator=generator, dtype=torch.float64) * sigma.sqrt()  # (n, m)
        eps = torch.randn(n, generator=generator, dtype=torch.float64)
        return x, x @ theta_star + noise * eps

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    facts = {
        "lambda_min_sigma": float(sigma.min()),
        "lambda_max_sigma": float(sigma.max()),
        "theta_star_norm": float(theta_star.norm()),
        "noise": noise,
    }
    return ToyData(x_train, y_train, x_test, y_test, facts=facts, theta_star=theta_star,
                   sigma_diag=sigma)  # fmt: skip


def make_toy_data(cfg: ToyConfig) -> ToyData:
    """The data set of a toy config."""
    if cfg.dataset == "competing-features":
        return competing_features(cfg.n_train, cfg.n_test, cfg.d_sig, cfg.data_seed)
    return ridge_data(
        cfg.n_train,
        cfg.n_test,
        cfg.m,
        cfg.data_seed,
        cfg.spectrum,
        cfg.spike_dims,
        cfg.spike_value,
        cfg.theta_norm,
        cfg.noise,
    )
