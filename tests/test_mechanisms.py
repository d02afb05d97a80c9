"""Mechanism measures and options: clock or pizza, softmax collapse, StableMax, orthograd,
attn_coeff, neuron IPR and phase alignment, and the opt-in LLC (docs/measures.md)."""

import json
import math

import pandas as pd
import pytest
import torch

from grokinterp import train
from grokinterp.analysis import AnalysisSettings, analyze, read_table
from grokinterp.config import RunConfig
from grokinterp.data import all_pairs, make_tokens
from grokinterp.errors import ConfigError, OptionError
from grokinterp.forward import last_position
from grokinterp.measures.collapse import collapse_fraction, logit_scale, softmax_collapsed
from grokinterp.measures.llc import LLCSettings
from grokinterp.measures.losses import training_loss
from grokinterp.measures.neuron_fourier import neuron_ipr, ov_input_weights, phase_alignment
from grokinterp.measures.pizza import (
    classify_circuit,
    distance_irrelevance,
    embedding_gradient_cosines,
    sample_triples,
)
from grokinterp.measures.stablemax import stablemax, stablemax_cross_entropy, stablemax_s
from grokinterp.model import build_model, last_position_logits, tl_parameters
from grokinterp.optim import OrthoGrad, build_optimizer, orthogonalise_
from grokinterp.storage import read_json
from grokinterp.sweep.spec import load_spec
from tests.conftest import tiny_config

P = 13
W = 2 * math.pi * 3 / P  # the planted circuits' frequency


# --- planted clock and pizza (Zhong et al. 2023), on 2-d embeddings [cos w t, sin w t] ---


def _embed(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(W * t), torch.sin(W * t)], -1).double()


