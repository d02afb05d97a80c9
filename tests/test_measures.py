"""Progress measures on known answers, and the batched forward against TransformerLens hooks."""

import math

import pytest
import torch

from grokinterp.batched import hooked_last_position, last_position, stack_states
from grokinterp.config import RunConfig
from grokinterp.fourier import fourier_basis, freq_norms
from grokinterp.measures import (
    accuracy,
    assign_neurons,
    attention_to,
    attention_to_a_map,
    cross_entropy,
    embedding_components,
    excluded_logits,
    gini,
    key_frequencies,
    logit_explained_variance,
    neuron_freq_fractions,
    neuron_logit_map,
    neurons_per_freq,
    restricted_logits,
    sum_index,
    weight_norms_sq,
    wl_components,
)
from grokinterp.model import build_model

P = 13


def _grid(p):
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    return a, b


def _cos_logits(p, freqs, amps):
    """Logits[a*p+b, c] = sum_k amp_k cos(w_k (a + b - c))."""
    a, b = _grid(p)
    c = torch.arange(p, dtype=torch.float64)
    out = torch.zeros(p * p, p, dtype=torch.float64)
    for k, amp in zip(freqs, amps, strict=True):
        out += amp * torch.cos(2 * math.pi * k / p * (a + b)[:, None] - 2 * math.pi * k / p * c)
    return out


