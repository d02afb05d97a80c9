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

    x_*: (N, d) float64, y_*: (N,) float64 (+-1 for a classification set; long class
    indices for modular).  ``blocks``
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
    # modular: the grid indices a*p + b of the train and test pairs; sparse-parity: the
    # relevant bits (docs/mlp.md)
    train_idx: torch.Tensor | None = None
    test_idx: torch.Tensor | None = None
    relevant: tuple[int, ...] = ()


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


def one_hot_pairs(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """The mlp's input for pairs (a, b): one-hot a and one-hot b, concatenated: (N, 2p)."""
    x = torch.zeros(len(a), 2 * p, dtype=torch.float64)
    rows = torch.arange(len(a))
    x[rows, a] = 1.0
    x[rows, p + b] = 1.0
    return x


def modular_data(p: int, operation: str, frac_train: float, seed: int) -> ToyData:
    """A token task of :mod:`grokinterp.tasks` as one-hot inputs: the same train/test split
    as a transformer run with the same (p, operation, frac_train, data_seed)."""
    from grokinterp.data import all_pairs, split_indices
    from grokinterp.tasks import get_task

    task = get_task(operation)
    a, b = all_pairs(p)
    labels = task.label(a, b, p)
    train_idx, test_idx = split_indices(p, frac_train, seed, task.valid_mask(p))
    x = one_hot_pairs(a, b, p)
    return ToyData(
        x[train_idx],
        labels[train_idx],
        x[test_idx],
        labels[test_idx],
        blocks={"a": (0, p), "b": (p, 2 * p)},
        facts={"n_pairs": float(task.n_valid(p))},
        train_idx=train_idx,
        test_idx=test_idx,
    )


def parity_relevant(n_bits: int, k: int, seed: int) -> tuple[int, ...]:
    """The k relevant bits of a sparse-parity set, sorted, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(sorted(torch.randperm(n_bits, generator=generator)[:k].tolist()))


def sparse_parity(n_bits: int, k: int, n_train: int, n_test: int, seed: int) -> ToyData:
    """Inputs uniform on {-1, +1}^n_bits; the label is the product of the k relevant bits
    (their parity, as +-1).  Relevant bits, train and test points from one generator."""
    relevant = parity_relevant(n_bits, k, seed)
    generator = torch.Generator().manual_seed(seed + 1)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 2, (n, n_bits), generator=generator).to(torch.float64) * 2 - 1
        return x, x[:, list(relevant)].prod(dim=1)

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return ToyData(
        x_train,
        y_train,
        x_test,
        y_test,
        facts={"frac_positive_train": float((y_train > 0).double().mean())},
        relevant=relevant,
    )


def make_toy_data(cfg: ToyConfig) -> ToyData:
    """The data set of a toy config."""
    if cfg.dataset == "modular":
        return modular_data(cfg.p, cfg.operation, cfg.frac_train, cfg.data_seed)
    if cfg.dataset == "sparse-parity":
        return sparse_parity(cfg.n_bits, cfg.k_relevant, cfg.n_train, cfg.n_test, cfg.data_seed)
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
