"""Optimisers, dropout, Grokfast filters and minibatches (docs/training-options.md).

Every update rule is checked against a hand computation written here, not against the
torch code that implements it.
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from grokinterp import files
from grokinterp.config import ConfigError
from grokinterp.data import make_dataset
from grokinterp.forward import DropoutMasks, draw_dropout_masks, last_position_dropped
from grokinterp.model import build_model
from grokinterp.optim import EmaFilter, MaFilter
from grokinterp.run import read_config
from grokinterp.storage import read_metrics
from grokinterp.training import (
    _DROPOUT,
    Trainer,
    batch_order,
    deterministic_algorithms,
    epoch_generator,
    train,
)
from tests.conftest import tiny_config

# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("optimizer", "lion"),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("grokfast", "fast"),
        ("grokfast_alpha", 1.0),
        ("grokfast_alpha", -0.5),
        ("grokfast_lamb", -1.0),
        ("grokfast_window", 0),
        ("batch_size", -1),
        ("momentum", 1.0),
        ("momentum", -0.1),
    ],
)
def test_bad_training_options_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"RunConfig.{field} "):
        tiny_config(**{field: value})


def test_dropout_needs_the_fast_path_and_nesterov_needs_momentum():
    with pytest.raises(ConfigError, match="dropout.*fast_path"):
        tiny_config(dropout=0.1, fast_path=False)
    with pytest.raises(ConfigError, match="nesterov.*momentum"):
        tiny_config(optimizer="sgd", momentum=0.0, nesterov=True)


def test_a_config_written_before_the_training_options_loads_with_defaults(tmp_path):
    cfg = tiny_config()
    old = {k: v for k, v in cfg.to_dict().items() if k in _OLD_FIELDS}
    (tmp_path / files.CONFIG).write_text(json.dumps(old))
    assert read_config(tmp_path) == cfg
    assert cfg.optimizer == "adamw" and cfg.grokfast == "none" and cfg.batch_size == 0


_OLD_FIELDS = (
    "p operation frac_train data_seed d_model n_heads d_head d_mlp act_fn biases init_seed "
    "init init_scale lr weight_decay beta1 beta2 warmup_steps epochs stop_after_grok "
    "loss_dtype fast_path eval_every checkpoints name"
).split()


# --- optimisers ---------------------------------------------------------------------------


def _hand_step(cfg, w, g, state, lr):
    """One update of ``cfg.optimizer`` by the textbook formulas, in float64."""
    wd, t = cfg.weight_decay, state.setdefault("t", 0) + 1
    state["t"] = t
    if cfg.optimizer == "sgd":
        g = g + wd * w
        buf = g if t == 1 else cfg.momentum * state["buf"] + g
        state["buf"] = buf
        direction = g + cfg.momentum * buf if cfg.nesterov else buf
        return w - lr * direction
    if cfg.optimizer == "adam":
        g = g + wd * w
    else:  # adamw: decoupled decay
        w = w * (1 - lr * wd)
    b1, b2 = cfg.beta1, cfg.beta2
    state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0) + (1 - b2) * g**2
    m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
    return w - lr * m_hat / (v_hat.sqrt() + 1e-8)


@pytest.mark.parametrize(
    "changes",
    [
        dict(optimizer="adamw"),
        dict(optimizer="adam"),
        dict(optimizer="sgd"),
        dict(optimizer="sgd", nesterov=True, momentum=0.5),
    ],
    ids=["adamw", "adam", "sgd", "sgd-nesterov"],
)
def test_optimizer_steps_match_hand_written_updates(changes):
    # warm-up 2: steps use lr 0, lr/2, lr, lr
    cfg = tiny_config(lr=0.05, weight_decay=0.5, warmup_steps=2, beta1=0.8, **changes)
    trainer = Trainer(cfg, make_dataset(cfg))
    states = [{} for _ in trainer.params]
    with deterministic_algorithms():
        for epoch in range(4):
            before = [p.detach().double().clone() for p in trainer.params]
            trainer.epoch(epoch, evaluate=False)
            lr = cfg.lr * min(epoch / 2, 1)
            for p, w, state in zip(trainer.params, before, states, strict=True):
                expected = _hand_step(cfg, w, p.grad.double(), state, lr)
                torch.testing.assert_close(p.detach().double(), expected, rtol=1e-5, atol=1e-7)


# --- Grokfast -----------------------------------------------------------------------------


def _params_with_grads(grads):
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return params


def _gradient_sequence(n_steps):
    gen = torch.Generator().manual_seed(0)
    return [
        [torch.randn(3, generator=gen), torch.randn(2, 2, generator=gen)] for _ in range(n_steps)
    ]


def test_ema_filter_matches_a_hand_computation():
    alpha, lamb = 0.75, 2.0
    filt = EmaFilter(alpha, lamb)
    seq = _gradient_sequence(5)
    mu = [g.double() for g in seq[0]]  # mu starts at the first gradient
    for grads in seq:
        params = _params_with_grads(grads)
        filt.apply(params)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            mu[i] = alpha * mu[i] + (1 - alpha) * g.double()
            torch.testing.assert_close(p.grad.double(), g.double() + lamb * mu[i])


def test_ma_filter_matches_a_hand_computation():
    window, lamb = 3, 0.5
    filt = MaFilter(window, lamb)
    seq = _gradient_sequence(6)
    for step, grads in enumerate(seq):
        params = _params_with_grads(grads)
        filt.apply(params)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if step + 1 < window:  # window not yet full: unchanged
                assert torch.equal(p.grad, g)
            else:  # mean of the raw gradients of this step and the two before
                raw = [seq[s][i].double() for s in range(step - window + 1, step + 1)]
                expected = g.double() + lamb * sum(raw) / window
                torch.testing.assert_close(p.grad.double(), expected)


def test_grokfast_filters_the_gradient_before_the_optimizer_step():
    lamb, alpha = 3.0, 0.5
    cfg = tiny_config(
        optimizer="sgd", momentum=0.0, weight_decay=0.0, warmup_steps=0, lr=0.1,
        grokfast="ema", grokfast_alpha=alpha, grokfast_lamb=lamb,
    )  # fmt: skip
    trainer = Trainer(cfg, make_dataset(cfg))
    mu = None
    with deterministic_algorithms():
        for epoch in range(3):
            before = [p.detach().double().clone() for p in trainer.params]
            loss = F.cross_entropy(
                trainer.forward(trainer.train_tokens).double(), trainer.train_labels
            )
            raw = [g.double() for g in torch.autograd.grad(loss, trainer.params)]
            mu = raw if mu is None else mu
            mu = [alpha * m + (1 - alpha) * g for m, g in zip(mu, raw, strict=True)]
            trainer.epoch(epoch, evaluate=False)
            for p, w, g, m in zip(trainer.params, before, raw, mu, strict=True):
                expected = w - cfg.lr * (g + lamb * m)
                torch.testing.assert_close(p.detach().double(), expected, rtol=1e-5, atol=1e-6)


# --- dropout ------------------------------------------------------------------------------


def test_dropout_masks_are_zero_or_one_over_keep_and_seeded():
    rate = 0.25
    masks = draw_dropout_masks(2000, 16, 4, rate, torch.Generator().manual_seed(1))
    again = draw_dropout_masks(2000, 16, 4, rate, torch.Generator().manual_seed(1))
    scale = torch.tensor(1 / (1 - rate), dtype=torch.float32).item()  # 4/3 in float32
    for name, m in vars(masks).items():
        assert set(m.unique().tolist()) == {0.0, scale}, name
        kept = (m > 0).double().mean().item()
        assert abs(kept - (1 - rate)) < 0.02, name  # thousands of draws each
        assert torch.equal(m, vars(again)[name])
    assert masks.embed.shape == (2000, 3, 16) and masks.pattern.shape == (2000, 4, 3)


def _manual_forward(w, tokens, n_heads, embed, pattern_mask, attn_mask, mlp_mask):
    """The full 3-position model in plain float64 matmuls, GPT-2-style dropout from the
    given (N, 3, ...) multipliers; returns the logits at every position (N, 3, p)."""
    w = {k: v.double() for k, v in w.items()}
    n, d_head = tokens.shape[0], w["blocks.0.attn.q.weight"].shape[0] // n_heads
    x = (w["embed.weight"][tokens] + w["pos_embed.weight"]) * embed  # (N, 3, d)

    def proj(name, v):
        return v @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    q, k, v = (proj(f"blocks.0.attn.{c}", x).view(n, 3, n_heads, d_head) for c in "qkv")
    scores = torch.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(d_head)
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    pattern = scores.masked_fill(~causal, -math.inf).softmax(-1) * pattern_mask  # (N,h,3,3)
    z = torch.einsum("nhqk,nkhd->nqhd", pattern, v).reshape(n, 3, -1)
    mid = x + proj("blocks.0.attn.o", z) * attn_mask
    post = torch.relu(proj("blocks.0.mlp.in", mid))
    out = mid + proj("blocks.0.mlp.out", post) * mlp_mask
    return proj("unembed", out)


def test_dropout_forward_equals_a_manual_full_sequence_computation():
    cfg = tiny_config(d_model=16, n_heads=2, d_head=8, d_mlp=32, init_scale=3.0)
    model = build_model(cfg)
    weights = {k: v.detach() for k, v in model.state_dict().items()}
    with torch.no_grad():  # give the biases values, so their place is checked too
        for k in weights:
            if k.endswith(".bias"):
                weights[k] = torch.randn(
                    weights[k].shape, generator=torch.Generator().manual_seed(3)
                )
    ds = make_dataset(cfg)
    tokens = ds.train_tokens[:40]
    n, rate, gen = len(tokens), 0.4, torch.Generator().manual_seed(7)
    masks = draw_dropout_masks(n, cfg.d_model, cfg.n_heads, rate, gen)
    # multipliers for the positions the last one cannot see: random, and they must not matter
    extra = draw_dropout_masks(n, cfg.d_model, cfg.n_heads, rate, gen)
    pattern = torch.stack([extra.pattern, extra.pattern, masks.pattern], dim=2)  # (N,h,3q,3k)
    attn = torch.stack([extra.attn_out, extra.embed[:, 0], masks.attn_out], dim=1)
    mlp = torch.stack([extra.mlp_out, extra.embed[:, 1], masks.mlp_out], dim=1)
    manual = _manual_forward(weights, tokens, cfg.n_heads, masks.embed, pattern, attn, mlp)
    w64 = {k: v.double() for k, v in weights.items()}  # float64: agreement to rounding
    fast = last_position_dropped(w64, tokens[:, 0], tokens[:, 1], cfg.n_heads, masks)
    torch.testing.assert_close(fast, manual[:, -1], rtol=1e-10, atol=1e-10)
    # the manual model is the TransformerLens one: with no dropout it equals model(tokens)
    ones = DropoutMasks(*(torch.ones_like(m) for m in vars(masks).values()))
    keep = _manual_forward(
        {k: v.detach() for k, v in model.state_dict().items()}, tokens, cfg.n_heads,
        ones.embed, 1.0, 1.0, 1.0,
    )  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(keep[:, -1], model(tokens)[:, -1].double(), rtol=1e-5, atol=1e-5)


def test_dropout_acts_in_training_steps_only_and_is_seeded_by_epoch(tmp_path, monkeypatch):
    cfg = tiny_config(dropout=0.3, epochs=20, checkpoints="every:10")
    trainer = Trainer(cfg, make_dataset(cfg))
    tokens = trainer.train_tokens
    with torch.no_grad():
        plain = trainer.forward(tokens)
        assert torch.equal(plain, trainer.forward(tokens))  # evaluation: no dropout
        one = trainer.train_forward(tokens, torch.Generator().manual_seed(5))
        two = trainer.train_forward(tokens, torch.Generator().manual_seed(5))
    assert torch.equal(one, two) and not torch.allclose(one, plain)
    # the logged train loss is that of the checkpoint's model, without dropout
    run = train(cfg, tmp_path / "run")
    ds = run.dataset
    with torch.no_grad():
        logits = run.model_at(10)(ds.train_tokens)[:, -1].double()
    loss = F.cross_entropy(logits, ds.train_labels).item()
    assert loss == pytest.approx(run.metrics["train_loss"][10], rel=1e-5)


def test_training_steps_use_the_dropout_masks_of_the_epoch():
    cfg = tiny_config(
        dropout=0.3, optimizer="sgd", momentum=0.0, weight_decay=0.0, warmup_steps=0, lr=0.5
    )
    trainer = Trainer(cfg, make_dataset(cfg))
    with deterministic_algorithms():
        for epoch in range(2):
            before = [p.detach().double().clone() for p in trainer.params]
            gen = epoch_generator(cfg.init_seed, epoch, _DROPOUT)
            logits = trainer.train_forward(trainer.train_tokens, gen)
            loss = F.cross_entropy(logits.double(), trainer.train_labels)
            grads = torch.autograd.grad(loss, trainer.params)
            trainer.epoch(epoch, evaluate=False)
            for p, w, g in zip(trainer.params, before, grads, strict=True):
                torch.testing.assert_close(p.detach().double(), w - cfg.lr * g.double())


def test_no_dropout_draws_no_masks(monkeypatch):
    from grokinterp import training as train_module

    def refuse(*args, **kwargs):
        raise AssertionError("dropout masks drawn with dropout = 0")

    monkeypatch.setattr(train_module, "draw_dropout_masks", refuse)
    for cfg in (tiny_config(), tiny_config(batch_size=10)):
        trainer = Trainer(cfg, make_dataset(cfg))
        trainer.epoch(0, evaluate=True)


# --- minibatches --------------------------------------------------------------------------


def test_batch_order_partitions_the_training_pairs_by_data_seed_and_epoch():
    cfg = tiny_config(batch_size=16)  # p = 11, n_train 60: batches of 16, 16, 16, 12
    assert cfg.n_train == 60 and cfg.steps_per_epoch == 4
    batches = batch_order(cfg, 3)
    assert [len(b) for b in batches] == [16, 16, 16, 12]
    assert sorted(torch.cat(batches).tolist()) == list(range(60))
    same = batch_order(cfg.replace(init_seed=1), 3)
    assert all(torch.equal(x, y) for x, y in zip(batches, same, strict=True))
    assert not torch.equal(torch.cat(batches), torch.cat(batch_order(cfg, 4)))
    assert not torch.equal(torch.cat(batches), torch.cat(batch_order(cfg.replace(data_seed=1), 3)))
    assert batch_order(cfg.replace(batch_size=60), 3) is None
    assert batch_order(cfg.replace(batch_size=0), 3) is None


def test_minibatch_epoch_takes_one_sgd_step_per_batch_in_order():
    cfg = tiny_config(
        batch_size=16, optimizer="sgd", momentum=0.0, weight_decay=0.0, lr=0.5, warmup_steps=6
    )
    trainer = Trainer(cfg, make_dataset(cfg))  # used only to evaluate gradients
    params = trainer.params
    hand = [p.detach().double().clone() for p in params]
    with deterministic_algorithms():
        for epoch in range(2):
            for i, idx in enumerate(batch_order(cfg, epoch)):
                step = epoch * 4 + i
                with torch.no_grad():
                    for p, w in zip(params, hand, strict=True):
                        p.copy_(w)  # evaluate the gradient at the hand-stepped weights
                logits = trainer.forward(trainer.train_tokens[idx])
                loss = F.cross_entropy(logits.double(), trainer.train_labels[idx])
                grads = torch.autograd.grad(loss, params)
                lr = cfg.lr * min(step / cfg.warmup_steps, 1)
                hand = [w - lr * g.double() for w, g in zip(hand, grads, strict=True)]
    real = Trainer(cfg, make_dataset(cfg))  # the same initial weights, trained for real
    with deterministic_algorithms():
        rows = [real.epoch(e, evaluate=False) for e in range(2)]
    assert [r["lr"] for r in rows] == [0.0, cfg.lr * 4 / 6]  # lr of each epoch's first step
    for p, w in zip(real.params, hand, strict=True):
        torch.testing.assert_close(p.detach().double(), w, rtol=1e-4, atol=1e-6)


def test_batch_size_at_least_n_train_is_full_batch_bitwise(tmp_path):
    runs = {}
    for bs in (0, 60, 1000):
        runs[bs] = train(
            tiny_config(batch_size=bs, epochs=20, checkpoints="every:10"), tmp_path / str(bs)
        )
    for bs in (60, 1000):
        for epoch in runs[0].epochs:
            a = files.checkpoint_path(runs[0].path, epoch).read_bytes()
            assert a == files.checkpoint_path(runs[bs].path, epoch).read_bytes(), (bs, epoch)
        assert read_metrics(runs[0].path / files.METRICS) == read_metrics(
            runs[bs].path / files.METRICS
        )


def test_minibatch_run_logs_the_full_train_loss_and_counts_steps(tmp_path):
    cfg = tiny_config(batch_size=16, epochs=10, checkpoints="every:5", optimizer="adam")
    run = train(cfg, tmp_path / "run")
    ds = run.dataset
    with torch.no_grad():
        logits = run.model_at(5)(ds.train_tokens)[:, -1].double()
    assert F.cross_entropy(logits, ds.train_labels).item() == pytest.approx(
        run.metrics["train_loss"][5], rel=1e-5
    )
    from grokinterp.storage import load_tensors

    tensors, _ = load_tensors(run.path / files.OPTIMIZER, files.OPTIMIZER_FORMAT)
    assert tensors["0.step"].item() == 10 * 4  # 4 minibatch steps per epoch


# --- resume -------------------------------------------------------------------------------


class _Killed(Exception):
    pass


def _interrupt_at(epoch):
    def on_epoch(row):
        if row["epoch"] == epoch:
            raise _Killed

    return on_epoch


@pytest.mark.parametrize(
    "changes",
    [
        dict(dropout=0.2),
        dict(grokfast="ema", grokfast_alpha=0.9),
        dict(grokfast="ma", grokfast_window=4),
        dict(batch_size=20, optimizer="sgd"),
        dict(batch_size=25, dropout=0.1, grokfast="ma", grokfast_window=7, optimizer="adam"),
    ],
    ids=["dropout", "ema", "ma", "minibatch-sgd", "all"],
)
def test_interrupted_run_with_options_resumes_bitwise(tmp_path, changes):
    """Stopped at epoch 14 (after the checkpoint at 12), then resumed: every file equals
    those of the uninterrupted run, so the optimiser, filter and RNG state all carry over."""
    cfg = tiny_config(epochs=16, checkpoints="every:6", **changes)
    reference = train(cfg, tmp_path / "reference")
    killed = tmp_path / "killed"
    with pytest.raises(_Killed):
        train(cfg, killed, on_epoch=_interrupt_at(14))
    train(None, killed, resume=True)
    for epoch in reference.epochs:
        a = files.checkpoint_path(reference.path, epoch).read_bytes()
        assert a == files.checkpoint_path(killed, epoch).read_bytes(), epoch
    ref_opt = (reference.path / files.OPTIMIZER).read_bytes()
    assert ref_opt == (killed / files.OPTIMIZER).read_bytes()
    assert read_metrics(killed / files.METRICS) == read_metrics(reference.path / files.METRICS)
