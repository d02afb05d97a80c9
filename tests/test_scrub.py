"""Epoch-slider data and figures: frame choice, and every frame against the direct computation."""

import shutil

import numpy as np
import pytest
import torch

from grokinterp import circuit, scrub
from grokinterp.analysis import checkpoint_detail
from grokinterp.fourier import freq_norms
from grokinterp.measures import logits_along_sum
from grokinterp.measures.losses import cross_entropy, sum_index
from grokinterp.plots import sliders as plots_scrub
from grokinterp.run import load_run
from grokinterp.schedule import checkpoint_epochs
from grokinterp.storage import write_json


def test_scrub_epochs_keeps_ends_and_anchors_and_spreads():
    epochs = checkpoint_epochs("default", 25_000)  # ~590 uneven checkpoints
    chosen = scrub.scrub_epochs(epochs, 60, anchors=[1_410, 9_437, 14_020])
    assert len(chosen) == 60 and chosen == sorted(set(chosen))
    assert set(chosen) <= set(epochs)
    assert chosen[0] == 0 and chosen[-1] == 25_000
    assert {1_400, 9_450, 14_000} <= set(chosen)  # nearest checkpoints to the anchors
    gaps = np.diff(chosen)
    assert gaps.max() < 25_000 / 20  # no stretch of training left out
    assert sum(e < 1_000 for e in chosen) >= 5  # the early, fast part is seen too
    assert scrub.scrub_epochs([5, 0, 10], 60) == [0, 5, 10]
    with pytest.raises(ValueError, match="max_frames"):
        scrub.scrub_epochs(epochs, 1)


def test_phase_anchors_read_the_summary():
    summary = {"phases": {"T_mem": {"epoch": 140}, "T_grok": {"epoch": None}, "cleanup_end": {}}}
    assert scrub.phase_anchors(summary) == {"T_mem": 140}
    assert scrub.phase_anchors({}) == {}


def test_plateau_epoch_is_between_memorisation_and_grokking():
    epochs = checkpoint_epochs("default", 25_000)
    summary = {"phases": {"memorisation_end": {"epoch": 1_400}, "T_grok": {"epoch": 9_400}}}
    assert scrub.plateau_epoch(epochs, summary) == 5_400
    summary["phases"]["circuit_formation_end"] = {"epoch": 9_000}
    assert scrub.plateau_epoch(epochs, summary) == 5_200
    assert scrub.plateau_epoch([0, 10, 20, 30], {}) == 20  # no phases: the middle one


def test_logit_profile_batched_equals_the_circuit_helper():
    p = 7
    logits = torch.randn(3, p * p, p, generator=torch.Generator().manual_seed(1))
    got = logits_along_sum(logits, sum_index(p, "add"), p)
    for c in range(3):
        want = circuit.logits_along_sum(logits[c].unflatten(0, (p, p)))
        torch.testing.assert_close(got[c], want)


@pytest.fixture(scope="module")
def scrubbed(tiny_run, tmp_path_factory):
    data = scrub.scrub_data(tiny_run, max_frames=3, chunk_size=2)  # chunks of 2 and 1
    return tiny_run, data


def test_every_frame_equals_the_per_checkpoint_computation(scrubbed):
    run, data = scrubbed
    p = run.config.p
    assert len(data.epochs) == 3 and data.epochs[0] == run.epochs[0]
    assert data.epochs[-1] == run.epochs[-1]
    for i, epoch in enumerate(data.epochs):
        detail = checkpoint_detail(run, epoch)
        np.testing.assert_allclose(data.attention_to_a[i], detail["attention_to_a"], atol=1e-5)
        # the best frequency, up to float32 ties (checkpoints stacked 2 at a time vs 1)
        rows = np.arange(len(detail["best_freq"]))
        fractions = np.nan_to_num(detail["fractions"], nan=-1.0)
        np.testing.assert_allclose(
            fractions[rows, data.best_freq[i]], fractions[rows, detail["best_freq"]], atol=1e-4
        )
        assert np.mean(data.best_freq[i] == detail["best_freq"]) > 0.9
        np.testing.assert_allclose(data.frac_explained[i], detail["frac_explained"], atol=1e-4)
        spectrum = freq_norms(torch.as_tensor(detail["embed_components"])).numpy()
        np.testing.assert_allclose(data.embed_freq_norm[i], spectrum, rtol=1e-5)
        logits, _ = run.cache_at(epoch, names_filter=[])
        last = logits[:, -1]
        want = circuit.logits_along_sum(last.unflatten(0, (p, p))).numpy()
        np.testing.assert_allclose(data.logit_profile[i], want, atol=1e-5)
        test = run.dataset.test_idx
        loss = float(cross_entropy(last[test], run.dataset.labels[test]))
        assert data.test_loss[i] == pytest.approx(loss, rel=1e-5)


def test_frames_come_from_the_summary_phases(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    write_json(
        run_dir / "summary.json", {"phases": {"T_mem": {"epoch": 21}}, "key_frequencies": [3]}
    )
    data = scrub.scrub_data(load_run(run_dir), epochs=[0, 20, 60])
    assert data.anchors == {"T_mem": 20} and data.key_freqs == (3,)


def test_slider_figures_hold_the_data(scrubbed):
    _, data = scrubbed
    figs = plots_scrub.slider_figures(data)
    assert set(figs) == {
        "scrub_embedding_spectrum",
        "scrub_neuron_clusters",
        "scrub_attention",
        "scrub_logit_profile",
    }
    for fig in figs.values():
        assert [f.name for f in fig.frames] == [str(e) for e in data.epochs]
        steps = fig.layout.sliders[0].steps
        assert [s.label for s in steps] == [str(e) for e in data.epochs]
        assert len(fig.frames) <= scrub.MAX_FRAMES
    n_heads = data.attention_to_a.shape[1]
    for i, epoch in enumerate(data.epochs):
        spectrum = figs["scrub_embedding_spectrum"].frames[i].data[0].y
        np.testing.assert_allclose(spectrum, data.embed_freq_norm[i], rtol=5e-3)
        profile = figs["scrub_logit_profile"].frames[i].data[0].y
        np.testing.assert_allclose(profile, data.logit_profile[i], rtol=5e-3, atol=1e-6)
        frac = figs["scrub_neuron_clusters"].frames[i].data[0].y
        np.testing.assert_allclose(frac, data.frac_explained[i], rtol=5e-3)
        heat = figs["scrub_attention"].frames[i].data
        assert len(heat) == n_heads
        for h in range(n_heads):
            np.testing.assert_allclose(heat[h].z, 100 * data.attention_to_a[i, h], atol=0.5 + 1e-6)
        assert str(epoch) in figs["scrub_attention"].frames[i].layout.title.text


def test_round_sig():
    x = np.array([123456.0, 0.0012345, -9.876, 0.0, np.nan])
    np.testing.assert_allclose(
        plots_scrub.round_sig(x), [123000.0, 0.00123, -9.88, 0.0, np.nan], rtol=1e-6
    )
