"""Frequency ablations through TransformerLens hooks: take frequencies out, measure the loss.

Frequencies are those of the task's basis (:mod:`grokinterp.tasks`, docs/tasks.md): Z_p
for add and sub, Z_{p-1} over discrete logs for mul and div (x = log a, so a residue's
group coordinate, not the residue, is what cos(w_k x) reads).  A frequency k of Z_n
(``w_k = 2 pi k / n``) is the pair of directions cos(w_k x), sin(w_k x) of the Fourier
basis (:mod:`grokinterp.fourier`).  Removing a set of frequencies at one of three places
shows what the model needs them for (Nanda et al. 2023, sections 4-5):

``embed``    the token embeddings: W_E's rows of the group's residues (in group order) are
             projected off the span of the frequencies' cos/sin rows of F, so token a
             enters the residual stream without them (hook ``hook_embed``, positions
             holding a number; '=' and, for the discrete log, 0 are untouched);
``neurons``  the MLP activations at '=': each neuron, a function of the pair (x, y) of
             group coordinates, loses its 2-D Fourier terms of each frequency (the 8
             terms of :func:`grokinterp.fourier.freq_group_mask_2d`), keeping its mean
             and every other term (hook ``blocks.0.mlp.hook_post``, last position);
``logits``   the logits at '=': their projection on cos/sin(w_k s), s = x + y (x - y for
             sub and div), is removed, as in
             :func:`grokinterp.measures.losses.excluded_logits` (hook ``hook_unembed``,
             last position).  The excluded loss is this ablation's train loss.

The neuron and logit ablations act on the basis pairs (all p^2 for Z_p; a, b != 0 for the
discrete log) and leave the other pairs as they are.  Every ablation runs the model on all
p^2 inputs [a, b, '='] in the order i = a*p + b and reports float64 cross-entropy and
accuracy at '=' on the valid pairs, the train and the test pairs.  A task with no basis
has no frequencies to ablate: the error says why.  The measures are defined in
docs/measures.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.config import OptionError
from grokinterp.data import Dataset, all_pairs, make_tokens
from grokinterp.fourier import FourierBasis, fourier_2d, freq_group_mask_2d
from grokinterp.measures.losses import accuracy, cross_entropy, excluded_logits
from grokinterp.run import Run
from grokinterp.tasks import TASKS, TaskBasis, get_task, is_prime

__all__ = [
    "WHERE",
    "ablate",
    "ablate_embedding",
    "ablate_logits",
    "ablate_neurons",
    "ablated_logits",
    "ablation_hooks",
    "ablation_table",
    "ablation_wide",
    "remove_freqs_1d",
    "remove_freqs_2d",
    "scores",
]

WHERE = ("embed", "neurons", "logits")
EMBED_HOOK = "hook_embed"
NEURON_HOOK = "blocks.0.mlp.hook_post"
LOGIT_HOOK = "hook_unembed"

Hook = tuple[str, Callable[..., torch.Tensor]]


def task_basis(operation: str, p: int) -> TaskBasis:
    """The basis the ablations of a task use; OptionError with the reason for a task that
    has none."""
    task = get_task(operation)
    basis = task.basis(p)
    if basis is None:
        raise OptionError(
            f"no frequency ablations for operation {operation!r}: {task.no_basis_reason}"
        )
    return basis


def _check_freqs(freqs: Iterable[int], basis: TaskBasis) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in freqs}))
    bad = [k for k in out if not 1 <= k <= basis.n_freqs]
    if bad:
        raise OptionError(
            f"frequencies {bad} are not in 1 .. {basis.n_freqs} for p={basis.p} "
            f"(basis {basis.name})"
        )
    return out


def remove_freqs_1d(x: torch.Tensor, basis: FourierBasis, freqs: Sequence[int]) -> torch.Tensor:
    """x minus its projection on the cos/sin rows of ``freqs``, along the first axis.

    x: (p, ...) a function of one residue (e.g. W_E[:p], (p, d_model)) -> same shape and
    dtype.  An orthogonal projection: applying it twice equals applying it once.
    """
    if not freqs:
        return x.clone()
    f = basis.matrix[basis.rows_of(list(freqs))].to(x.dtype)  # (2K, p)
    return x - torch.einsum("rt,ru,u...->t...", f, f, x)


def remove_freqs_2d(x: torch.Tensor, basis: FourierBasis, freqs: Sequence[int]) -> torch.Tensor:
    """Functions of (a, b) without the 2-D Fourier terms of ``freqs``.

    x: (p^2, n), n functions of the pair i = a*p + b (e.g. neuron activations at '='),
    with p = ``basis.p`` (for the discrete log: the (p-1)^2 basis pairs in group
    coordinates).  Removes, per column, the 8 terms of each frequency (cos/sin of a or b
    alone, and the 4 products); the constant and every other frequency's terms stay.  Same
    shape and dtype.
    """
    if not freqs:
        return x.clone()
    p = basis.p
    mask = freq_group_mask_2d(p)[list(freqs)].any(0)  # (p, p) terms to remove
    grid = x.double().T.unflatten(-1, (p, p))  # (n, p_a, p_b)
    coef = fourier_2d(grid, basis) * mask  # (n, p, p): only the removed terms
    f = basis.matrix
    removed = torch.einsum("ia,nij,jb->nab", f, coef, f)  # back on the (a, b) grid
    return (grid - removed).flatten(1).T.to(x.dtype)


def ablation_hooks(
    model: TransformerBridge, p: int, where: str, freqs: Sequence[int], operation: str = "add"
) -> list[Hook]:
    """The forward hooks that remove ``freqs`` of the task's basis at ``where`` (see the
    module docstring).

    The hooks assume the batch is all p^2 inputs [a, b, '='] in the order i = a*p + b;
    they raise if it is not.  No frequencies: no hooks.
    """
    if where not in WHERE:
        raise OptionError(f"where must be one of {WHERE}, got {where!r}")
    group = task_basis(operation, p)
    freqs = _check_freqs(freqs, group)
    if not freqs:
        return []
    basis = group.fourier
    rows = group.residue  # (n,) the residue at each group coordinate
    pairs = torch.arange(p * p) if group.pairs is None else group.pairs  # (n^2,) grid indices

    def check(act: torch.Tensor) -> None:
        if act.shape[0] != p * p:
            raise OptionError(
                f"frequency ablations run on all p^2 = {p * p} inputs in order a*p + b; "
                f"got a batch of {act.shape[0]}"
            )

    if where == "embed":
        W_E = model.W_E.detach()[rows]  # (n, d_model): row z is the residue at coordinate z
        removed = torch.zeros_like(model.W_E.detach()[:p])  # (p, d): 0 outside the group
        removed[rows] = W_E - remove_freqs_1d(W_E.double(), basis, freqs).to(W_E.dtype)
        a, b = all_pairs(p)

        def embed_hook(act: torch.Tensor, hook=None) -> torch.Tensor:
            check(act)  # (p^2, 3, d_model): positions a, b, '='
            act = act.clone()
            act[:, 0] -= removed[a]
            act[:, 1] -= removed[b]
            return act

        return [(EMBED_HOOK, embed_hook)]

    if where == "neurons":

        def neuron_hook(act: torch.Tensor, hook=None) -> torch.Tensor:
            check(act)  # (p^2, 3, d_mlp)
            act = act.clone()
            act[pairs, -1] = remove_freqs_2d(act[pairs, -1], basis, freqs)
            return act

        return [(NEURON_HOOK, neuron_hook)]

    s = group.s  # (n^2,) each basis pair's s in group coordinates

    def logit_hook(act: torch.Tensor, hook=None) -> torch.Tensor:
        check(act)  # (p^2, 3, p)
        act = act.clone()
        act[pairs, -1] = excluded_logits(act[pairs, -1], s, basis, freqs).to(act.dtype)
        return act

    return [(LOGIT_HOOK, logit_hook)]


@torch.no_grad()
def ablated_logits(
    model: TransformerBridge, p: int, where: str, freqs: Sequence[int], operation: str = "add"
) -> torch.Tensor:
    """Logits at '=' on all p^2 inputs with ``freqs`` removed at ``where``: (p^2, p)."""
    a, b = all_pairs(p)
    tokens = make_tokens(a, b, p)  # (p^2, 3)
    hooks = ablation_hooks(model, p, where, freqs, operation)
    return model.run_with_hooks(tokens, fwd_hooks=hooks)[:, -1]


def scores(logits: torch.Tensor, dataset: Dataset) -> dict[str, float]:
    """Float64 cross-entropy and accuracy of last-position logits (p^2, p) on the valid
    pairs (loss, acc) and on each split.

    Keys: loss, train_loss, test_loss, acc, train_acc, test_acc.
    """
    labels = dataset.labels
    out = {}
    valid = dataset.valid_idx
    everything = None if len(valid) == len(labels) else valid  # div: b = 0 is no pair
    for split, idx in (
        ("", everything),
        ("train_", dataset.train_idx),
        ("test_", dataset.test_idx),
    ):
        x, y = (logits, labels) if idx is None else (logits[idx], labels[idx])
        out[f"{split}loss"] = float(cross_entropy(x, y))
        out[f"{split}acc"] = float(accuracy(x, y))
    return {k: out[k] for k in ("loss", "train_loss", "test_loss", "acc", "train_acc", "test_acc")}


def task_of(dataset: Dataset, p: int) -> str:
    """The task with a Fourier basis whose answers are the dataset's labels (on its valid
    pairs); OptionError when there is none."""
    a, b = all_pairs(p)
    valid = dataset.valid_idx
    for name, task in TASKS.items():
        if task.basis_kind is None or task.n_valid(p) != len(valid):
            continue
        if task.needs_prime and not is_prime(p):
            continue
        if torch.equal(task.label(a, b, p)[valid], dataset.labels[valid]):
            return name
    raise OptionError(
        "frequency ablations describe a Fourier algorithm in a task's basis; this dataset's "
        "labels are those of no task with a basis (add, sub, mul, div; docs/tasks.md)"
    )


def ablate(
    model: TransformerBridge,
    dataset: Dataset,
    where: str,
    freqs: Sequence[int],
    operation: str | None = None,
) -> dict[str, float]:
    """Losses and accuracies (:func:`scores`) with ``freqs`` of the task's basis removed at
    ``where``.  operation: the run's task (default: the one whose labels the dataset has)."""
    p = model.cfg.d_vocab_out
    operation = task_of(dataset, p) if operation is None else operation
    return scores(ablated_logits(model, p, where, freqs, operation), dataset)