def _clock(ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
    """cos(w (a + b - c)) for every c, from products of a- and b-features (the clock)."""
    cos_s = ea[:, 0] * eb[:, 0] - ea[:, 1] * eb[:, 1]  # cos w(a + b)
    sin_s = ea[:, 1] * eb[:, 0] + ea[:, 0] * eb[:, 1]  # sin w(a + b)
    c = _embed(torch.arange(P))  # (P, 2)
    return cos_s[:, None] * c[:, 0] + sin_s[:, None] * c[:, 1]


def _pizza(ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
    """|u|^2 cos(w (a + b) - w c) with u = E_a + E_b: a function of the sum of embeddings
    (the pizza); |u|^2 = 4 cos^2(w (a - b) / 2)."""
    u = ea + eb
    c = _embed(torch.arange(P))
    return (u[:, 0] ** 2 - u[:, 1] ** 2)[:, None] * c[:, 0] + (2 * u[:, 0] * u[:, 1])[:, None] * c[
        :, 1
    ]


def _correct_logits(fn, noise: float = 0.0) -> torch.Tensor:
    a, b = all_pairs(P)
    logits = fn(_embed(a), _embed(b))
    labels = (a + b) % P
    correct = logits.gather(-1, labels[:, None])[:, 0]
    gen = torch.Generator().manual_seed(0)
    return correct + noise * torch.randn(correct.shape, generator=gen, dtype=torch.float64)


def _grad_sym(fn) -> float:
    t = sample_triples(P, 400)
    return float(embedding_gradient_cosines(fn, _embed(t[:, 0]), _embed(t[:, 1]), t[:, 2]).mean())


def test_planted_pizza_is_classified_pizza():
    gs = _grad_sym(_pizza)
    di = float(distance_irrelevance(_correct_logits(_pizza, noise=1e-3), P))
    assert gs == pytest.approx(1.0, abs=1e-9)  # d/dE_a = d/dE_b exactly
    assert di < 0.01  # the correct logit is a function of a - b alone
    assert classify_circuit(gs, di, 1.0) == "pizza"


def test_planted_clock_is_classified_clock():
    gs = _grad_sym(_clock)
    di = float(distance_irrelevance(_correct_logits(_clock, noise=1e-3), P))
    assert abs(gs) < 0.2  # the gradients are rotations of each other: mean cosine ~ 0
    assert di == pytest.approx(1.0, abs=0.1)  # correct logit constant: only noise left
    assert classify_circuit(gs, di, 1.0) == "clock"


def test_classify_circuit_needs_generalisation_and_mixes():
    assert classify_circuit(0.1, 0.9, 0.5) == "none"
    assert classify_circuit(0.1, 0.1, 1.0) == "mixed"
    assert classify_circuit(0.99, 0.9, 1.0) == "mixed"


def test_distance_irrelevance_is_one_for_sum_only_logits():
    a, b = all_pairs(P)
    x = torch.cos(W * ((a + b) % P)).double()  # varies with s only, not with d
    assert float(distance_irrelevance(x, P)) == pytest.approx(1.0, abs=1e-12)


# --- softmax collapse and the logit scale (Prieto et al. 2025) ---


def test_softmax_collapse_by_hand():
    logits = torch.tensor([[20.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 40.0, 0.0], [40.0, 0, 0]])
    labels = torch.tensor([0, 0, 1, 1])
    # exp(-20) = 2e-9 < float32's half-ulp of 1 (6e-8): rounds away; exp(-5) does not
    assert softmax_collapsed(logits, labels).tolist() == [True, False, True, False]
    assert float(collapse_fraction(logits, labels)) == 0.5
    assert float(logit_scale(logits)) == pytest.approx((20 + 5 + 40 + 40) / 4)


def test_softmax_collapse_is_float32():
    # in float64 exp(-20) would survive; the measure rounds to float32 first
    logits = torch.tensor([[20.0, 0.0]], dtype=torch.float64)
    assert bool(softmax_collapsed(logits, torch.tensor([0]))[0])


# --- StableMax ---


def test_stablemax_by_hand():
    x = torch.tensor([[-1.0, 0.0, 2.0]], dtype=torch.float64)
    s = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)  # 1/(1+1), 0+1, 2+1
    assert torch.equal(stablemax_s(x[0]), s)
    assert torch.allclose(stablemax(x)[0], s / 4.5)
    loss = stablemax_cross_entropy(x, torch.tensor([2]))
    assert float(loss) == pytest.approx(-math.log(3 / 4.5))
    same = training_loss(x, torch.tensor([2]), torch.float64, "stablemax")
    assert float(same) == pytest.approx(float(loss))


def test_stablemax_gradient_is_finite_and_continuous_at_zero():
    x = torch.tensor([-1e-9, 0.0, 1e-9], dtype=torch.float64, requires_grad=True)
    stablemax_s(x).sum().backward()
    assert torch.allclose(x.grad, torch.ones(3, dtype=torch.float64))  # s'(0) = 1 both sides


# --- orthograd ---


def test_orthogonalise_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0, 0.0]))
    p.grad = torch.tensor([1.0, 1.0])
    orthogonalise_([p])
    # along w removed -> (0, 1), rescaled to |g| = sqrt 2
    assert torch.allclose(p.grad, torch.tensor([0.0, math.sqrt(2)]))
    zero = torch.nn.Parameter(torch.zeros(2))
    zero.grad = torch.tensor([3.0, 4.0])
    orthogonalise_([zero])  # w = 0: unchanged
    assert torch.allclose(zero.grad, torch.tensor([3.0, 4.0]))


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_orthograd_wraps_every_optimizer(optimizer):
    cfg = tiny_config(optimizer=optimizer, orthograd=True, weight_decay=0.0, momentum=0.0)
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = build_optimizer(cfg, [w])
    assert isinstance(opt, OrthoGrad)
    for group in opt.param_groups:
        group["lr"] = 0.1
    w.grad = torch.tensor([3.0, 4.0]) * 2  # parallel to w: its orthogonal part is 0
    before = w.detach().clone()
    opt.step()
    assert torch.allclose(w.detach(), before)  # nothing left to step along
    if optimizer == "sgd":
        w.grad = torch.tensor([1.0, 0.0])
        opt.step()  # g_perp = (16, -12)/25 rescaled to |g| = 1: (0.8, -0.6)
        assert torch.allclose(w.detach(), before - 0.1 * torch.tensor([0.8, -0.6]))


def test_orthograd_stablemax_training_is_deterministic(tmp_path):
    cfg = tiny_config(p=7, orthograd=True, loss="stablemax", weight_decay=0.0, epochs=20,
                      checkpoints="every:10")  # fmt: skip
    one, two = train(cfg, tmp_path / "one"), train(cfg, tmp_path / "two")
    for k, v in one.state_dict_at(20).items():
        assert torch.equal(v, two.state_dict_at(20)[k])
    assert not torch.equal(one.state_dict_at(20)["unembed.weight"],
                           one.state_dict_at(0)["unembed.weight"])  # fmt: skip


# --- attn_coeff ---


