"""The task registry: what each ``RunConfig.operation`` computes, on which pairs, and in
which Fourier basis its circuit lives.

Definitions: docs/tasks.md.

Each :class:`Task` declares

- ``label(a, b, p) -> c``: the answer for token pairs (tensors of residues);
- its valid pairs: which of the p^2 pairs (a, b) are in the dataset (all, except for
  ``div``, which leaves out b = 0);
- the basis of its circuit (:meth:`Task.basis`): a cyclic group Z_n, a map from residues to
  group coordinates, and the sign in s = x + sign * y; or ``None`` with a stated reason.

The dataset always lists the p^2 pairs in the order i = a*p + b (the order the analysis's
forward pass uses); a task's valid pairs are a subset of that grid.

>>> TASKS["add"].label(torch.tensor([3]), torch.tensor([5]), 7).item()
1
>>> primitive_root(7), discrete_log_table(7).tolist()
(3, [-1, 0, 2, 1, 4, 5, 3])
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from grokinterp.errors import ConfigError
from grokinterp.fourier import FourierBasis, fourier_basis

__all__ = [
    "RAND_TABLE_SEED",
    "TASKS",
    "Task",
    "TaskBasis",
    "discrete_log_table",
    "get_task",
    "is_prime",
    "primitive_root",
    "rand_table",
]

# The seed of the ``rand`` table is RAND_TABLE_SEED + p (the arXiv number of Nanda et al.).
RAND_TABLE_SEED = 230105217


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _prime_factors(n: int) -> list[int]:
    out, d = [], 2
    while d * d <= n:
        if n % d == 0:
            out.append(d)
            while n % d == 0:
                n //= d
        d += 1
    return out + ([n] if n > 1 else [])


@functools.lru_cache(maxsize=64)
def primitive_root(p: int) -> int:
    """The smallest primitive root g of a prime p: g^k mod p runs over all of 1 .. p-1.

    g is a primitive root iff g^((p-1)/q) != 1 mod p for every prime q dividing p - 1.
    """
    if not is_prime(p):
        raise ValueError(f"primitive roots are taken mod a prime here, got p={p}")
    if p == 2:
        return 1
    factors = _prime_factors(p - 1)
    for g in range(2, p):
        if all(pow(g, (p - 1) // q, p) != 1 for q in factors):
            return g
    raise AssertionError("unreachable: every prime has a primitive root")


@functools.lru_cache(maxsize=64)
def discrete_log_table(p: int) -> torch.Tensor:
    """log[a] with g^log[a] = a mod p for a = 1 .. p-1 (g = :func:`primitive_root`), log[0] = -1.

    (p,) long; a bijection from 1 .. p-1 onto 0 .. p-2.  Read-only (cached).
    """
    g = primitive_root(p)
    log = torch.full((p,), -1, dtype=torch.long)
    x = 1
    for k in range(p - 1):
        log[x] = k
        x = x * g % p
    return log


@functools.lru_cache(maxsize=64)
def rand_table(p: int) -> torch.Tensor:
    """The ``rand`` task's answers T[a, b]: (p, p) long, uniform on 0 .. p-1, a function of p only.

    Drawn with a local generator seeded RAND_TABLE_SEED + p (global RNG untouched).
    """
    generator = torch.Generator().manual_seed(RAND_TABLE_SEED + p)
    return torch.randint(p, (p, p), generator=generator)


@dataclass(frozen=True)
class TaskBasis:
    """The cyclic group Z_n a task's circuit lives in, and how the (a, b) grid maps onto it.

    ``residue[z]`` is the residue at group coordinate z (identity for Z_p, g^z for the
    discrete log).  The n^2 basis pairs, in the order x*n + y with group coordinates
    (x, y), are the grid pairs ``pairs`` (index a*p + b); their answer sits at coordinate
    ``s = x + sign * y mod n``.  ``pairs`` is None when the basis pairs are the whole grid in
    its own order (the Z_p basis), so the measures skip a copy and stay bitwise unchanged.
    """

    name: str
    p: int
    n: int
    sign: int
    residue: torch.Tensor  # (n,) long
    pairs: torch.Tensor | None  # (n^2,) long, or None for all p^2 pairs in order

    @property
    def fourier(self) -> FourierBasis:
        return fourier_basis(self.n)

    @property
    def n_freqs(self) -> int:
        """Frequencies 1 .. n // 2 (n // 2 is the Nyquist frequency when n is even)."""
        return self.n // 2

    @functools.cached_property
    def s(self) -> torch.Tensor:
        """(n^2,) the answer's group coordinate x + sign * y mod n of each basis pair."""
        x = torch.arange(self.n).repeat_interleave(self.n)
        y = torch.arange(self.n).repeat(self.n)
        return (x + self.sign * y) % self.n

    def on_pairs(self, x: torch.Tensor) -> torch.Tensor:
        """The basis pairs' rows of x (..., p^2, m) -> (..., n^2, m) (x itself for Z_p)."""
        return x if self.pairs is None else x[..., self.pairs, :]

    def positions(self, grid_idx: torch.Tensor) -> torch.Tensor:
        """Positions in the basis-pair order of those grid pairs ``grid_idx`` that are
        basis pairs (the others are dropped), sorted.  Identity for Z_p."""
        if self.pairs is None:
            return grid_idx
        where = torch.full((self.p * self.p,), -1, dtype=torch.long)
        where[self.pairs] = torch.arange(len(self.pairs))
        pos = where[grid_idx]
        return pos[pos >= 0].sort().values


