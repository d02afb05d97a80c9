"""The Fourier basis of Z_p and its 2-D transforms, on known answers (tiny p)."""

import math

import pytest
import torch

from grokinterp.fourier import (
    fourier_2d,
    fourier_basis,
    freq_energy_2d,
    freq_energy_pairs,
    freq_group_mask_2d,
    freq_norms,
)


@pytest.mark.parametrize("p", [7, 13, 31])
def test_basis_is_orthonormal_with_labelled_rows(p):
    basis = fourier_basis(p)
    f = basis.matrix
    assert f.shape == (p, p) and f.dtype == torch.float64
    torch.testing.assert_close(f @ f.T, torch.eye(p, dtype=torch.float64))
    assert basis.labels[:3] == ("const", "cos 1", "sin 1")
    assert basis.labels[-1] == f"sin {(p - 1) // 2}"
    assert basis.freq_of_row.tolist() == [0] + [k for k in range(1, p // 2 + 1) for _ in (0, 1)]
    x = torch.arange(p, dtype=torch.float64)
    torch.testing.assert_close(f[3], torch.cos(2 * math.pi * 2 * x / p) / math.sqrt(p / 2))
    torch.testing.assert_close(f[0], torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))


def test_basis_is_cached_and_rejects_p_below_2():
    assert fourier_basis(11) is fourier_basis(11)
    with pytest.raises(ValueError, match="p >= 2"):
        fourier_basis(1)


@pytest.mark.parametrize("n", [4, 6, 12])
def test_even_basis_ends_with_the_nyquist_cosine(n):
    """Z_n for even n (the discrete-log basis, n = p - 1): one Nyquist row (-1)^x / sqrt(n)."""
    basis = fourier_basis(n)
    f = basis.matrix
    torch.testing.assert_close(f @ f.T, torch.eye(n, dtype=torch.float64))
    assert basis.labels[-2:] == (f"sin {n // 2 - 1}", f"cos {n // 2}")
    assert basis.nyquist == n // 2 and basis.n_freqs == n // 2
    expected = torch.tensor([(-1.0) ** x for x in range(n)], dtype=torch.float64) / math.sqrt(n)
    torch.testing.assert_close(f[-1], expected)
    assert basis.freq_of_row.tolist()[-1] == n // 2
    assert basis.rows_of([1, n // 2]).tolist() == [1, 2, n - 1]
    pm = basis.pair_matrix([n // 2, 1])  # (2, 2, n): the Nyquist sine row is 0
    torch.testing.assert_close(pm[0, 0], f[-1])
    assert pm[0, 1].abs().max() == 0
    torch.testing.assert_close(pm[1], f[1:3])
    # a pure Nyquist signal: all of it in the last frequency, cos only
    norms = freq_norms((f @ (3.0 * expected)).abs())
    torch.testing.assert_close(norms, torch.tensor([0.0] * (n // 2) + [3.0], dtype=torch.float64))


@pytest.mark.parametrize("n", [4, 6, 10])
def test_even_group_mask_has_3_nyquist_terms_and_fft_energies_match(n):
    mask = freq_group_mask_2d(n)
    assert mask.shape == (n // 2 + 1, n, n)
    assert [int(m.sum()) for m in mask] == [1] + [8] * (n // 2 - 1) + [3]
    assert not (mask.sum(0) > 1).any()  # disjoint
    basis = fourier_basis(n)
    x = torch.randn(2, n * n, 3, dtype=torch.float64)
    grid = x.unflatten(1, (n, n)).movedim(-1, 1)  # (2, 3, n_a, n_b)
    explicit = torch.einsum("cnij,kij->cnk", fourier_2d(grid, basis) ** 2, mask.double())
    torch.testing.assert_close(freq_energy_pairs(x, basis), explicit)


def test_freq_norms_group_cos_and_sin():
    norms = torch.tensor([2.0, 3.0, 4.0, 0.0, 1.0])  # p = 5
    torch.testing.assert_close(freq_norms(norms), torch.tensor([2.0, 5.0, 1.0]))


@pytest.mark.parametrize("p", [7, 11])
def test_group_mask_has_8_terms_per_frequency(p):
    mask = freq_group_mask_2d(p)
    assert mask.shape == ((p + 1) // 2, p, p)
    assert mask[0].sum() == 1 and all(int(mask[k].sum()) == 8 for k in range(1, (p + 1) // 2))
    assert not (mask.sum(0) > 1).any()  # disjoint


@pytest.mark.parametrize("p", [7, 13])
def test_fft_energies_equal_the_explicit_2d_transform(p):
    basis = fourier_basis(p)
    x = torch.randn(3, p * p, 5, dtype=torch.float64)
    grid = x.unflatten(1, (p, p)).movedim(-1, 1)  # (3, 5, p_a, p_b)
    explicit = torch.einsum(
        "cnij,kij->cnk", fourier_2d(grid, basis) ** 2, freq_group_mask_2d(p).double()
    )
    torch.testing.assert_close(freq_energy_pairs(x, basis), explicit)
    torch.testing.assert_close(freq_energy_2d(grid, basis), explicit)
    # Parseval: the 2-D transform keeps the norm
    torch.testing.assert_close(
        (fourier_2d(grid, basis) ** 2).sum((-2, -1)), (grid**2).sum((-2, -1))
    )


def test_a_function_of_one_frequency_puts_all_its_energy_there():
    p, k = 11, 3
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    w = 2 * math.pi * k / p
    f = torch.cos(w * (a + b)) + 0.5 * torch.sin(w * a) - 2 * torch.cos(w * b) * torch.sin(w * a)
    energy = freq_energy_2d(f, fourier_basis(p))
    torch.testing.assert_close(energy[k], (f**2).sum())
    assert energy.sum() == pytest.approx(float((f**2).sum()))
