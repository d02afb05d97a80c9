"""Run.cache_at and the frequency ablations: known answers on a tiny trained run."""

import pytest
import torch

from grokinterp import ablation
from grokinterp.config import OptionError
from grokinterp.data import all_pairs, make_tokens
from grokinterp.fourier import fourier_2d, fourier_basis, freq_group_mask_2d
from grokinterp.measures.losses import cross_entropy, excluded_logits, sum_index


@pytest.fixture(scope="module")
def final(tiny_run):
    epoch = tiny_run.epochs[-1]
    return tiny_run, epoch, tiny_run.model_at(epoch)


def test_cache_at_matches_the_model_and_has_the_hooks(final):
    run, epoch, model = final
    p = run.config.p
    logits, cache = run.cache_at(epoch)
    a, b = all_pairs(p)
    assert logits.shape == (p * p, 3, p)
    torch.testing.assert_close(logits, model(make_tokens(a, b, p)), rtol=0, atol=0)
    assert cache["hook_embed"].shape == (p * p, 3, run.config.d_model)
    assert cache["blocks.0.attn.hook_pattern"].shape == (p * p, run.config.n_heads, 3, 3)
    assert cache["blocks.0.mlp.hook_post"].shape == (p * p, 3, run.config.d_mlp)
    # the embedding of token a at position 0 is its W_E row
    torch.testing.assert_close(cache["hook_embed"][:, 0], model.W_E.detach()[a])
    only, small = run.cache_at(epoch, names_filter="blocks.0.mlp.hook_post")
    assert "blocks.0.mlp.hook_post" in small and "hook_embed" not in small
    torch.testing.assert_close(only, logits)


@pytest.mark.parametrize("where", ablation.WHERE)
def test_removing_nothing_is_the_plain_loss(final, where):
    run, _, model = final
    p = run.config.p
    with torch.no_grad():
        plain = model(run.dataset.tokens)[:, -1]
    got = ablation.ablate(model, run.dataset, where, [])
    assert got["loss"] == pytest.approx(float(cross_entropy(plain, run.dataset.labels)), rel=1e-12)
    idx = run.dataset.test_idx
    assert got["test_loss"] == pytest.approx(
        float(cross_entropy(plain[idx], run.dataset.labels[idx])), rel=1e-12
    )
    assert ablation.ablation_hooks(model, p, where, []) == []


def test_removing_a_frequency_the_embedding_lacks_changes_nothing(final):
    run, epoch, _ = final
    model = run.model_at(epoch)  # edited below: not the shared one
    p, k = run.config.p, 2
    basis = fourier_basis(p)
    with torch.no_grad():
        W_E = model.W_E  # a view of the parameter
        W_E[:p] = ablation.remove_freqs_1d(W_E[:p].double(), basis, [k]).float()
    base = ablation.ablate(model, run.dataset, "embed", [])
    same = ablation.ablate(model, run.dataset, "embed", [k])
    other = ablation.ablate(model, run.dataset, "embed", [1])
    assert same["loss"] == pytest.approx(base["loss"], rel=1e-5)
    assert same["acc"] == base["acc"]
    assert abs(other["loss"] - base["loss"]) > 1e-3  # a frequency it uses does matter


