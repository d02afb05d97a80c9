import pytest
import torch

from grokinterp.batched import stack_states
from grokinterp.config import RunConfig
from grokinterp.data import all_pairs, make_tokens
from grokinterp.forward import last_position
from grokinterp.measures.losses import training_loss as cross_entropy
from grokinterp.model import build_model, last_position_logits, native_parameters, tl_parameters


def small(**changes):
    return RunConfig(**{**dict(p=13, d_model=32, n_heads=4, d_head=8, d_mlp=48), **changes})


def test_attention_biases_are_zero_and_frozen_mlp_biases_train():
    params = native_parameters(build_model(small()))
    for which in "qkvo":
        bias = params[f"layers.0.attn.{which}.bias"]
        assert not bias.requires_grad and torch.count_nonzero(bias) == 0
    assert params["layers.0.mlp.fc_in.bias"].requires_grad
    assert params["layers.0.mlp.fc_out.bias"].requires_grad
    assert not any("head.bias" in name for name in params)  # the unembedding has none


def test_demo_variant_freezes_every_bias():
    params = native_parameters(build_model(small(biases="none")))
    assert all(not t.requires_grad for name, t in params.items() if name.endswith("bias"))


def test_init_is_seeded():
    a, b = build_model(small()).state_dict(), build_model(small()).state_dict()
    c = build_model(small(init_seed=1)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embed.weight"], c["embed.weight"])


def test_tl_weight_properties_have_expected_shapes():
    model = build_model(RunConfig())
    assert model.W_E.shape == (114, 128) and model.W_U.shape == (128, 113)
    assert model.W_in.shape == (1, 128, 512) and model.W_Q.shape == (1, 4, 128, 32)


def _randomised(cfg):
    model = build_model(cfg)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in native_parameters(model).values():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


@pytest.mark.parametrize("act_fn", ["relu", "gelu"])
def test_fast_path_equals_the_transformer_lens_forward(act_fn):
    cfg = small(act_fn=act_fn)
    model = _randomised(cfg)  # biases non-zero too, so every term is exercised
    a, b = all_pairs(cfg.p)
    reference = model(make_tokens(a, b, cfg.p))[:, -1]
    fast = last_position_logits(model, a, b)
    assert fast.shape == (cfg.p**2, cfg.p)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


def test_fast_path_trains_the_same_parameters():
    cfg = small()
    model = _randomised(cfg)
    a, b = all_pairs(cfg.p)
    labels = (a + b) % cfg.p
    params = {k: v for k, v in native_parameters(model).items() if v.requires_grad}

    def grads(logits):
        model.zero_grad()
        cross_entropy(logits, labels, torch.float64).backward()
        return {k: v.grad.clone() for k, v in params.items()}

    ref = grads(model(make_tokens(a, b, cfg.p))[:, -1])
    fast = grads(last_position_logits(model, a, b))
    assert set(ref) == set(fast) and len(ref) == 11
    for name in ref:
        torch.testing.assert_close(fast[name], ref[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("init", ["paper", "tl-demo", "native"])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_each_init_scheme_has_its_defined_std(init, scale):
    cfg = RunConfig(init=init, init_scale=scale)  # the default sizes: d_model 128, p 113
    d, v = cfg.d_model, cfg.d_vocab
    paper = {name: 1 / d**0.5 for name in ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O")}
    paper.update(W_in=1 / d**0.5, W_out=1 / d**0.5, W_U=1 / v**0.5)
    demo = {name: 0.8 / d**0.5 for name in paper}
    expected = {"paper": paper, "tl-demo": demo, "native": {**demo}}[init]
    if init == "native":
        expected["W_O"] = expected["W_out"] = 0.8 / d**0.5 / 2**0.5
    model = build_model(cfg)
    for name, std in expected.items():
        weight = getattr(model, name).detach().flatten()
        # sample std of n normals: relative error ~ 1/sqrt(2n); allow 5 of those
        tolerance = 5 / (2 * weight.numel()) ** 0.5
        assert abs(float(weight.mean())) < 5 * std * scale / weight.numel() ** 0.5, name
        assert float(weight.std()) == pytest.approx(std * scale, rel=tolerance), name
    for name, param in native_parameters(model).items():
        if name.endswith(".bias"):
            assert torch.count_nonzero(param) == 0, name


def test_init_scale_multiplies_the_same_draws():
    one = build_model(RunConfig(init_scale=1.0)).state_dict()
    ten = build_model(RunConfig(init_scale=10.0)).state_dict()
    for key in one:
        torch.testing.assert_close(ten[key], 10 * one[key], rtol=1e-6, atol=0)


def test_native_init_is_transformer_lens_own():
    from transformer_lens.model_bridge import TransformerBridge

    from grokinterp.model import bridge_config

    cfg = small(init="native")
    reference = native_parameters(TransformerBridge.boot_native(bridge_config(cfg)))
    ours = native_parameters(build_model(cfg))
    for name, param in ours.items():
        if not name.endswith(".bias"):
            assert torch.equal(param, reference[name]), name


def test_init_draws_do_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_model(small(init="paper"))
    assert torch.equal(torch.rand(3), expected)


def test_tl_parameters_are_the_state_dict_tensors_with_autograd():
    model = build_model(small())
    params, state = tl_parameters(model), model.state_dict()
    assert set(params) == set(state) - {"unembed.bias"}  # the head has no bias parameter
    for key, param in params.items():
        assert isinstance(param, torch.nn.Parameter) and param.data_ptr() == state[key].data_ptr()


def test_one_forward_serves_one_model_and_a_stack_of_checkpoints():
    """The stacked (analysis) call equals the per-checkpoint (training) call, per checkpoint."""
    cfg = small()
    models = [_randomised(cfg), build_model(cfg.replace(init_seed=1))]
    a, b = all_pairs(cfg.p)
    stacked = last_position(
        stack_states([m.state_dict() for m in models]), a, b, cfg.n_heads, activations=True
    )
    for i, model in enumerate(models):
        one = last_position(model.state_dict(), a, b, cfg.n_heads, activations=True)
        for name in ("logits", "post", "pattern"):
            torch.testing.assert_close(getattr(stacked, name)[i], getattr(one, name))
        with torch.no_grad():
            torch.testing.assert_close(one.logits, last_position_logits(model, a, b))
    assert last_position(models[0].state_dict(), a, b, cfg.n_heads).post is None
