import json
from dataclasses import fields

import pytest

from grokinterp.config import ConfigError, RunConfig
from grokinterp.schedule import checkpoint_epochs


def test_defaults_follow_the_spec():
    cfg = RunConfig()
    assert (cfg.p, cfg.operation, cfg.frac_train) == (113, "add", 0.3)
    assert cfg.n_train == 3830
    assert (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.act_fn) == (
        128,
        4,
        32,
        512,
        "relu",
    )
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.equals_token) == (114, 113, 113)
    assert (cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2, cfg.warmup_steps) == (
        1e-3,
        1.0,
        0.9,
        0.98,
        10,
    )
    assert cfg.loss_dtype == "float64" and cfg.biases == "mlp"
    assert (cfg.init, cfg.init_scale) == ("paper", 1.0)
    assert cfg.run_name == "add-p113-paper-init999-data598"
    assert RunConfig(init="native", init_scale=3.0).run_name == "add-p113-nativex3-init999-data598"


def test_the_derived_run_name_tells_apart_runs_that_learn_differently():
    stem = "add-p113-paper-init999-data598"
    assert RunConfig(lr=3e-3).run_name == f"{stem}-lr0.003"
    named = RunConfig(optimizer="sgd", weight_decay=0.5, batch_size=512, dropout=0.1)
    assert named.run_name == f"{stem}-sgd-wd0.5-batch512-dropout0.1"
    assert RunConfig(grokfast="ema", nesterov=True).run_name == f"{stem}-nesterov-grokfastema"
    # the run's length and bookkeeping do not change what is learned: same folder
    same = RunConfig(epochs=500, checkpoints="every:10", eval_every=5, stop_after_grok=100)
    assert same.run_name == stem
    assert RunConfig(stop_after_grok_delays=2.0).run_name == stem
    # every other field shows up in the name when it leaves its default
    seen = {"p", "operation", "init", "init_scale", "init_seed", "data_seed", "name"}
    skipped = {"epochs", "stop_after_grok", "stop_after_grok_delays", "eval_every"}
    skipped |= {"checkpoints", "fast_path"}
    others = {"optimizer": "adam", "act_fn": "gelu", "biases": "none", "grokfast": "ma",
              "loss_dtype": "float32", "d_model": 64, "d_head": 16, "beta1": 0.8,
              "beta2": 0.9, "grokfast_alpha": 0.9, "dropout": 0.1,
              "loss": "stablemax"}  # fmt: skip
    for f in fields(RunConfig):
        if f.name in seen | skipped:
            continue
        value = getattr(RunConfig(), f.name)
        if f.name in others:
            other = others[f.name]
        elif isinstance(value, bool):
            other = not value
        elif isinstance(value, int):
            other = value + 1
        else:
            other = value / 2
        assert RunConfig(**{f.name: other}).run_name != stem, f.name


def test_derived_values_follow_p():
    cfg = RunConfig(p=31)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.equals_token) == (32, 31, 31)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"p": 2}, "p"),
        ({"p": 1}, "p"),
        ({"p": 12}, "p"),
        ({"frac_train": 0.0}, "frac_train"),
        ({"frac_train": 1.0}, "frac_train"),
        ({"frac_train": -0.2}, "frac_train"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -5}, "epochs"),
        ({"operation": "pow"}, "operation"),
        ({"operation": "mul", "p": 15}, "operation"),
        ({"operation": "div", "p": 15}, "operation"),
        ({"checkpoints": "every:0"}, "checkpoints"),
        ({"checkpoints": "hourly"}, "checkpoints"),
        ({"checkpoints": "list:5,999999"}, "checkpoints"),
        ({"lr": 0.0}, "lr"),
        ({"biases": "all"}, "biases"),
        ({"loss_dtype": "float16"}, "loss_dtype"),
        ({"p": "113"}, "p"),
        ({"eval_every": 0}, "eval_every"),
        ({"init": "xavier"}, "init"),
        ({"init_scale": 0.0}, "init_scale"),
    ],
)
def test_bad_values_are_refused_naming_the_field(changes, field):
    with pytest.raises(ConfigError, match=rf"RunConfig\.{field}\b"):
        RunConfig(**changes)


def test_sub_and_mul_are_accepted():
    assert RunConfig(operation="sub", p=15).operation == "sub"
    assert RunConfig(operation="mul", p=13).operation == "mul"


def test_round_trip_through_dict_and_json():
    cfg = RunConfig(p=31, operation="sub", epochs=123, checkpoints="log:10+every:7")
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_the_stop_rule_round_trips_and_old_configs_read_it_as_off():
    cfg = RunConfig(stop_after_grok=2000, stop_after_grok_delays=2.0)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    old = RunConfig().to_dict()
    del old["stop_after_grok_delays"]  # a config.json written before the field existed
    assert RunConfig.from_dict(old).stop_after_grok_delays == 0.0  # no delay-based stop
    from grokinterp.sweep.spec import parse_spec

    spec = parse_spec(
        {"base": {"p": 23, "stop_after_grok_delays": 1.5}, "grid": {"lr": [1e-3, 2e-3]}}
    )
    assert {c.stop_after_grok_delays for c in spec.runs().values()} == {1.5}


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="unknown RunConfig field"):
        RunConfig.from_dict({"p": 113, "modulus": 7})


def test_saved_config_equals_the_config(tiny_run):
    saved = json.loads((tiny_run.path / "config.json").read_text())
    assert saved == tiny_run.config.to_dict()


def test_default_schedule_is_dense_early_then_every_50():
    epochs = checkpoint_epochs("default", 25_000)
    early = [e for e in epochs if e <= 1000]
    assert epochs[0] == 0 and epochs[-1] == 25_000
    assert 60 <= len(early) <= 110
    assert all(e % 50 == 0 for e in epochs if e > 1000)
    assert 500 <= len(epochs) <= 700  # several hundred checkpoints


def test_schedules_always_include_start_and_end():
    assert checkpoint_epochs("every:30", 100) == [0, 30, 60, 90, 100]
    assert checkpoint_epochs("list:5,7", 10) == [0, 5, 7, 10]
    log = checkpoint_epochs("log:5", 10_000)
    assert log[0] == 0 and log[-1] == 10_000 and log == sorted(set(log))
    assert checkpoint_epochs("every:50+list:3", 100) == [0, 3, 50, 100]