def test_removing_every_frequency_from_the_embedding_leaves_the_constant(final):
    run, epoch, model = final
    p = run.config.p
    everything = list(range(1, (p - 1) // 2 + 1))
    hooks = ablation.ablation_hooks(model, p, "embed", everything)
    seen = {}

    def keep(act, hook):
        seen["embed"] = act.detach().clone()

    with model.hooks(fwd_hooks=[*hooks, ("hook_embed", keep)]):
        model(run.dataset.tokens)
    W_E = model.W_E.detach()
    mean = W_E[:p].mean(0)  # the constant component of each embedding dimension
    torch.testing.assert_close(seen["embed"][:, 0], mean.expand(p * p, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(seen["embed"][:, 1], mean.expand(p * p, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(seen["embed"][:, 2], W_E[p].expand(p * p, -1))  # '=' untouched
    # with a and b indistinguishable, every input gets the same logits
    logits = ablation.ablated_logits(model, p, "embed", everything)
    torch.testing.assert_close(logits, logits[:1].expand_as(logits), atol=1e-5, rtol=0)


def test_logit_ablation_is_the_excluded_logits(final):
    run, _, model = final
    p = run.config.p
    freqs = [1, 3]
    plain = model(run.dataset.tokens)[:, -1]
    want = excluded_logits(plain, sum_index(p), fourier_basis(p), freqs)
    got = ablation.ablated_logits(model, p, "logits", freqs)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    scores = ablation.ablate_logits(model, run.dataset, freqs)
    idx = run.dataset.train_idx
    excluded_loss = float(cross_entropy(want[idx], run.dataset.labels[idx]))
    assert scores["train_loss"] == pytest.approx(excluded_loss, rel=1e-4)


def test_neuron_ablation_moves_the_logits_by_the_removed_activations(final):
    """The MLP is the last nonlinearity: logits change by (removed activations) @ W_out W_U."""
    run, epoch, model = final
    p = run.config.p
    freqs = [2, 4]
    _, cache = run.cache_at(epoch, names_filter="blocks.0.mlp.hook_post")
    post = cache["blocks.0.mlp.hook_post"][:, -1]  # (p^2, d_mlp)
    kept = ablation.remove_freqs_2d(post, fourier_basis(p), freqs)
    W_L = model.W_out.detach()[0] @ model.W_U.detach()  # (d_mlp, p)
    plain = model(run.dataset.tokens)[:, -1]
    want = plain - (post - kept) @ W_L
    got = ablation.ablated_logits(model, p, "neurons", freqs)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - plain).abs().max() > 1e-3  # the neurons do carry these frequencies


def test_projections_are_idempotent_and_remove_exactly_their_terms():
    p = 11
    basis = fourier_basis(p)
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(p, 5, generator=gen, dtype=torch.float64)
    once = ablation.remove_freqs_1d(x1, basis, [1, 4])
    torch.testing.assert_close(ablation.remove_freqs_1d(once, basis, [1, 4]), once)
    comps = basis.matrix @ once  # (p, 5)
    assert comps[basis.rows_of([1, 4])].abs().max() < 1e-12
    kept = basis.rows_of([2, 3, 5])
    torch.testing.assert_close(comps[kept], (basis.matrix @ x1)[kept])
    x2 = torch.randn(p * p, 3, generator=gen, dtype=torch.float64)
    once2 = ablation.remove_freqs_2d(x2, basis, [3])
    torch.testing.assert_close(ablation.remove_freqs_2d(once2, basis, [3]), once2)
    before = fourier_2d(x2.T.unflatten(-1, (p, p)), basis)
    after = fourier_2d(once2.T.unflatten(-1, (p, p)), basis)
    mask = freq_group_mask_2d(p)[3]
    assert after[:, mask].abs().max() < 1e-12
    torch.testing.assert_close(after[:, ~mask], before[:, ~mask])


def test_ablation_table_rows(final):
    run, epoch, _ = final
    table = ablation.ablation_table(run, epoch, freqs=[1, 2], sets=[[1, 2]])
    assert table["where"].tolist() == ["baseline"] + list(ablation.WHERE) * 3
    assert table["freqs"].tolist() == [""] + ["1"] * 3 + ["2"] * 3 + ["1,2"] * 3
    assert table["n_freqs"].tolist() == [0] + [1] * 6 + [2] * 3
    assert (table["epoch"] == epoch).all()
    assert table["delta_loss"].iloc[0] == 0
    wide = ablation.ablation_wide(table, "test_loss")
    assert wide.index.tolist() == ["none", "1", "2", "1,2"]
    assert wide.columns.tolist() == list(ablation.WHERE)
    assert wide.loc["none", "embed"] == table["test_loss"].iloc[0]
    assert wide.loc["2", "logits"] == table["test_loss"].iloc[6]
    model = run.model_at(epoch)
    row = table[(table["where"] == "neurons") & (table["freqs"] == "2")].iloc[0]
    assert row["test_loss"] == pytest.approx(
        ablation.ablate_neurons(model, run.dataset, [2])["test_loss"], rel=1e-9
    )


def test_bad_ablation_requests_say_what_to_change(final):
    run, _, model = final
    p = run.config.p
    with pytest.raises(OptionError, match="where must be one of"):
        ablation.ablation_hooks(model, p, "attention", [1])
    with pytest.raises(OptionError, match="not in 1 .. "):
        ablation.ablation_hooks(model, p, "embed", [p])
    hooks = ablation.ablation_hooks(model, p, "neurons", [1])
    with pytest.raises(OptionError, match="all p\\^2"):
        model.run_with_hooks(run.dataset.tokens[:5], fwd_hooks=hooks)
