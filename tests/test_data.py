import torch

from grokinterp.config import RunConfig
from grokinterp.data import all_pairs, apply_operation, make_dataset, split_indices


def test_default_split_sizes():
    ds = make_dataset(RunConfig())
    assert ds.train_idx.numel() == 3830 and ds.test_idx.numel() == 12769 - 3830
    union = torch.cat([ds.train_idx, ds.test_idx]).sort().values
    assert torch.equal(union, torch.arange(12769))


def test_tokens_and_labels():
    p = 7
    a, b = all_pairs(p)
    assert torch.equal(a * p + b, torch.arange(p * p))
    cfg = RunConfig(p=p)
    ds = make_dataset(cfg)
    assert torch.equal(ds.tokens[:, 2], torch.full((p * p,), p))
    assert torch.equal(ds.labels, (ds.tokens[:, 0] + ds.tokens[:, 1]) % p)
    assert apply_operation("sub", torch.tensor([2]), torch.tensor([5]), p).item() == 4
    assert apply_operation("mul", torch.tensor([3]), torch.tensor([5]), p).item() == 1


def test_split_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = split_indices(31, 0.3, seed=5)
    after = torch.rand(1)
    assert torch.equal(before, after)
    again = split_indices(31, 0.3, seed=5)
    other = split_indices(31, 0.3, seed=6)
    assert torch.equal(first[0], again[0])
    assert not torch.equal(first[0], other[0])


def test_stored_split_reproduces_dataset():
    cfg = RunConfig(p=13)
    ds = make_dataset(cfg)
    again = make_dataset(cfg, train_idx=ds.train_idx)
    assert torch.equal(again.test_idx, ds.test_idx)
