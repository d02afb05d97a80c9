"""Sweep specs: expansion to named runs, refusal of bad specs, the sweep folder's manifest."""

import tomllib
from pathlib import Path

import pytest

from grokinterp.config import RunConfig
from grokinterp.schedule import SWEEP_SCHEDULE
from grokinterp.sweep.manifest import (
    MANIFEST,
    SPEC_COPY,
    Manifest,
    SweepExistsError,
    SweepLockedError,
    read_manifest,
)
from grokinterp.sweep.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "sweep-tiny.toml"
EXAMPLE = ROOT / "examples" / "sweep-wd-lr-p59.toml"


def spec_dict(**changes):
    base = {
        "seeds": [[999, 598], [1, 2]],
        "base": {"p": 11, "epochs": 50},
        "grid": {"weight_decay": [0.5, 1], "lr": [1e-3, 3e-3]},
        "zip": {"d_mlp": [64, 128], "d_model": [32, 64]},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_grid_zip_and_seeds_expand_to_their_product():
    runs = parse_spec(spec_dict()).runs()
    assert len(runs) == 2 * 2 * 2 * 2
    fields = ("weight_decay", "lr", "d_mlp", "d_model", "init_seed", "data_seed")
    assert len({tuple(getattr(c, f) for f in fields) for c in runs.values()}) == 16
    # zip fields vary together, never crossed
    assert {(c.d_mlp, c.d_model) for c in runs.values()} == {(64, 32), (128, 64)}
    assert {(c.init_seed, c.data_seed) for c in runs.values()} == {(999, 598), (1, 2)}
    first = next(iter(runs.values()))
    assert (first.weight_decay, first.lr, first.d_mlp, first.init_seed) == (0.5, 1e-3, 64, 999)
    # every run: the base, the sweep's checkpoint schedule, its own name
    for name, cfg in runs.items():
        assert cfg.p == 11 and cfg.epochs == 50
        assert cfg.checkpoints == SWEEP_SCHEDULE
        assert cfg.name == name and cfg.run_name == name
        assert isinstance(cfg.weight_decay, float)  # TOML's 1 stored as 1.0


def test_names_are_built_from_the_fields_that_vary():
    runs = parse_spec(spec_dict()).runs()
    assert "wd0.5-lr0.001-d_mlp64-d_model32-init999-data598" in runs
    assert "wd1-lr0.003-d_mlp128-d_model64-init1-data2" in runs
    # an axis with one value does not vary, so it is not in the names
    one_seed = parse_spec(spec_dict(seeds=[[7, 8]], zip=None)).runs()
    assert sorted(one_seed) == ["wd0.5-lr0.001", "wd0.5-lr0.003", "wd1-lr0.001", "wd1-lr0.003"]
    assert {c.init_seed for c in one_seed.values()} == {7}


def test_example_and_test_specs_load():
    spec, text = load_spec(EXAMPLE)
    runs = spec.runs()
    assert spec.name == "wd-lr-p59" and len(runs) == 24  # 4 wd x 3 lr x 2 seeds
    assert "wd1-lr0.001-init999-data598" in runs and "wd5-lr0.003-init1-data2" in runs
    assert all(c.p == 59 and c.stop_after_grok > 0 for c in runs.values())
    assert tomllib.loads(text)["name"] == "wd-lr-p59"
    tiny, _ = load_spec(TINY)
    assert len(tiny.runs()) == 4


@pytest.mark.parametrize("path", sorted(EXAMPLE.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_spec_loads(path):
    spec, _ = load_spec(path)
    assert spec.runs()  # expands to runs that RunConfig accepts


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"grid": {"lrr": [1e-3]}}, r"\[grid\]: unknown RunConfig field 'lrr'"),
        ({"base": {"p": 11, "wd": 1.0}}, r"\[base\]: unknown RunConfig field 'wd'"),
        ({"grid": {"lr": [1e-3, -1.0]}}, r"\[grid\] lr = -1.0: RunConfig.lr must be > 0"),
        ({"grid": {"lr": ["fast"]}}, r"\[grid\] lr = 'fast'.*type float"),
        ({"grid": {"lr": []}}, r"\[grid\] lr: empty list"),
        ({"grid": {}}, r"\[grid\] is empty"),
        ({"grid": {"lr": 1e-3}}, r"\[grid\] lr: expected a list"),
        ({"zip": {"d_mlp": [64, 128], "d_model": [32]}}, r"\[zip\]: lists of unequal length"),
        ({"base": {"p": 11, "lr": 1e-3}}, r"\[grid\] lr: 'lr' is also given in \[base\]"),
        ({"base": {"p": 11, "init_seed": 1}}, r"seeds init_seed: .*also given in \[base\]"),
        ({"base": {"p": 11, "name": "x"}}, r"'name' is set by the sweep"),
        ({"seeds": [[1, 2, 3]]}, r"seeds: expected a non-empty list of \[init_seed, data_seed\]"),
        ({"seeds": [[1, 2], [1, 2]]}, r"seeds: repeated pairs"),
        ({"grid": {"lr": [1e-3, 0.001]}}, r"\[grid\] lr: repeated values"),
        (
            {"zip": {"d_mlp": [64, 128, 64], "d_model": [32, 64, 32]}},
            r"\[zip\]: entries \[3\] repeat an earlier entry of \['d_mlp', 'd_model'\]",
        ),
        ({"runs": 3}, r"unknown top-level key\(s\) \['runs'\]"),
        ({"base": {"p": 11, "epochs": 0}}, r"\[base\]: RunConfig.epochs must be a positive"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(changes, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec_dict(**changes))


def test_a_combination_refused_by_runconfig_names_the_run():
    grid = {"operation": ["add", "mul"], "p": [11, 15]}
    spec = spec_dict(base={"epochs": 50}, grid=grid, zip=None, seeds=None)
    with pytest.raises(SpecError, match=r"run mul-p15 .*'mul' needs a prime p"):
        parse_spec(spec)


def test_a_bad_spec_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[grid]\nlr = [\n")
    with pytest.raises(SpecError, match=r"bad.toml: not valid TOML"):
        load_spec(path)
    path.write_text("[grid]\nlrr = [1e-3]\n")
    with pytest.raises(SpecError, match=r"bad.toml: \[grid\]: unknown RunConfig field 'lrr'"):
        load_spec(path)


# --- the sweep folder ---------------------------------------------------------------------


def test_manifest_lists_every_run_as_pending(tmp_path):
    spec, text = load_spec(TINY)
    Manifest.open(tmp_path / "sweep", spec, text)
    data = read_manifest(tmp_path / "sweep")
    assert (tmp_path / "sweep" / SPEC_COPY).read_text() == text
    assert list(data["runs"]) == list(spec.runs())
    for name, entry in data["runs"].items():
        assert entry["status"] == "pending" and entry["error"] is None
        assert RunConfig.from_dict(entry["config"]) == spec.runs()[name]


def test_a_different_spec_is_refused_listing_the_differences(tmp_path):
    spec, text = load_spec(TINY)
    Manifest.open(tmp_path / "sweep", spec, text)
    Manifest.open(tmp_path / "sweep", spec, text + "\n# a comment changes nothing\n")
    data = tomllib.loads(text)
    data["base"]["epochs"] = 400
    data["grid"]["weight_decay"] = [0.5, 1.0, 2.0]
    other = parse_spec(data, "tiny")
    with pytest.raises(SweepExistsError) as err:
        Manifest.open(tmp_path / "sweep", other, "")
    assert "base.epochs: 300 -> 400" in str(err.value)
    assert "grid.weight_decay: [0.5, 1.0] -> [0.5, 1.0, 2.0]" in str(err.value)


def test_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    spec, text = load_spec(TINY)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SweepExistsError, match="not empty and holds no sweep"):
        Manifest.open(tmp_path / "mine", spec, text)
    assert not (tmp_path / "mine" / MANIFEST).exists()


def test_one_coordinator_per_sweep_folder(tmp_path):
    spec, text = load_spec(TINY)
    first = Manifest.open(tmp_path / "sweep", spec, text)
    with first:
        with pytest.raises(SweepLockedError, match="another 'grokinterp sweep'"):
            with Manifest.open(tmp_path / "sweep", spec, text):
                pass
    with Manifest.open(tmp_path / "sweep", spec, text):  # released on exit
        pass


def test_a_zip_list_may_repeat_a_value_when_the_tuples_differ():
    # e.g. Grokfast against two AdamW baselines: (ema, 1e-3), (none, 1e-3), (none, 3e-3)
    spec = parse_spec(
        spec_dict(zip={"d_mlp": [64, 64, 128], "d_model": [32, 64, 64]}, grid=None, seeds=None)
    )
    runs = spec.runs()
    assert sorted((c.d_mlp, c.d_model) for c in runs.values()) == [(64, 32), (64, 64), (128, 64)]
    assert len(set(runs)) == 3  # three distinct names
