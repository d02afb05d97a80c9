"""analyze(): the table, the summary, incremental runs, and batched vs hooked agreement."""

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from grokinterp import load_run, train
from grokinterp.analysis import (
    ANALYSES,
    analyze,
    analyze_path,
    default_measures,
    format_summary,
    measure_batched,
    measure_hooked,
    read_table,
)
from grokinterp.storage import read_json
from tests.conftest import tiny_config

CFG = tiny_config(d_model=16, d_head=8, d_mlp=32, checkpoints="every:10", init="native")
THRESHOLD = 0.3  # low, so that this tiny untrained model has neurons owned by frequencies


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(CFG, out)
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    dest = tmp_path / "tiny"
    shutil.copytree(trained, dest)
    return dest


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a[["epoch", "measure", "key"]].equals(b[["epoch", "measure", "key"]])
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-5, atol=1e-9)


def test_table_has_every_documented_measure(run_dir):
    table = analyze(run_dir, threshold=THRESHOLD)
    assert list(table.columns) == ["epoch", "measure", "key", "value"]
    assert set(table["measure"]) == set(default_measures()) == set(ANALYSES) - {"sharpness", "llc"}
    summary = read_json(run_dir / "summary.json")
    k = summary["key_frequencies"]
    keys = {m: set(g["key"]) for m, g in table.groupby("measure")}
    n = (CFG.p - 1) // 2
    assert keys["train_loss"] == {""} and keys["gini_embed"] == {""}
    assert keys["embed_freq_norm"] == {str(i) for i in range(n + 1)}
    assert keys["neurons_per_freq"] == {str(i) for i in range(1, n + 1)}
    assert keys["restricted_loss"] == {"all", "train", "test"}
    assert keys["excluded_loss"] == {"all", *map(str, k)}
    assert keys["logit_explained_var"] == {"all", *map(str, k)}
    assert keys["attn_to"] == {f"h{h}:{t}" for h in range(2) for t in "ab="}
    assert {"total", "W_E", "W_in", "W_U"} <= keys["weight_norm_sq"]
    assert len(table) == table.groupby("epoch").size().iloc[0] * len(load_run(run_dir).epochs)
    # the file round-trips exactly, with the scalar key kept as ""
    pd.testing.assert_frame_equal(read_table(run_dir), table)
    # the loss from the checkpoint equals the logged training loss of that epoch
    metrics = load_run(run_dir).metrics
    logged = dict(zip(metrics["epoch"], metrics["train_loss"], strict=True))
    ours = table[(table.measure == "train_loss")].set_index("epoch")["value"]
    for epoch, value in ours.items():
        if epoch in logged:
            assert value == pytest.approx(logged[epoch], rel=1e-5)
    attn = table[table.measure == "attn_to"].groupby(["epoch"])["value"].sum()
    np.testing.assert_allclose(attn, 2.0)  # each head's attention sums to 1


def test_summary_contents(run_dir):
    analyze(run_dir, threshold=THRESHOLD)
    summary = read_json(run_dir / "summary.json")
    for key in ("key_frequencies", "key_freq_births", "phases", "final", "neurons", "settings"):
        assert key in summary
    assert set(summary["phases"]) == {
        "T_mem",
        "T_grok",
        "grokking_ratio",
        "memorisation_end",
        "circuit_formation_end",
        "cleanup_end",
    }
    assert all("rule" in b and "inputs" in b for b in summary["phases"].values())
    assert len(summary["neurons"]["best_freq"]) == CFG.d_mlp
    assert summary["settings"]["threshold"] == THRESHOLD
    assert set(summary["key_freq_births"]) == set(map(str, summary["key_frequencies"]))
    text = format_summary(summary)
    assert "key frequencies" in text and "T_mem" in text


def test_incremental_equals_fresh_even_when_key_frequencies_change(run_dir, tmp_path):
    fresh_dir = tmp_path / "fresh"
    shutil.copytree(run_dir, fresh_dir)
    held = tmp_path / "held"
    held.mkdir()
    for f in sorted((run_dir / "checkpoints").iterdir())[4:]:
        shutil.move(f, held / f.name)
    analyze(run_dir, threshold=THRESHOLD)
    early = read_json(run_dir / "summary.json")["key_frequencies"]
    for f in held.iterdir():  # the run goes on: new checkpoints arrive
        shutil.move(f, run_dir / "checkpoints" / f.name)
    incremental = analyze(run_dir, threshold=THRESHOLD)
    fresh = analyze(fresh_dir, threshold=THRESHOLD)
    late = read_json(fresh_dir / "summary.json")["key_frequencies"]
    assert early != late  # this setup changes the key frequencies; the rows must follow
    _same(incremental, fresh)
    assert read_json(run_dir / "summary.json")["key_frequencies"] == late