def test_embedding_of_one_frequency_puts_all_its_norm_there():
    p, k, d = P, 4, 6
    t = torch.arange(p + 1, dtype=torch.float64)  # the '=' row must be ignored
    w = 2 * math.pi * k / p
    v1, v2 = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    W_E = torch.cos(w * t)[:, None] * v1 + torch.sin(w * t)[:, None] * v2
    W_E[p] = 100.0
    per_freq = freq_norms(embedding_components(W_E, fourier_basis(p)))
    assert per_freq.shape == ((p + 1) // 2,)
    torch.testing.assert_close(per_freq[k], W_E[:p].norm())
    assert per_freq.sum() - per_freq[k] < 1e-10


def test_wl_spectrum_transforms_the_output_index():
    p, k, n = P, 2, 5
    c = torch.arange(p, dtype=torch.float64)
    W_L = torch.randn(n, 1, dtype=torch.float64) * torch.sin(2 * math.pi * k * c / p) + 3.0
    comps = wl_components(W_L, fourier_basis(p))
    per_freq = freq_norms(comps)
    assert set(torch.nonzero(per_freq > 1e-9).flatten().tolist()) == {0, k}
    torch.testing.assert_close(comps.pow(2).sum(), W_L.pow(2).sum())
    W_out, W_U = torch.randn(n, 3), torch.randn(3, p)
    torch.testing.assert_close(neuron_logit_map(W_out, W_U), W_out @ W_U)


def test_synthetic_neurons_are_assigned_their_frequency():
    p = P
    a, b = _grid(p)
    freqs = [1, 5, 5, 6]
    cols = []
    for j, k in enumerate(freqs):
        w = 2 * math.pi * k / p
        cols.append(torch.cos(w * a + j) + 0.7 * torch.sin(w * b) + torch.cos(w * (a - b)) + 2)
    mixed = torch.cos(2 * math.pi * 2 / p * a) + torch.cos(2 * math.pi * 3 / p * b)  # 50/50
    dead = torch.zeros(p * p, dtype=torch.float64)
    acts = torch.stack([*cols, mixed, dead], dim=-1).float()  # (p^2, 6)
    fractions = neuron_freq_fractions(acts, p)
    assert fractions.shape == (6, (p + 1) // 2)
    best, frac, owner = assign_neurons(fractions, threshold=0.85)
    assert best[:4].tolist() == freqs and torch.allclose(
        frac[:4], torch.ones(4, dtype=torch.float64)
    )
    assert frac[4] == pytest.approx(0.5, abs=1e-5) and owner[4] == 0
    assert torch.isnan(frac[5]) and owner[5] == 0
    counts = neurons_per_freq(owner, p)
    assert counts[5] == 2 and counts[0] == 2
    assert key_frequencies(counts) == [1, 5, 6]


def test_gini_known_values():
    n = 10
    assert float(gini(torch.ones(n))) == pytest.approx(0.0)
    assert float(gini(torch.eye(n)[3])) == pytest.approx(1 - 1 / n)
    assert float(gini(torch.zeros(n))) == 0.0
    batch = gini(torch.stack([torch.ones(n), torch.eye(n)[0]]))
    torch.testing.assert_close(batch, torch.tensor([0.0, 0.9], dtype=torch.float64))


def test_losses_in_float64():
    logits = torch.tensor([[[0.0, 1e-3], [5.0, 0.0]]])
    labels = torch.tensor([1, 0])
    expected = -(torch.log_softmax(logits.double(), -1)[0, [0, 1], [1, 0]]).mean()
    assert cross_entropy(logits, labels).dtype == torch.float64
    torch.testing.assert_close(cross_entropy(logits, labels)[0], expected)
    assert float(accuracy(logits, labels)[0]) == 1.0


def test_cos_logits_are_their_own_restriction_and_fully_explained():
    p, freqs = P, [2, 5]
    logits = _cos_logits(p, freqs, [3.0, 2.0])
    s = sum_index(p)
    labels = s
    own = cross_entropy(logits, labels)
    torch.testing.assert_close(
        cross_entropy(restricted_logits(logits, s, fourier_basis(p), freqs), labels), own
    )
    torch.testing.assert_close(restricted_logits(logits, s, fourier_basis(p), freqs), logits)
    var = logit_explained_variance(logits, s, p, freqs)
    torch.testing.assert_close(var.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert var[0] == pytest.approx(9 / 13) and var[1] == pytest.approx(4 / 13)
    # removing every frequency used leaves nothing: uniform logits, loss log p
    excl = excluded_logits(logits, s, fourier_basis(p), freqs)
    assert excl.abs().max() < 1e-10
    assert float(cross_entropy(excl, labels)) == pytest.approx(math.log(p))


def test_excluded_loss_with_no_frequencies_is_the_loss():
    p = P
    logits = torch.randn(p * p, p, dtype=torch.float64)
    s = sum_index(p)
    train = torch.arange(0, p * p, 3)
    excl = excluded_logits(logits, s, fourier_basis(p), [])
    torch.testing.assert_close(
        cross_entropy(excl[train], s[train]), cross_entropy(logits[train], s[train])
    )


def test_projection_equals_least_squares_on_the_p2_directions():
    p, freqs = 11, [1, 4]
    logits = torch.randn(p * p, p, dtype=torch.float64)
    s = sum_index(p).double()
    cols = [torch.ones_like(s)]
    for k in freqs:
        cols += [torch.cos(2 * math.pi * k * s / p), torch.sin(2 * math.pi * k * s / p)]
    design = torch.stack(cols, 1)  # (p^2, 1 + 2K): the mean is added back too
    fit = design @ torch.linalg.lstsq(design, logits).solution
    torch.testing.assert_close(
        restricted_logits(logits, sum_index(p), fourier_basis(p), freqs), fit
    )
    excl = excluded_logits(logits, sum_index(p), fourier_basis(p), freqs)
    torch.testing.assert_close(excl, logits - fit + logits.mean(0))


def test_explained_variance_matches_the_p3_definition():
    p, freqs = 7, [2, 3]
    logits = torch.randn(p * p, p, dtype=torch.float64)
    centred = (logits - logits.mean(-1, keepdim=True)).flatten()
    a, b = _grid(p)
    c = torch.arange(p, dtype=torch.float64)
    expected = []
    for k in freqs:
        u = torch.cos(2 * math.pi * k / p * ((a + b)[:, None] - c)).flatten()
        expected.append((centred @ u) ** 2 / (u @ u) / (centred @ centred))
    torch.testing.assert_close(
        logit_explained_variance(logits, sum_index(p), p, freqs), torch.stack(expected)
    )


def test_attention_summaries():
    p, h = 5, 2
    pattern = torch.softmax(torch.randn(3, p * p, h, 3), -1)
    mean = attention_to(pattern)
    assert mean.shape == (3, h, 3)
    torch.testing.assert_close(mean.sum(-1), torch.ones(3, h))
    maps = attention_to_a_map(pattern, p)
    assert maps.shape == (3, h, p, p)
    assert maps[1, 1, 2, 4] == pattern[1, 2 * p + 4, 1, 0]


def test_weight_norms():
    state = {"embed.weight": torch.ones(2, 3, 4), "unembed.weight": torch.full((2, 5, 1), 2.0)}
    norms = weight_norms_sq(state, n_batch_dims=1)
    assert list(norms) == ["total", "W_E", "W_U"]
    torch.testing.assert_close(norms["total"], torch.tensor([32.0, 32.0], dtype=torch.float64))


TINY = RunConfig(p=7, d_model=16, n_heads=2, d_head=8, d_mlp=24, epochs=10)


@pytest.fixture(scope="module")
def models():
    out = []
    for seed in range(3):
        model = build_model(TINY.replace(init_seed=seed))
        state = model.state_dict()
        gen = torch.Generator().manual_seed(seed)
        for key, value in state.items():  # every bias non-zero, so each one is exercised
            if key.endswith("bias"):
                value.copy_(torch.randn(value.shape, generator=gen))
        model.load_state_dict(state)
        out.append(model)
    return out


def test_batched_forward_matches_transformer_lens_hooks(models):
    batched = last_position(stack_states([m.state_dict() for m in models]), TINY)
    for i, model in enumerate(models):
        hooked = hooked_last_position(model, TINY.p)
        for name in ("logits", "post", "pattern"):
            torch.testing.assert_close(
                getattr(batched, name)[i], getattr(hooked, name)[0], rtol=1e-5, atol=1e-5
            )


def test_hooked_reference_is_the_plain_forward(models):
    from grokinterp.data import all_pairs, make_tokens

    tokens = make_tokens(*all_pairs(TINY.p), TINY.p)
    hooked = hooked_last_position(models[0], TINY.p)
    with torch.no_grad():
        torch.testing.assert_close(hooked.logits[0], models[0](tokens)[:, -1])
