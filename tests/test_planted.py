"""End to end on a planted circuit: analyze must recover what was built by hand.

The final checkpoint of the run is the Fourier algorithm of Nanda et al. (2023) with chosen
key frequencies (tests/_planted.py), so the answers are known: exactly those key
frequencies, every neuron owned by its own frequency, a restricted loss as small as the
model's loss, an excluded loss above log p, and a model that solves the task.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _planted import N_PHASES, write_planted_run

from grokinterp import files
from grokinterp.analysis import analyze

SMALL_LOSS = 1e-5  # the circuit's own loss is ~1e-7 (p=23) and ~4e-8 (p=31)

# Frequencies whose harmonics 2k, 3k, 4k (mod p, folded) miss the other key frequencies.
CASES = [(31, (2, 7, 13)), (23, (3, 8))]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"p{c[0]}-k{'-'.join(map(str, c[1]))}")
def planted(request, tmp_path_factory):
    p, freqs = request.param
    run = write_planted_run(tmp_path_factory.mktemp("planted") / "run", freqs=freqs, p=p)
    table = analyze(run)
    summary = json.loads((run.path / files.SUMMARY).read_text())
    final = table[table["epoch"] == run.epochs[-1]]

    def value(measure: str, key: str = "") -> float:
        rows = final[(final["measure"] == measure) & (final["key"] == key)]
        assert len(rows) == 1, (measure, key)
        return float(rows["value"].iloc[0])

    return run, freqs, summary, value


def test_planted_model_solves_the_task(planted):
    """The reference: the TransformerLens model on all p^2 pairs, outside the analysis."""
    run, _, _, value = planted
    model = run.model_at(run.epochs[-1])
    data = run.dataset
    with torch.no_grad():
        logits = model(data.tokens)[:, -1].double()  # (p^2, p)
    loss = torch.nn.functional.cross_entropy(logits, data.labels).item()
    assert (logits.argmax(-1) == data.labels).all()
    assert loss < SMALL_LOSS
    # the table's split losses and accuracies agree with it
    n_train, n = len(data.train_idx), len(data.labels)
    table_loss = (n_train * value("train_loss") + (n - n_train) * value("test_loss")) / n
    assert table_loss == pytest.approx(loss, rel=1e-2)
    assert value("train_acc") == value("test_acc") == 1.0


def test_analyze_finds_exactly_the_planted_frequencies(planted):
    _, freqs, summary, value = planted
    assert summary["key_frequencies"] == list(freqs)
    neurons = summary["neurons"]
    # neurons come in blocks of N_PHASES^2 per frequency, in the order of freqs
    expected_owner = [k for k in freqs for _ in range(N_PHASES**2)]
    assert neurons["best_freq"] == expected_owner
    assert neurons["owner"] == expected_owner
    assert neurons["per_freq"] == {str(k): N_PHASES**2 for k in freqs}
    # the harmonics 2k, 3k, ... hold the rest: ~4%, clear of the 0.85 threshold
    assert min(neurons["frac_explained"]) > 0.95
    assert value("n_key_freqs") == len(freqs)


def test_restricted_and_excluded_losses(planted):
    run, freqs, summary, value = planted
    # the key frequencies carry the whole answer: restricting to them costs nothing ...
    for split in ("all", "train", "test"):
        assert value("restricted_loss", split) < SMALL_LOSS
    assert summary["final"]["restricted_loss"] == value("restricted_loss", "all")
    # ... and removing them leaves no more than chance (log p) on the training pairs
    assert value("excluded_loss", "all") > math.log(run.config.p)
    assert value("logit_explained_var", "all") > 0.95
    # each frequency alone explains an equal share of the logits
    shares = [value("logit_explained_var", str(k)) for k in freqs]
    assert shares == pytest.approx([shares[0]] * len(freqs), rel=1e-3)


# ------------------------------------------------- mul: sliders and ablations, discrete log

MUL_P, MUL_FREQS = 23, (3, 8, 11)  # Z_22: 11 is the Nyquist frequency
MUL_PHASES = 8  # M = 8: the harmonics left in the read-out are the 7th and 9th, far below 1%


@pytest.fixture(scope="module")
def planted_mul(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted_mul") / "run"
    run = write_planted_run(out, MUL_FREQS, MUL_PHASES, math.pi / 4, p=MUL_P, operation="mul")
    analyze(run)
    return run


def test_planted_mul_sliders_show_its_frequencies_in_the_log_basis(planted_mul, monkeypatch):
    from grokinterp.analysis.frames import read_frames
    from grokinterp.figures import export, write_figures

    run = planted_mul
    frames = read_frames(run)
    assert frames.basis == "discrete log to g=5 (Z_22)" and frames.n == MUL_P - 1
    assert frames.epochs == tuple(run.epochs) and frames.key_freqs == MUL_FREQS
    last = frames.frame(run.epochs[-1])
    spectrum = frames.embed_freq_norm[last]  # (n//2 + 1,): constant, then k = 1 .. 11
    assert spectrum.shape == (MUL_P // 2 + 1,)
    others = [k for k in range(len(spectrum)) if k not in MUL_FREQS]
    assert spectrum[list(MUL_FREQS)].min() > 1e3 * spectrum[others].max()
    assert set(frames.best_freq[last]) == set(MUL_FREQS)
    profile = frames.logit_profile[last]  # (n,): d = (log a + log b - log c) mod 22
    assert profile.shape == (MUL_P - 1,) and profile.argmax() == 0
    monkeypatch.setattr(export, "find_browser", lambda: None)
    write_figures(run.path, formats=("html",))
    report = (run.path / files.FIGURES_DIR / files.REPORT).read_text()
    for name in ("embedding_spectrum", "neuron_clusters", "attention", "logit_profile"):
        assert f"id='scrub_{name}'" in report
    assert "(log a + log b" in report and "(Z_22) basis" in report


def test_planted_mul_ablations_remove_exactly_its_frequencies(planted_mul):
    from grokinterp import ablation
    from grokinterp.tasks import get_task

    run = planted_mul
    table = ablation.ablation_table(run, freqs=[1, 3, 5], sets=[MUL_FREQS])
    assert table["freqs"].tolist()[-1] == "3,8,11" and len(table) == 1 + 4 * 3
    wide = ablation.ablation_wide(table, "loss")
    assert (wide.loc["3,8,11"] > wide.loc["none"]).all()
    # on the basis pairs (a, b != 0), where the circuit lives
    model, data, p = run.model_at(run.epochs[-1]), run.dataset, MUL_P
    pairs = get_task("mul").basis(p).pairs
    labels = data.labels[pairs]

    def loss(where: str, freqs) -> float:
        logits = ablation.ablated_logits(model, p, where, freqs, "mul")[pairs].double()
        return torch.nn.functional.cross_entropy(logits, labels).item()

    base = loss("logits", ())
    assert base < 1e-4
    for where in ablation.WHERE:
        assert loss(where, MUL_FREQS) > math.log(p - 1), where  # chance among p - 1 answers
        for other in (2, 4):  # neither a key frequency nor a low harmonic of one
            assert abs(loss(where, [other]) - base) < 0.01 * base, (where, other)
