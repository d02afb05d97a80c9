"""The task registry (grokinterp.tasks): labels, valid pairs, the discrete-log basis, and the
basis-aware measures on planted circuits in that basis (known answers, tiny p)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _planted import N_PHASES, write_planted_run

from grokinterp import files, train
from grokinterp.analysis import ANALYSES, analyze
from grokinterp.analysis.checkpoints import Checkpoints
from grokinterp.config import ConfigError, OptionError, RunConfig
from grokinterp.data import make_dataset
from grokinterp.forward import LastPosition
from grokinterp.tasks import (
    RAND_TABLE_SEED,
    TASKS,
    discrete_log_table,
    get_task,
    primitive_root,
    rand_table,
)
from tests.conftest import tiny_config

BRUTE = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: next(c for c in range(p) if (c * b) % p == a),
    "x2xyy2": lambda a, b, p: (a * a + a * b + b * b) % p,
    "x3xy": lambda a, b, p: (a**3 + a * b) % p,
}


@pytest.mark.parametrize("p", [7, 11, 13])
@pytest.mark.parametrize("op", sorted(BRUTE))
def test_labels_against_brute_force(op, p):
    ds = make_dataset(RunConfig(p=p, operation=op))
    a, b = ds.tokens[:, 0].tolist(), ds.tokens[:, 1].tolist()
    valid = set(ds.valid_idx.tolist())
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert i == x * p + y
        if op == "div" and y == 0:
            assert i not in valid
            continue
        assert i in valid
        assert int(ds.labels[i]) == BRUTE[op](x, y, p), (op, x, y)


@pytest.mark.parametrize("p", [7, 13])
def test_div_leaves_out_b_zero_and_splits_the_valid_pairs(p):
    cfg = RunConfig(p=p, operation="div", frac_train=0.4)
    ds = make_dataset(cfg)
    assert cfg.n_pairs == p * (p - 1) and cfg.n_train == int(0.4 * p * (p - 1))
    assert len(ds.train_idx) == cfg.n_train
    assert len(ds.train_idx) + len(ds.test_idx) == p * (p - 1)
    assert not set(ds.train_idx.tolist()) & set(ds.test_idx.tolist())
    assert all(i % p != 0 for i in ds.valid_idx.tolist())  # b = i % p never 0
    assert torch.equal(make_dataset(cfg, train_idx=ds.train_idx).test_idx, ds.test_idx)
    # the other tasks keep all p^2 pairs and today's split
    add = make_dataset(RunConfig(p=p, frac_train=0.4))
    assert len(add.valid_idx) == p * p


def test_config_counts_the_valid_pairs():
    # p=3: add has 9 pairs (0.12 * 9 = 1 training pair), div has 6 (0.12 * 6 = 0): refused
    assert RunConfig(p=3, frac_train=0.12).n_train == 1
    with pytest.raises(ConfigError, match=r"RunConfig\.frac_train.*6 valid pairs of 'div'"):
        RunConfig(p=3, operation="div", frac_train=0.12)
    with pytest.raises(ConfigError, match=r"RunConfig\.operation must be one of .*'rand'"):
        RunConfig(operation="pow")
    with pytest.raises(ConfigError, match=r"RunConfig\.operation 'div' needs a prime p"):
        RunConfig(p=9, operation="div")
    for op in ("x2xyy2", "x3xy", "rand"):  # no group needed: any odd p
        assert RunConfig(p=9, operation=op).operation == op
    # an old config.json (no new fields) still loads, its operation unchanged
    assert RunConfig.from_dict({"p": 7, "operation": "mul"}) == RunConfig(p=7, operation="mul")


def test_rand_table_is_fixed_and_a_function_of_p_only():
    torch.manual_seed(0)
    first = rand_table(11).clone()
    rand_table.cache_clear()
    torch.manual_seed(1)
    again = rand_table(11)
    assert torch.equal(first, again)  # same p: same table, whatever the global RNG
    expected = torch.randint(
        11, (11, 11), generator=torch.Generator().manual_seed(RAND_TABLE_SEED + 11)
    )
    assert torch.equal(first, expected)  # the documented seed
    assert not torch.equal(rand_table(13)[:11, :11], first)
    assert first.min() >= 0 and first.max() < 11
    ds = make_dataset(RunConfig(p=11, operation="rand", data_seed=3))
    assert torch.equal(ds.labels, first.flatten())
    ds2 = make_dataset(RunConfig(p=11, operation="rand", data_seed=4))
    assert torch.equal(ds2.labels, ds.labels)  # the data seed moves the split only


@pytest.mark.parametrize("p", [3, 7, 11, 13, 23, 113])
def test_discrete_log(p):
    g = primitive_root(p)
    powers = [pow(g, k, p) for k in range(p - 1)]
    assert sorted(powers) == list(range(1, p))  # g generates Z_p^*
    smaller = [h for h in range(2, g) if len({pow(h, k, p) for k in range(p - 1)}) == p - 1]
    assert not smaller  # the smallest primitive root
    log = discrete_log_table(p)
    assert log[0] == -1
    assert sorted(log[1:].tolist()) == list(range(p - 1))  # bijection 1..p-1 <-> 0..p-2
    assert all(pow(g, int(log[a]), p) == a for a in range(1, p))


def test_known_primitive_roots():
    assert [primitive_root(p) for p in (7, 11, 13, 23, 113)] == [3, 2, 2, 5, 3]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_basis_coordinates_carry_the_labels(op):
    """On every basis pair, the answer is the residue at s = x + sign * y in Z_n."""
    p = 13
    basis = get_task(op).basis(p)
    labels = make_dataset(RunConfig(p=p, operation=op)).labels
    on_pairs = basis.on_pairs(labels[:, None])[:, 0]
    assert torch.equal(basis.residue[basis.s], on_pairs)
    assert basis.n == (p if op in ("add", "sub") else p - 1)
    if op in ("mul", "div"):  # the pairs with a, b != 0, in (log a, log b) order
        log = discrete_log_table(p)
        a, b = basis.pairs // p, basis.pairs % p
        assert (a > 0).all() and (b > 0).all()
        n = p - 1
        assert torch.equal(log[a] * n + log[b], torch.arange(n * n))


def test_tasks_without_basis_state_a_reason():
    for op in ("x2xyy2", "x3xy", "rand"):
        task = TASKS[op]
        assert task.basis(11) is None and task.no_basis_reason.startswith("no Fourier basis")


# ------------------------------------------------------------- planted circuits, log basis


def _synthetic_checkpoint(op: str, p: int, freqs, amp: float = 3.0, noise: float = 5.0):
    """A one-checkpoint chunk whose logits and neurons are an exact Fourier circuit in the
    discrete-log basis, and noise on the pairs outside it (a = 0 or b = 0).

    logits[a, b, c] = amp * sum_k cos(w_k (log a + sign log b - log c)) for a, b, c != 0,
    logit 0 for c = 0; neuron j (one per key frequency, plus one mixed neuron) is
    cos(w_k (log a + sign log b)) + 0.5 cos(w_k log a).
    """
    cfg = RunConfig(p=p, operation=op, d_mlp=len(freqs) + 1)
    basis = get_task(op).basis(p)
    n, log = p - 1, discrete_log_table(p).double()
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    la, lb = log[a][:, None], log[b][:, None]  # (p^2, 1)
    gen = torch.Generator().manual_seed(0)
    logits = torch.zeros(p * p, p, dtype=torch.float64)
    post = torch.zeros(p * p, len(freqs) + 1, dtype=torch.float64)
    for j, k in enumerate(freqs):
        w = 2 * math.pi * k / n
        logits[:, 1:] += amp * torch.cos(w * (la + basis.sign * lb - log[1:][None, :]))
        post[:, j] = (torch.cos(w * (la + basis.sign * lb)) + 0.5 * torch.cos(w * la))[:, 0]
    w0, w1 = (2 * math.pi * k / n for k in freqs[:2])
    post[:, -1] = (torch.cos(w0 * (la + lb)) + torch.cos(w1 * lb))[:, 0]  # 50/50: unowned
    outside = (a == 0) | (b == 0)
    logits[outside] = noise * torch.randn(int(outside.sum()), p, generator=gen, dtype=torch.float64)
    post[outside] = noise * torch.randn(
        int(outside.sum()), post.shape[1], generator=gen, dtype=torch.float64
    )
    pattern = torch.full((1, p * p, 1, 3), 1 / 3)
    fwd = LastPosition(logits=logits[None].float(), post=post[None].float(), pattern=pattern)
    data = make_dataset(cfg)
    ck = Checkpoints(cfg, data, [0], {}, freqs, 0.85, forward=fwd)
    ck.__dict__["logits64"] = logits[None]  # exact float64 logits for the loss checks
    return ck, logits, basis


@pytest.mark.parametrize(
    ("op", "p", "freqs"), [("mul", 13, (2, 6)), ("div", 11, (1, 5)), ("mul", 11, (3, 2))]
)
def test_planted_log_basis_measures_exact(op, p, freqs):
    """Known answers: the key frequencies, restricted loss = the logits' own loss on the
    basis pairs, excluded loss = log p (uniform), logit variance 1 with shares |u_k|^2
    (twice as large for the Nyquist frequency n/2)."""
    ck, logits, basis = _synthetic_checkpoint(op, p, freqs)
    n = p - 1

    def rows(name):
        return {k: float(v[0]) for k, v in ANALYSES[name].compute(ck).items()}

    counts = rows("neurons_per_freq")
    assert [k for k in range(1, n // 2 + 1) if counts[str(k)] > 0] == sorted(freqs)
    assert all(counts[str(k)] == 1 for k in freqs)
    fractions, best, best_frac, owner = ck.neurons
    assert owner[0].tolist() == [*freqs, 0]
    torch.testing.assert_close(best_frac[0, :-1], torch.ones(len(freqs), dtype=torch.float64))
    # restricted logits = the logits on the basis pairs (they are pure key-frequency terms)
    data = ck.dataset
    own = torch.nn.functional.cross_entropy(logits[basis.pairs], data.labels[basis.pairs])
    restricted = rows("restricted_loss")
    assert restricted["all"] == pytest.approx(own.item(), rel=1e-9)
    train = [i for i in data.train_idx.tolist() if i % p and i // p]
    own_train = torch.nn.functional.cross_entropy(logits[train], data.labels[train])
    assert restricted["train"] == pytest.approx(own_train.item(), rel=1e-9)
    # excluded: nothing left but the class-0 column (0): uniform over all p classes
    excluded = rows("excluded_loss")
    assert excluded["all"] == pytest.approx(math.log(p), rel=1e-9)
    explained = rows("logit_explained_var")
    assert explained["all"] == pytest.approx(1.0, rel=1e-9)
    weight = {k: (2.0 if 2 * k == n else 1.0) for k in freqs}
    for k in freqs:
        assert explained[str(k)] == pytest.approx(weight[k] / sum(weight.values()), rel=1e-9)


@pytest.fixture(scope="module")
def planted_mul(tmp_path_factory):
    """The model-level circuit of tests/_planted.py in the discrete-log basis of p = 23 (Z_22):
    frequencies 3, 8 and the Nyquist frequency 11."""
    out = tmp_path_factory.mktemp("planted_mul") / "run"
    run = write_planted_run(out, freqs=(3, 8, 11), p=23, operation="mul", phase_offset=math.pi / 4)
    table = analyze(run)
    return run, table, json.loads((run.path / files.SUMMARY).read_text())


def test_planted_mul_model_end_to_end(planted_mul):
    run, table, summary = planted_mul
    freqs = [3, 8, 11]
    assert summary["basis"] == "discrete log to g=5 (Z_22)"
    assert summary["key_frequencies"] == freqs
    assert summary["neurons"]["owner"] == [k for k in freqs for _ in range(N_PHASES**2)]
    assert min(summary["neurons"]["frac_explained"]) > 0.95
    final = table[table["epoch"] == run.epochs[-1]]

    def value(measure, key=""):
        return float(final[(final["measure"] == measure) & (final["key"] == key)]["value"].iloc[0])

    # the model solves the basis pairs; restricting to the key frequencies keeps that ...
    model, data = run.model_at(run.epochs[-1]), run.dataset
    basis = get_task("mul").basis(23)
    with torch.no_grad():
        logits = model(data.tokens)[:, -1].double()[basis.pairs]
    labels = data.labels[basis.pairs]
    assert (logits.argmax(-1) == labels).all()
    own = torch.nn.functional.cross_entropy(logits, labels).item()  # ~0.01: the harmonics
    assert value("restricted_loss", "all") < min(own, 0.005)  # they are removed
    # ... and removing them leaves no more than chance among the p - 1 nonzero answers
    assert value("excluded_loss", "all") > math.log(22)
    assert value("logit_explained_var", "all") > 0.95
    assert value("n_key_freqs") == 3
    assert set(summary["skipped_measures"]) == set()


@pytest.mark.parametrize("op", ["rand", "x3xy"])
def test_analysis_without_basis_skips_the_basis_measures(op, tmp_path):
    cfg = tiny_config(p=7, operation=op, d_model=16, d_head=8, d_mlp=16, epochs=20)
    cfg = cfg.replace(checkpoints="every:10")
    run = train(cfg, tmp_path / op)
    table = analyze(run)
    summary = json.loads((run.path / files.SUMMARY).read_text())
    basis_measures = {n for n, a in ANALYSES.items() if a.needs_basis}
    assert basis_measures >= {"neurons_per_freq", "restricted_loss", "excluded_loss"}
    assert set(summary["skipped_measures"]) == basis_measures
    assert all(r == TASKS[op].no_basis_reason for r in summary["skipped_measures"].values())
    assert summary["basis"] is None and summary["key_frequencies"] == []
    assert summary["neurons"] is None
    measured = set(table["measure"])
    assert not measured & basis_measures
    assert measured >= {
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "attn_to",
        "weight_norm_sq",
    }
    assert summary["phases"]["T_mem"] is not None  # phases still run
    with pytest.raises(OptionError, match="key_freqs cannot be given"):
        analyze(run, key_freqs=[1])