@functools.lru_cache(maxsize=64)
def _zp_basis(p: int, sign: int) -> TaskBasis:
    return TaskBasis("Z_p", p, p, sign, torch.arange(p), None)


@functools.lru_cache(maxsize=64)
def _log_basis(p: int, sign: int) -> TaskBasis:
    g = primitive_root(p)
    residue = torch.tensor([pow(g, z, p) for z in range(p - 1)], dtype=torch.long)  # (n,)
    pairs = (residue[:, None] * p + residue[None, :]).flatten()  # (n^2,): x*n + y
    return TaskBasis(f"discrete log to g={g} (Z_{p - 1})", p, p - 1, sign, residue, pairs)


@dataclass(frozen=True)
class Task:
    """One ``RunConfig.operation``: its answers, valid pairs and basis (docs/tasks.md)."""

    name: str
    formula: str
    label_fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
    basis_kind: str | None  # "Z_p", "log" or None
    sign: int = 1
    needs_prime: bool = False
    excludes_b_zero: bool = False
    no_basis_reason: str = ""

    def label(self, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
        """The answers for residue tensors a, b (same shape).  For ``div`` at b = 0 (not a
        valid pair) the value is 0 and never used."""
        return self.label_fn(a, b, p)

    def n_valid(self, p: int) -> int:
        """Number of valid pairs: p^2, or p (p - 1) when b = 0 is left out."""
        return p * (p - 1) if self.excludes_b_zero else p * p

    def valid_mask(self, p: int) -> torch.Tensor:
        """(p^2,) bool over the grid i = a*p + b: the pairs in the dataset."""
        mask = torch.ones(p * p, dtype=torch.bool)
        if self.excludes_b_zero:
            mask[::p] = False  # b = i % p = 0
        return mask

    def basis(self, p: int) -> TaskBasis | None:
        """The basis of the circuit at this p, or None (see ``no_basis_reason``)."""
        if self.basis_kind == "Z_p":
            return _zp_basis(p, self.sign)
        if self.basis_kind == "log":
            return _log_basis(p, self.sign)
        return None

    def check(self, p: int) -> None:
        """Raise ConfigError if this task cannot run at p."""
        if self.needs_prime and not is_prime(p):
            raise ConfigError(
                f"RunConfig.operation {self.name!r} needs a prime p (Z_p* must be a group), "
                f"got p={p}; use a prime such as 113"
            )


def _inverse(b: torch.Tensor, p: int) -> torch.Tensor:
    """b^(p-2) mod p: the inverse of b mod a prime p (0 for b = 0)."""
    out, base, e = torch.ones_like(b), b % p, p - 2
    while e:
        if e & 1:
            out = out * base % p
        base = base * base % p
        e >>= 1
    return out


_REASON_POLY = (
    "no Fourier basis: {f} is not a group operation (it has no identity element), so no "
    "reindexing of the residues turns it into x + y in a cyclic group"
)
TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("add", "(a + b) mod p", lambda a, b, p: (a + b) % p, "Z_p", sign=1),
        Task("sub", "(a - b) mod p", lambda a, b, p: (a - b) % p, "Z_p", sign=-1),
        Task("mul", "(a * b) mod p", lambda a, b, p: (a * b) % p, "log", 1, needs_prime=True),
        Task(
            "div",
            "(a * b^-1) mod p, b != 0",
            lambda a, b, p: a * _inverse(b, p) % p,
            "log",
            sign=-1,
            needs_prime=True,
            excludes_b_zero=True,
        ),
        Task(
            "x2xyy2",
            "(a^2 + a b + b^2) mod p",
            lambda a, b, p: (a * a + a * b + b * b) % p,
            None,
            no_basis_reason=_REASON_POLY.format(f="a^2 + ab + b^2"),
        ),
        Task(
            "x3xy",
            "(a^3 + a b) mod p",
            lambda a, b, p: (a * a * a + a * b) % p,
            None,
            no_basis_reason=_REASON_POLY.format(f="a^3 + ab"),
        ),
        Task(
            "rand",
            "T[a, b], a fixed random table (seed RAND_TABLE_SEED + p)",
            lambda a, b, p: rand_table(p)[a, b],
            None,
            no_basis_reason="no Fourier basis: the answers are a random table with no structure "
            "(the control that must never generalise)",
        ),
    ]
}


def get_task(name: str) -> Task:
    """The registered task ``name``; ConfigError naming the allowed ones otherwise."""
    if name not in TASKS:
        raise ConfigError(
            f"RunConfig.operation must be one of {tuple(TASKS)}, got {name!r} (see docs/tasks.md)"
        )
    return TASKS[name]
