"""Single-checkpoint circuit helpers, on cases with known answers."""

import math

import numpy as np
import pytest
import torch

from grokinterp import circuit
from grokinterp.data import all_pairs, make_tokens
from grokinterp.fourier import fourier_basis
from grokinterp.model import build_model

P = 11


def test_logits_along_sum_recovers_a_cosine_profile():
    k = 3
    logits = 2.0 * circuit.trig_direction(P, k) + 5.0  # an offset per (a, b) is centred away
    profile = circuit.logits_along_sum(logits)
    d = torch.arange(P, dtype=torch.float64)
    assert torch.allclose(profile, 2.0 * torch.cos(2 * math.pi * k * d / P), atol=1e-12)
    assert int(profile.argmax()) == 0  # peaks at the right answer


def test_trig_direction_checks_its_kind():
    assert torch.allclose(circuit.trig_direction(P, 1, "sin")[0, 0, 0], torch.tensor(0.0).double())
    with pytest.raises(ValueError, match="'cos' or 'sin'"):
        circuit.trig_direction(P, 1, "tan")


def test_embedding_in_fourier_basis_of_a_fourier_embedding():
    basis = fourier_basis(P)
    W_E = torch.cat([basis.matrix.T, torch.zeros(1, P, dtype=torch.float64)])  # (p+1, p)
    assert torch.allclose(
        circuit.embedding_in_fourier_basis(W_E, basis),
        torch.eye(P, dtype=torch.float64),
        atol=1e-12,
    )


def test_a_product_neuron_has_one_fourier_term():
    basis = fourier_basis(P)
    k = 2
    x = torch.arange(P, dtype=torch.float64)
    cos = torch.cos(2 * math.pi * k * x / P)
    neurons = (cos[:, None] * cos[None, :])[..., None]  # (p, p, 1): cos(w a) cos(w b)
    comps = circuit.neuron_fourier_2d(neurons, basis)[0]
    row = 2 * k - 1  # the cos k row
    mask = torch.zeros(P, P, dtype=torch.bool)
    mask[row, row] = True
    assert comps[mask].abs().item() > 1
    assert torch.allclose(comps[~mask], torch.zeros(P * P - 1, dtype=torch.float64), atol=1e-9)


def test_representative_neurons_pick_the_best_explained():
    best = [3, 5, 3, 1, 3]
    frac = [0.9, 0.95, float("nan"), 0.99, 0.97]
    assert circuit.representative_neurons(best, frac, [3, 5, 7]) == {3: 4, 5: 1}


def test_circuit_activations_match_the_model():
    from grokinterp.config import RunConfig

    cfg = RunConfig(p=P, d_model=32, n_heads=2, d_head=16, d_mlp=24, epochs=10)
    model = build_model(cfg)
    acts = circuit.circuit_activations(model, P)
    assert acts.attention_to_a.shape == (2, P, P)
    assert acts.neurons.shape == (P, P, 24) and acts.logits.shape == (P, P, P)
    a, b = all_pairs(P)
    with torch.no_grad():
        expected = model(make_tokens(a, b, P))[:, -1].unflatten(0, (P, P))
    assert torch.allclose(acts.logits, expected.float(), atol=1e-5)
    assert ((acts.attention_to_a >= 0) & (acts.attention_to_a <= 1)).all()
    assert np.isfinite(acts.neurons.numpy()).all() and (acts.neurons >= 0).all()  # ReLU