@pytest.mark.parametrize("coeff", [0.0, 0.5])
def test_attn_coeff_fast_path_equals_transformerlens(coeff):
    cfg = tiny_config(p=7, attn_coeff=coeff)
    model = build_model(cfg)
    a, b = all_pairs(7)
    fast = last_position_logits(model, a, b)
    slow = model(make_tokens(a, b, 7))[:, -1]
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_attn_coeff_zero_is_uniform_and_ignores_queries():
    cfg = tiny_config(p=7, attn_coeff=0.0)
    weights = {k: v.detach().clone() for k, v in tl_parameters(build_model(cfg)).items()}
    a, b = all_pairs(7)
    out = last_position(weights, a, b, cfg.n_heads, activations=True, attn_coeff=0.0)
    assert torch.allclose(out.pattern, torch.full_like(out.pattern, 1 / 3))
    weights["blocks.0.attn.q.weight"] = torch.randn_like(weights["blocks.0.attn.q.weight"])
    again = last_position(weights, a, b, cfg.n_heads, attn_coeff=0.0)
    torch.testing.assert_close(out.logits, again.logits)


# --- neuron IPR and phase alignment (He et al. 2026) ---


def test_planted_neurons_are_single_frequency_and_aligned():
    t = torch.arange(P, dtype=torch.float64)
    phi = torch.linspace(0, 2 * math.pi, 9)[:-1, None]  # 8 neurons
    theta = torch.cos(W * t + phi)  # (8, P)
    aligned = torch.cos(W * t + 2 * phi)
    assert torch.allclose(neuron_ipr(theta), torch.ones(8, dtype=torch.float64))
    align, weight = phase_alignment(theta, aligned)
    assert torch.allclose(align, torch.ones(8, dtype=torch.float64))
    assert (weight > 0).all()
    misaligned, _ = phase_alignment(theta, torch.cos(W * t + 2 * phi + math.pi / 2))
    assert torch.allclose(misaligned, torch.zeros(8, dtype=torch.float64), atol=1e-9)


def test_ipr_of_a_flat_spectrum():
    delta = torch.zeros(1, P, dtype=torch.float64)
    delta[0, 0] = 1.0  # every frequency with the same power
    assert float(neuron_ipr(delta)[0]) == pytest.approx(2 / (P - 1))


def test_ov_input_weights_is_the_ov_product():
    cfg = tiny_config(p=7)
    w = {k: v.detach() for k, v in tl_parameters(build_model(cfg)).items()}
    theta = ov_input_weights(w, 7)
    by_hand = (
        w["blocks.0.mlp.in.weight"] @ w["blocks.0.attn.o.weight"] @ w["blocks.0.attn.v.weight"]
    ) @ w["embed.weight"][:7].T
    torch.testing.assert_close(theta, by_hand.double(), atol=1e-5, rtol=1e-5)


# --- config fields and settings round-trip ---


def test_new_fields_round_trip_and_old_configs_load():
    cfg = RunConfig(p=59, attn_coeff=0.5, loss="stablemax", orthograd=True)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert "attn_coeff0.5" in cfg.run_name and "orthograd" in cfg.run_name
    old = {k: v for k, v in RunConfig().to_dict().items()
           if k not in ("attn_coeff", "loss", "orthograd")}  # fmt: skip
    loaded = RunConfig.from_dict(old)
    assert (loaded.attn_coeff, loaded.loss, loaded.orthograd) == (1.0, "softmax", False)
    assert loaded.run_name == RunConfig().run_name  # defaults: today's names


def test_new_fields_are_checked():
    with pytest.raises(ConfigError, match="attn_coeff"):
        RunConfig(attn_coeff=1.5)
    with pytest.raises(ConfigError, match="loss must be one of"):
        RunConfig(loss="sparsemax")


def test_sweep_specs_of_the_experiments_parse_into_runs():
    spec, _ = load_spec("examples/sweep-no-decay-p59.toml")
    assert spec.zips[0]["orthograd"] == [False, True, True, False]
    runs = spec.runs()
    assert {(c.loss, c.orthograd, c.weight_decay) for c in runs.values()} == {
        ("stablemax", False, 0.0), ("softmax", True, 0.0), ("stablemax", True, 0.0),
        ("softmax", False, 0.0),
    }  # fmt: skip
    for cfg in runs.values():  # each run's config survives config.json
        assert RunConfig.from_json(cfg.to_json()) == cfg
    spec, _ = load_spec("examples/sweep-attn-coeff-p59.toml")
    assert spec.grid["attn_coeff"] == [1.0, 0.5, 0.0]
    assert sorted(c.attn_coeff for c in spec.runs().values()) == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]


