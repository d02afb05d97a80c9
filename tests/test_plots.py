"""Plot functions: each returns a Figure with the expected traces, titles and shading."""

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from _synthetic_analysis import (
    CIRC_END,
    CLEAN_END,
    KEY_FREQS,
    MEM_END,
    T_GROK,
    T_MEM,
    synthetic_summary,
    synthetic_table,
)

from grokinterp import plots
from grokinterp.analysis.summary import weight_norm_fits

P = 13


@pytest.fixture(scope="module")
def table():
    return synthetic_table(p=P)


@pytest.fixture(scope="module")
def phases():
    return plots.Phases(MEM_END, CIRC_END, CLEAN_END, T_MEM, T_GROK)


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def n_phase_bands(fig: go.Figure) -> int:
    return sum(1 for s in fig.layout.shapes if s.type == "rect")


def test_loss_curves_log_scale_with_three_phases(table, phases):
    fig = plots.loss_curves(table, phases)
    assert fig.layout.title.text == "Train and test loss"
    assert fig.layout.yaxis.type == "log"
    assert "nats" in fig.layout.yaxis.title.text and fig.layout.xaxis.title.text == "epoch"
    assert {"train loss", "test loss"} <= set(names(fig))
    assert n_phase_bands(fig) == 3
    assert {f"phase: {n}" for n in plots.PHASE_NAMES} <= set(names(fig))
    fills = [s.fillcolor for s in fig.layout.shapes if s.type == "rect"]
    assert fills == [plots.PALETTE["phases"][n] for n in plots.PHASE_NAMES]


def test_phases_stop_at_the_first_unknown_boundary():
    assert plots.Phases(10, None, 30).spans() == [("memorisation", 0.0, 10.0)]
    assert plots.Phases().spans() == []