def test_rerun_computes_nothing_and_given_key_freqs_recompute(run_dir, monkeypatch):
    first = analyze(run_dir, threshold=THRESHOLD)
    calls = []
    import grokinterp.analysis.pipeline as module

    original = module.measure_batched

    def spy(run, epochs, *args, **kwargs):
        calls.append(list(epochs))
        return original(run, epochs, *args, **kwargs)

    monkeypatch.setattr(module, "measure_batched", spy)
    _same(analyze(run_dir, threshold=THRESHOLD), first)
    assert calls == [[]]
    given = analyze(run_dir, threshold=THRESHOLD, key_freqs=[2])
    assert len(calls[-1]) == len(load_run(run_dir).epochs)
    assert set(given[given.measure == "excluded_loss"]["key"]) == {"all", "2"}
    monkeypatch.undo()
    fresh_dir = run_dir.parent / "fresh2"
    shutil.copytree(run_dir, fresh_dir)
    (fresh_dir / "analysis.csv").unlink()
    _same(given, analyze(fresh_dir, threshold=THRESHOLD, key_freqs=[2]))


def test_subset_of_measures_and_errors(run_dir):
    table = analyze(run_dir, measures=["train_loss", "gini_embed"], threshold=THRESHOLD)
    assert set(table.measure) == {"train_loss", "gini_embed"}
    with pytest.raises(ValueError, match="unknown measure"):
        analyze(run_dir, measures=["nope"])
    with pytest.raises(ValueError, match="outside"):
        analyze(run_dir, key_freqs=[99])


def test_batched_rows_equal_the_hooked_reference(run_dir):
    run = load_run(run_dir)
    epoch = run.epochs[-1]
    batched = measure_batched(run, [epoch], key_freqs=[1, 3], threshold=THRESHOLD)
    hooked = measure_hooked(
        run.model_at(epoch), run.config, run.dataset, epoch, [1, 3], threshold=THRESHOLD
    )
    _same(batched, hooked)