def test_llc_settings_round_trip_and_checks():
    settings = AnalysisSettings(llc=LLCSettings(lr=3e-5, draws=7))
    back = AnalysisSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert back == settings
    assert AnalysisSettings.from_dict({}).llc == LLCSettings()  # old summaries
    with pytest.raises(OptionError, match="draws"):
        LLCSettings(draws=0)


# --- the table measures on a trained tiny run ---


def test_mechanism_measures_in_the_table(tiny_run):
    table = analyze(tiny_run)
    for name in ("softmax_collapse", "logit_scale", "gradient_symmetricity",
                 "distance_irrelevance", "neuron_ipr", "phase_alignment"):  # fmt: skip
        rows = table[(table["measure"] == name) & (table["key"] == "")]
        assert len(rows) == len(tiny_run.epochs), name
        assert rows["value"].notna().all(), name
    assert "llc" not in set(table["measure"])  # opt-in
    summary = read_json(tiny_run.path / "summary.json")
    assert summary["mechanism"]["pizza_class"] in ("clock", "pizza", "mixed", "none")


def test_llc_is_near_zero_when_the_chains_cannot_move(tmp_path):
    pytest.importorskip("devinterp")
    from grokinterp.measures.llc import estimate_llc

    run = train(tiny_config(p=7, epochs=20, checkpoints="every:20"), tmp_path / "r")
    state = run.state_dict_at(20)
    pinned = LLCSettings(lr=1e-12, nbeta=10.0, localization=0.0, chains=2, draws=5,
                         batch_size=64)  # fmt: skip
    out = estimate_llc(state, run.config, run.dataset, pinned)
    assert abs(out["mean"]) < 1e-3  # steps of 1e-6 leave the loss where it was
    moving = estimate_llc(
        state,
        run.config,
        run.dataset,
        pinned.__class__(lr=1e-3, nbeta=10.0, localization=0.0, chains=2, draws=20, batch_size=64),
    )
    assert moving["mean"] > out["mean"] and math.isfinite(moving["std"])


def test_llc_table_measure_is_opt_in(tmp_path):
    pytest.importorskip("devinterp")
    run = train(tiny_config(p=7, epochs=20, checkpoints="every:10"), tmp_path / "r")
    settings = AnalysisSettings(
        measures=("train_loss", "llc"), sharpness_every=2,
        llc=LLCSettings(chains=2, draws=5, batch_size=64),
    )  # fmt: skip
    analyze(run, settings=settings)
    table = read_table(run.path / "analysis.csv")
    llc = table[table["measure"] == "llc"]
    assert set(llc["key"]) >= {"", "std", "chain0", "chain1"}
    assert read_json(run.path / "summary.json")["settings"]["llc"]["draws"] == 5


# --- figures ---


def _rows(measure: str, epochs, values, key: str = "") -> pd.DataFrame:
    return pd.DataFrame({"epoch": epochs, "measure": measure, "key": key, "value": values})


def test_mechanism_figures_draw_what_the_table_has():
    from grokinterp import plots

    e = [0, 100, 200]
    table = pd.concat(
        [
            _rows("test_loss", e, [4.0, 1.0, 0.01]),
            _rows("restricted_loss", e, [4.0, 0.5, 0.01], key="all"),
            _rows("gradient_symmetricity", e, [1.0, 0.5, 0.1]),
            _rows("distance_irrelevance", e, [1.0, 0.6, 0.9]),
        ]
    )
    fig = plots.mechanism_curves(table)
    assert [a.text for a in fig.layout.annotations][:3] == [
        "test loss (nats)", "gradient symmetricity", "distance irrelevance"
    ]  # fmt: skip
    with pytest.raises(KeyError, match="sharpness and llc"):
        plots.timing_curves(table)
    llc = pd.concat(
        [_rows("llc", [0, 200], [50.0, 3.0]), _rows("llc", [0, 200], [1.0, 0.2], "std")]
    )
    timing = plots.timing_curves(pd.concat([table, llc]))
    drawn = next(t for t in timing.data if t.name == "LLC")
    assert list(drawn.x) == [0, 200] and list(drawn.error_y.array) == [1.0, 0.2]
    sweep = plots.sweep_mechanism_curves({"r1": table}, {"r1": "r1 (clock)"})
    assert {t.name for t in sweep.data} == {"r1 (clock)"}