def test_spectrum_heatmap_and_final_bar(table):
    heat = plots.spectrum_heatmap(table)
    assert isinstance(heat.data[0], go.Heatmap)
    assert list(heat.data[0].y) == list(range((P + 1) // 2))
    assert heat.data[0].z.shape == ((P + 1) // 2, table["epoch"].nunique())
    bar = plots.spectrum_bar(table, KEY_FREQS)
    colours = list(bar.data[0].marker.color)
    expected = plots.frequency_colors(KEY_FREQS)
    for k in range((P + 1) // 2):
        assert colours[k] == expected.get(k, plots.PALETTE["other frequency"])
    assert {a.text for a in bar.layout.annotations} == {f"k={k}" for k in KEY_FREQS}
    assert "epoch 1000" in bar.layout.title.text
    assert "W_L" in plots.spectrum_heatmap(table, "wl_freq_norm").layout.title.text


def test_gini_and_progress_losses(table, phases):
    gini = plots.gini_curves(table, phases)
    assert {"W_E", "W_L = W_out W_U"} <= set(names(gini))
    assert n_phase_bands(gini) == 3
    prog = plots.progress_losses(table, phases)
    assert {
        "train loss",
        "test loss",
        "restricted loss (all pairs)",
        "excluded loss (train pairs)",
    } <= set(names(prog))
    assert prog.layout.yaxis.type == "log" and n_phase_bands(prog) == 3
    per_k = plots.excluded_loss_per_frequency(table, KEY_FREQS, phases)
    assert {f"without k={k}" for k in KEY_FREQS} <= set(names(per_k))


def test_weight_norm_fits_each_phase_and_the_figure_draws_them(phases):
    t = np.linspace(0, 1000, 101).round()
    rates = {"circuit formation": 1e-3, "cleanup": 4e-3, "after cleanup": 5e-4}
    # flat in memorisation, then a different exponential rate in each later phase
    log_y = np.where(t < MEM_END, 0.0, -1e-3 * (np.minimum(t, CIRC_END) - MEM_END))
    log_y -= 4e-3 * np.clip(t - CIRC_END, 0, CLEAN_END - CIRC_END)
    log_y -= 5e-4 * np.clip(t - CLEAN_END, 0, None)
    y = 800 * np.exp(log_y)
    bounds = {"memorisation_end": MEM_END, "circuit_formation_end": CIRC_END}
    fits = weight_norm_fits(t, y, {**bounds, "cleanup_end": CLEAN_END}, lr=1e-3, weight_decay=1.0)
    assert fits["predicted_rate"] == pytest.approx(2e-3)  # 2 lr wd
    got = {f["phase"]: f for f in fits["fits"]}
    assert list(got) == list(rates)
    for phase, rate in rates.items():
        assert got[phase]["rate"] == pytest.approx(rate, rel=1e-6)
    assert (got["cleanup"]["start"], got["cleanup"]["end"]) == (CIRC_END, CLEAN_END)
    assert got["after cleanup"]["end"] == 1000
    assert got["cleanup"]["amplitude"] == pytest.approx(800 * np.exp(-1e-3 * (CIRC_END - MEM_END)))
    # a phase with fewer than 2 checkpoints is skipped; unknown boundaries end the list
    sparse = weight_norm_fits(t, y, {**bounds, "cleanup_end": CIRC_END + 5}, 1e-3, 1.0)
    assert [f["phase"] for f in sparse["fits"]] == ["circuit formation", "after cleanup"]
    assert weight_norm_fits(t, y, {"memorisation_end": MEM_END}, 1e-3, 1.0)["fits"] == []

    rows = pd.DataFrame(
        {"epoch": t.astype(int), "measure": "weight_norm_sq", "key": "total", "value": y}
    )
    fig = plots.weight_norm_decay(rows, fits, phases)
    fitted, theory = fig.data[1], fig.data[2]
    x = np.array([v for v in fitted.x if v is not None], dtype=float)
    assert np.allclose([v for v in fitted.y if v is not None], np.interp(x, t, y), rtol=1e-6)
    assert sum(v is None for v in fitted.x) == 3  # one segment per phase
    assert "2.00e-03" in theory.name and "exp(-2·lr·wd·t)" in theory.name
    assert [a.text for a in fig.layout.annotations] == [
        f"{phase}: {rate:.2e}/epoch" for phase, rate in rates.items()
    ]
    bare = names(plots.weight_norm_decay(rows, None, phases))  # an older summary: no fits
    assert "sum of squared weights" in bare and "exponential fitted per phase" not in bare


def test_attention_curves_and_maps(table, phases):
    fig = plots.attention_curves(table, phases)
    lines = [t for t in fig.data if t.name and t.name.startswith("to ")]
    assert len(lines) == 4 * 3  # 4 heads x (a, b, =)
    assert [a.text for a in fig.layout.annotations][:4] == [f"head {h}" for h in range(4)]
    assert n_phase_bands(fig) == 3 * 4  # each band on each head's panel
    maps = np.random.default_rng(0).random((4, P, P))
    heat = plots.attention_maps(maps, epoch=1000)
    assert len(heat.data) == 4 and all(isinstance(t, go.Heatmap) for t in heat.data)
    assert np.allclose(heat.data[2].z, maps[2])
    for h in range(4):  # the axes hold the p x p cells exactly: no padding past p - 1
        suffix = str(h + 1) if h else ""
        assert list(heat.layout[f"xaxis{suffix}"].range) == [-0.5, P - 0.5]
        assert list(heat.layout[f"yaxis{suffix}"].range) == [P - 0.5, -0.5]  # a = 0 on top
    with pytest.raises(ValueError, match="n_heads, p, p"):
        plots.attention_maps(np.zeros((P, P)))


def test_neuron_clusters_group_by_frequency():
    summary = synthetic_summary(p=P, d_mlp=32)
    n = summary["neurons"]
    fig = plots.neuron_clusters(n["best_freq"], n["frac_explained"], KEY_FREQS, 0.85, 1000)
    xs = [t.x[0] for t in fig.data]
    assert xs[: len(KEY_FREQS)] == [f"k={k}" for k in sorted(KEY_FREQS)]
    assert sum(len(t.y) for t in fig.data) == 31  # one dead neuron left out
    assert "1 dead" in fig.layout.title.text
    assert any(s.type == "line" and s.y0 == 0.85 for s in fig.layout.shapes)


def test_neurons_per_frequency_and_logit_structure(table, phases):
    fig = plots.neurons_per_frequency(table, KEY_FREQS, phases)
    assert {f"k={k}" for k in KEY_FREQS} <= set(names(fig))
    logit = plots.logit_structure(table, KEY_FREQS, phases)
    assert {"k=3", "k=5", "all key frequencies"} <= set(names(logit))
    assert "cos(w_k(a+b-c))" in logit.layout.title.text


def test_colours_per_frequency_are_consistent():
    colours = plots.frequency_colors([41, 14, 35])
    assert colours[14] == plots.PALETTE["frequencies"][0]
    assert colours[41] == plots.PALETTE["frequencies"][2]


def test_single_checkpoint_pictures():
    p = 7
    labels = ["const"] + [f"{f} {k}" for k in (1, 2, 3) for f in ("cos", "sin")]
    emb = plots.embedding_fourier(np.ones((p, 5)), labels, epoch=3)
    assert list(emb.data[0].y) == labels
    pic = plots.neuron_picture(np.zeros((p, p)), np.eye(p), labels, neuron=4, freq=2)
    assert len(pic.data) == 2 and "neuron 4" in pic.layout.title.text
    d = np.arange(p)
    curve = 2 * np.cos(2 * math.pi * 1 * d / p) + 0.5 * np.cos(2 * math.pi * 3 * d / p)
    prof = plots.logit_profile(curve, key_freqs=[1, 3])
    assert np.allclose(prof.data[-1].y, curve)  # the cosines add up to the curve
    assert prof.data[1].name.startswith("2.00")


def test_missing_measure_names_the_measure(table):
    with pytest.raises(KeyError, match="no_such_measure"):
        plots.measure_series(table, "no_such_measure")