def ablate_embedding(model: TransformerBridge, dataset: Dataset, freqs: Sequence[int]) -> dict:
    """:func:`ablate` at the embeddings: W_E[:p] without the frequencies' cos/sin rows."""
    return ablate(model, dataset, "embed", freqs)


def ablate_neurons(model: TransformerBridge, dataset: Dataset, freqs: Sequence[int]) -> dict:
    """:func:`ablate` at the MLP neurons at '=': each loses its 2-D terms of ``freqs``."""
    return ablate(model, dataset, "neurons", freqs)


def ablate_logits(model: TransformerBridge, dataset: Dataset, freqs: Sequence[int]) -> dict:
    """:func:`ablate` at the logits: their projection on cos/sin(w_k(a+b)) removed."""
    return ablate(model, dataset, "logits", freqs)


def ablation_table(
    run: Run,
    epoch: int | None = None,
    freqs: Iterable[int] | None = None,
    sets: Iterable[Iterable[int]] = (),
    where: Sequence[str] = WHERE,
) -> pd.DataFrame:
    """One checkpoint's per-frequency ablations as a tidy table.

    One row per (frequency, place): each frequency in ``freqs`` (default: every frequency
    of the task's basis, 1 .. (p-1)/2 for Z_p, 1 .. (p-1)/2 of Z_{p-1} for mul and div)
    removed on its own at each place in ``where``, then each set in ``sets``
    (e.g. the key frequencies) removed together, and a first ``baseline`` row with nothing
    removed.  Columns: epoch, where ('baseline' or a place), freqs (e.g. '14' or
    '14,35,41'; '' for the baseline), n_freqs, then the :func:`scores` columns, and
    delta_loss / delta_test_loss (ablated minus baseline).  ``epoch`` defaults to the last.
    """
    operation = run.config.operation
    group = task_basis(operation, run.config.p)
    epoch = run.epochs[-1] if epoch is None else epoch
    singles = range(1, group.n_freqs + 1) if freqs is None else freqs
    groups = [(k,) for k in _check_freqs(singles, group)]
    groups += [_check_freqs(s, group) for s in sets]
    for w in where:
        if w not in WHERE:
            raise OptionError(f"where must list places from {WHERE}, got {w!r}")
    model = run.model_at(epoch)
    dataset = run.dataset
    rows = [{"where": "baseline", "freqs": (), **ablate(model, dataset, "logits", (), operation)}]
    for ks in groups:
        for w in where:
            rows.append({"where": w, "freqs": ks, **ablate(model, dataset, w, ks, operation)})
    table = pd.DataFrame(rows)
    table.insert(0, "epoch", epoch)
    table.insert(3, "n_freqs", table["freqs"].map(len))
    table["freqs"] = table["freqs"].map(lambda g: ",".join(map(str, g)))
    table["delta_loss"] = table["loss"] - table["loss"].iloc[0]
    table["delta_test_loss"] = table["test_loss"] - table["test_loss"].iloc[0]
    return table


def ablation_wide(table: pd.DataFrame, value: str = "test_loss") -> pd.DataFrame:
    """An :func:`ablation_table` as one row per frequency set and one column per place.

    ``value``: a column of the table (e.g. test_loss, loss, test_acc).  The baseline's
    value is the first row, labelled 'none'.
    """
    if value not in table.columns:
        raise OptionError(f"value must be a column of the ablation table, got {value!r}")
    base = table[table["where"] == "baseline"]
    rest = table[table["where"] != "baseline"]
    places = [w for w in WHERE if w in set(rest["where"])] or list(WHERE)
    wide = rest.pivot(index="freqs", columns="where", values=value)
    wide = wide.reindex(index=list(dict.fromkeys(rest["freqs"])), columns=places)
    if len(base):
        top = pd.DataFrame({w: [base[value].iloc[0]] for w in wide.columns}, index=["none"])
        wide = pd.concat([top, wide])
    wide.index.name = "removed"
    return wide