def test_the_table_equals_an_independent_computation_from_the_hooked_model(run_dir):
    """The batched table against a reference that shares none of its code path: the
    TransformerLens model's ``run_with_cache`` activations and weight properties, through
    the per-pair definitions of grokinterp.measures (no registry, no chunk, no shortcut)."""
    import torch

    from grokinterp.fourier import fourier_basis, freq_norms
    from grokinterp.measures import (
        accuracy,
        assign_neurons,
        cross_entropy,
        embedding_components,
        excluded_logits,
        logit_explained_variance,
        neuron_freq_fractions,
        neurons_per_freq,
        restricted_logits,
        sum_index,
    )
    from grokinterp.tasks import get_task

    run = load_run(run_dir)
    epoch, p, keys = run.epochs[-1], run.config.p, (1, 3)
    table = measure_batched(run, [epoch], key_freqs=keys, threshold=THRESHOLD)

    def row(measure: str, key: str = "") -> float:
        rows = table[(table["measure"] == measure) & (table["key"] == key)]
        assert len(rows) == 1, (measure, key)
        return float(rows["value"].iloc[0])

    model, data = run.model_at(epoch), run.dataset
    logits, cache = run.cache_at(epoch)
    last = logits[:, -1].double()  # (p^2, p): the answers at '='
    labels, train, test = data.labels, data.train_idx, data.test_idx
    basis, s = fourier_basis(p), sum_index(p, "add")
    want = {
        ("train_loss", ""): cross_entropy(last[train], labels[train]),
        ("test_loss", ""): cross_entropy(last[test], labels[test]),
        ("train_acc", ""): accuracy(last[train], labels[train]),
        ("test_acc", ""): accuracy(last[test], labels[test]),
    }
    restricted = restricted_logits(last, s, basis, keys)  # (p^2, p), per pair
    for split, idx in (("all", torch.arange(p * p)), ("train", train), ("test", test)):
        want[("restricted_loss", split)] = cross_entropy(restricted[idx], labels[idx])
    for key, freqs in (("all", keys), *((str(k), (k,)) for k in keys)):
        excluded = excluded_logits(last, s, basis, freqs)[train]
        want[("excluded_loss", key)] = cross_entropy(excluded, labels[train])
    spectrum = freq_norms(embedding_components(model.W_E.detach().double(), basis))
    for k in range(p // 2 + 1):
        want[("embed_freq_norm", str(k))] = spectrum[k]
    post = cache["blocks.0.mlp.hook_post"][:, -1]  # (p^2, d_mlp) at '='
    fractions = neuron_freq_fractions(post, get_task("add").basis(p))
    counts = neurons_per_freq(assign_neurons(fractions, THRESHOLD)[2], p)
    for k in range(1, p // 2 + 1):
        want[("neurons_per_freq", str(k))] = counts[k]
    explained = logit_explained_variance(last, s, p, keys)
    want[("logit_explained_var", "all")] = explained.sum()
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1]  # (p^2, H, 3) from '='
    for h in range(run.config.n_heads):
        for t, target in enumerate(("a", "b", "=")):
            want[("attn_to", f"h{h}:{target}")] = pattern[:, h, t].double().mean()
    for (measure, key), value in want.items():
        assert row(measure, key) == pytest.approx(float(value), rel=1e-5, abs=1e-9), (measure, key)


def test_analyze_path_on_a_folder_of_runs(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "second")
    summaries = analyze_path(tmp_path, threshold=THRESHOLD)
    assert sorted(summaries) == sorted([str(run_dir), str(tmp_path / "second")])
    assert (tmp_path / "second" / "analysis.csv").is_file()


def test_an_edited_measure_is_recomputed_and_the_others_kept(run_dir, monkeypatch):
    import grokinterp.analysis.pipeline as module

    first = analyze(run_dir, threshold=THRESHOLD)
    original = ANALYSES["gini_embed"]

    def edited(ck):  # the same measure with its code changed: its values move by one
        return {key: values + 1 for key, values in original.compute(ck).items()}

    monkeypatch.setitem(ANALYSES, "gini_embed", dataclasses.replace(original, compute=edited))
    todo = []
    real = module.measure_batched

    def spy(run, epochs, **options):
        todo.append({name: set(e) for name, e in options["only"].items() if e})
        return real(run, epochs, **options)

    monkeypatch.setattr(module, "measure_batched", spy)
    second = analyze(run_dir, threshold=THRESHOLD)
    assert todo == [{"gini_embed": set(load_run(run_dir).epochs)}]  # nothing else recomputed
    edited_rows = second.measure == "gini_embed"
    np.testing.assert_allclose(
        second[edited_rows]["value"], first[first.measure == "gini_embed"]["value"] + 1
    )
    pd.testing.assert_frame_equal(
        second[~edited_rows].reset_index(drop=True),
        first[first.measure != "gini_embed"].reset_index(drop=True),
    )
    fingerprints = read_json(run_dir / "summary.json")["settings"]["measure_fingerprints"]
    assert fingerprints["gini_embed"] == ANALYSES["gini_embed"].fingerprint != original.fingerprint


def test_asking_for_one_measure_recomputes_the_stale_others_instead_of_dropping_them(
    run_dir, tmp_path, monkeypatch
):
    """A stored measure whose code changed is recomputed even when the call asks for
    another measure only: the table never loses a measure it held."""
    run_copy = tmp_path / "copy"
    shutil.copytree(run_dir, run_copy)
    first = analyze(run_copy, threshold=THRESHOLD)
    original = ANALYSES["gini_embed"]
    monkeypatch.setitem(
        ANALYSES,
        "gini_embed",
        dataclasses.replace(original, compute=lambda ck: original.compute(ck), version=99),
    )
    second = analyze(run_copy, measures=["test_loss"], threshold=THRESHOLD)
    assert set(second.measure) == set(first.measure)
    np.testing.assert_allclose(
        second[second.measure == "gini_embed"]["value"],
        first[first.measure == "gini_embed"]["value"],
    )


def test_fingerprint_follows_the_functions_a_measure_calls(monkeypatch):
    from grokinterp.analysis import registry

    before = {name: a.fingerprint for name, a in ANALYSES.items()}

    def split_mean(ck, per_pair, split):  # an edit to a helper, not to the measure itself
        return per_pair.mean(-1)

    monkeypatch.setattr(registry, "_split_mean", split_mean)
    after = {name: a.fingerprint for name, a in ANALYSES.items()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"train_loss", "test_loss", "train_acc", "test_acc"}
    assert ANALYSES["gini_embed"].fingerprint == before["gini_embed"]
    again = dataclasses.replace(ANALYSES["gini_embed"], version=1)  # the explicit bump
    assert again.fingerprint != before["gini_embed"]


def test_analysis_settings_round_trip_through_summary_json(run_dir):
    from grokinterp.analysis import AnalysisSettings
    from grokinterp.errors import OptionError

    settings = AnalysisSettings(
        measures=("train_loss", "restricted_loss"), threshold=THRESHOLD, key_freqs=(3, 1, 3)
    )
    assert settings.key_freqs == (1, 3)  # sorted, once each
    assert AnalysisSettings.from_dict(settings.to_dict()) == settings
    analyze(run_dir, settings=settings)
    stored = read_json(run_dir / "summary.json")["settings"]
    assert AnalysisSettings.from_dict(stored) == settings
    assert AnalysisSettings.from_dict({}) == AnalysisSettings()  # the defaults
    with pytest.raises(OptionError, match="threshold must lie in"):
        AnalysisSettings(threshold=1.5)
    with pytest.raises(OptionError, match="sharpness_every must be"):
        AnalysisSettings(sharpness_every=0)
