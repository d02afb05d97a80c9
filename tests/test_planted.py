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
