"""Computing table rows: registered measures over chunks of checkpoints (the batched path),
for one model through TransformerLens hooks (the reference), and one checkpoint's arrays
for figures."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.analysis import mechanisms  # noqa: F401  (registers its measures)
from grokinterp.analysis.checkpoints import DEFAULT_CHUNK, Checkpoints
from grokinterp.analysis.registry import (
    ANALYSES,
    chunk_embed_components,
    chunk_wl_components,
    default_measures,
    skip_reason,
)
from grokinterp.analysis.table import frame, sorted_rows
from grokinterp.batched import hooked_last_position, stack_states
from grokinterp.config import RunConfig
from grokinterp.data import Dataset
from grokinterp.measures import attention_to_a_map, key_frequencies, neurons_per_freq
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.measures.llc import LLCSettings
from grokinterp.run import Run, load_run


def _rows(ck: Checkpoints, names: Iterable[str], only: dict[str, set[int]] | None = None) -> list:
    """Run the named analyses on a chunk -> list of (epochs, measure, keys, values) blocks."""
    blocks = []
    for name in names:
        analysis = ANALYSES[name]
        if skip_reason(analysis, ck) is not None:  # recorded in summary.json by analyze
            continue
        wanted = np.array([only is None or e in only.get(name, ()) for e in ck.epochs], dtype=bool)
        if not wanted.any():
            continue
        epochs = np.asarray(ck.epochs)[wanted]
        part = ck
        if analysis.costly and not wanted.all():  # compute it at the asked checkpoints only
            part = _subset(ck, wanted)
            wanted = np.ones(len(epochs), dtype=bool)
        for key, values in analysis.compute(part).items():
            v = values.detach().double().cpu().numpy()[wanted]
            blocks.append((epochs, name, key, v))
    return blocks


def _subset(ck: Checkpoints, wanted: np.ndarray) -> Checkpoints:
    """The chunk's checkpoints where ``wanted`` (its forward pass recomputed if read)."""
    idx = torch.from_numpy(np.flatnonzero(wanted))
    states = {k: v[idx] for k, v in ck.states.items()}
    epochs = [e for e, w in zip(ck.epochs, wanted, strict=True) if w]
    return Checkpoints(ck.cfg, ck.dataset, epochs, states, ck.key_freqs, ck.threshold, llc=ck.llc)


def measure_batched(
    run: Run,
    epochs: Sequence[int],
    *,
    key_freqs: Sequence[int] = (),
    threshold: float = NEURON_THRESHOLD,
    measures: Sequence[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    only: dict[str, set[int]] | None = None,
    progress: Callable[[int], None] | None = None,
    llc: LLCSettings | None = None,
) -> pd.DataFrame:
    """Rows of the named measures at ``epochs`` of a run, ``chunk_size`` checkpoints at a time.

    ``only`` restricts each measure to some epochs ({measure: epochs}); ``progress`` is
    called with the number of checkpoints done after each chunk.
    """
    names = default_measures() if measures is None else list(measures)
    blocks = []
    for start in range(0, len(epochs), chunk_size):
        chunk = list(epochs[start : start + chunk_size])
        states = stack_states([run.state_dict_at(e) for e in chunk])
        ck = Checkpoints(run.config, run.dataset, chunk, states, key_freqs, threshold, llc=llc)
        blocks += _rows(ck, names, only)
        del ck
        if progress is not None:
            progress(len(chunk))
    return sorted_rows(frame(blocks))


def measure_hooked(
    model: TransformerBridge,
    cfg: RunConfig,
    dataset: Dataset,
    epoch: int,
    key_freqs: Sequence[int],
    threshold: float = NEURON_THRESHOLD,
    measures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The same rows for one model, from TransformerLens: ``run_with_cache`` activations and
    the ``W_E``, ``W_out``, ``W_U`` properties (the straightforward reference path)."""
    names = default_measures() if measures is None else list(measures)
    states = {k: v.detach()[None] for k, v in model.state_dict().items()}
    weights = {"W_E": model.W_E[None], "W_out": model.W_out[0][None], "W_U": model.W_U[None]}
    weights = {k: v.detach() for k, v in weights.items()}
    ck = Checkpoints(
        cfg,
        dataset,
        [epoch],
        states,
        key_freqs,
        threshold,
        forward=hooked_last_position(model, cfg.p),
        weights=weights,
    )
    return sorted_rows(frame(_rows(ck, names)))


def final_checkpoint(run: Run, epoch: int, threshold: float) -> Checkpoints:
    states = stack_states([run.state_dict_at(epoch)])
    return Checkpoints(run.config, run.dataset, [epoch], states, (), threshold)


def checkpoint_detail(
    run: Run | str | Path, epoch: int | None = None, threshold: float = NEURON_THRESHOLD
) -> dict:
    """Single-checkpoint arrays for figures (default: the latest checkpoint).

    Returns numpy arrays: ``attention_to_a`` (n_heads, p, p) [h, a, b]; ``fractions``
    (d_mlp, (p+1)/2) each neuron's variance fraction per frequency; ``best_freq``,
    ``frac_explained`` (d_mlp,) (NaN for dead neurons); ``embed_components`` and
    ``wl_components`` (p,) in basis order, with ``basis_labels``; and ``key_freqs``.
    """
    run = run if isinstance(run, Run) else load_run(run)
    epoch = run.epochs[-1] if epoch is None else epoch
    ck = final_checkpoint(run, epoch, threshold)
    out = {
        "epoch": epoch,
        "attention_to_a": attention_to_a_map(ck.forward.pattern, run.config.p)[0].numpy(),
        "threshold": threshold,
        "basis": None if ck.task_basis is None else ck.task_basis.name,
    }
    if ck.task_basis is None:  # no Fourier basis: the basis arrays are absent (None)
        keys = ("fractions", "best_freq", "frac_explained", "embed_components")
        keys += ("wl_components", "basis_labels")
        return {**out, **dict.fromkeys(keys), "key_freqs": []}
    fractions, best, best_frac, owner = ck.neurons
    return {
        **out,
        "fractions": fractions[0].numpy(),
        "best_freq": best[0].numpy(),
        "frac_explained": best_frac[0].numpy(),
        "embed_components": chunk_embed_components(ck)[0].numpy(),
        "wl_components": chunk_wl_components(ck)[0].numpy(),
        "basis_labels": list(ck.basis.labels),
        "key_freqs": key_frequencies(neurons_per_freq(owner[0], ck.task_basis.n)),
    }
