"""Scrubbing through training: one-checkpoint pictures at up to ~60 epochs of a run.

:func:`scrub_epochs` picks the frames from the run's checkpoint schedule: the first and
last checkpoints, the checkpoints nearest the phase boundaries of ``summary.json`` (when the
run has been analysed), and the rest spread over training.  :func:`scrub_data` computes,
for each chosen epoch, what the slider figures of :mod:`grokinterp.plots.sliders` draw:

- the embedding's Fourier spectrum: norm of ``F @ W_E[:p]`` per frequency
  (:func:`grokinterp.measures.embedding_components`, grouped by frequency);
- the neuron clusters: each MLP neuron's best frequency and the fraction of its variance
  that frequency's 2-D terms explain (:mod:`grokinterp.measures.keyfreq`);
- each head's attention from '=' to a over all inputs (a, b);
- the logit structure: the mean centred logit against d = (a + b - c) mod p (as
  :func:`grokinterp.circuit.logits_along_sum`), which a Fourier circuit makes a sum of
  cos(w_k d) peaking at d = 0.

Checkpoints go through the batched last-position forward (:mod:`grokinterp.batched`) in
chunks; the tests check every frame against the per-checkpoint computation.  The measures
are defined in docs/measures.md, the phases in docs/phases.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from grokinterp import files
from grokinterp.batched import last_position, stack_states
from grokinterp.fourier import fourier_basis, freq_norms
from grokinterp.measures import (
    accuracy,
    assign_neurons,
    attention_to_a_map,
    cross_entropy,
    embedding_components,
    key_frequencies,
    neuron_freq_fractions,
    neurons_per_freq,
)
from grokinterp.run import Run
from grokinterp.storage import RunFileError, read_json

__all__ = [
    "MAX_FRAMES",
    "ScrubData",
    "logits_along_sum_batched",
    "phase_anchors",
    "plateau_epoch",
    "scrub_data",
    "scrub_epochs",
]

log = logging.getLogger(__name__)

MAX_FRAMES = 60
SCRUB_CHUNK = 8  # checkpoints per batched forward: ~0.6 GB at p=113, d_mlp=512
ANCHOR_PHASES = ("T_mem", "memorisation_end", "circuit_formation_end", "T_grok", "cleanup_end")


def phase_anchors(summary: dict) -> dict[str, int]:
    """The phase-boundary epochs a summary (``summary.json``) found: {name: epoch}."""
    phases = summary.get("phases", {}) if isinstance(summary, dict) else {}
    out = {}
    for name in ANCHOR_PHASES:
        epoch = (phases.get(name) or {}).get("epoch")
        if epoch is not None:
            out[name] = int(epoch)
    return out


def scrub_epochs(
    epochs: Sequence[int], max_frames: int = MAX_FRAMES, anchors: Sequence[int] = ()
) -> list[int]:
    """At most ``max_frames`` of ``epochs`` (checkpoint epochs), spread over training.

    Always the first and the last, then the checkpoint nearest each anchor (e.g. phase
    boundaries), then the rest chosen one by one farthest from those already chosen on the
    scale sqrt(epoch - first): denser early, where the default schedule is log-spaced and
    memorisation happens, and still every ~2-3% of training late on (a 25,000-epoch run
    with 60 frames: a frame at least every ~850 epochs).
    """
    avail = np.unique(np.asarray(list(epochs), dtype=np.int64))
    if avail.size == 0:
        raise RunFileError("no checkpoints to scrub through")
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2 (first and last), got {max_frames}")
    if avail.size <= max_frames:
        return avail.tolist()
    first, last = int(avail[0]), int(avail[-1])
    chosen = {first, last}
    for anchor in anchors:
        if len(chosen) >= max_frames:
            break
        chosen.add(int(avail[np.argmin(np.abs(avail - anchor))]))
    u = np.sqrt(avail - first)  # the spreading scale
    picked = np.isin(avail, list(chosen))
    dist = np.min(np.abs(u[:, None] - u[picked][None, :]), axis=1)
    while picked.sum() < max_frames:
        i = int(np.argmax(np.where(picked, -1.0, dist)))
        picked[i] = True
        dist = np.minimum(dist, np.abs(u - u[i]))
    return avail[picked].tolist()


def logits_along_sum_batched(logits: torch.Tensor, p: int) -> torch.Tensor:
    """Mean centred logit against d = (a + b - c) mod p: (C, p^2, p) -> (C, p) float64.

    Per checkpoint, equal to :func:`grokinterp.circuit.logits_along_sum` on the (p, p, p)
    logits (tested).
    """
    x = logits.double()
    centred = x - x.mean(-1, keepdim=True)  # (C, p^2, p)
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    c = torch.arange(p)
    d = ((a + b)[:, None] - c[None, :]) % p  # (p^2, p)
    out = x.new_zeros(x.shape[0], p)
    return out.index_add_(1, d.flatten(), centred.flatten(1)) / p**2


@dataclass(frozen=True)
class ScrubData:
    """What the slider figures draw, one row per frame (E frames, ``epochs``).

    embed_freq_norm: (E, (p+1)/2) norm of F @ W_E[:p] per frequency, column 0 the constant.
    best_freq: (E, d_mlp) int, each neuron's best frequency (0 for dead neurons).
    frac_explained: (E, d_mlp) that frequency's fraction of the neuron's variance (NaN: dead).
    attention_to_a: (E, n_heads, p, p) [e, h, a, b] attention from '=' to a.
    logit_profile: (E, p) mean centred logit against d = (a + b - c) mod p.
    train_loss, test_loss, test_acc: (E,) at each frame, for the frame titles.
    key_freqs: the run's key frequencies (summary.json, else the last frame's clusters).
    anchors: {phase boundary: frame epoch nearest to it}.
    """

    p: int
    epochs: tuple[int, ...]
    key_freqs: tuple[int, ...]
    threshold: float
    anchors: dict[str, int]
    embed_freq_norm: np.ndarray
    best_freq: np.ndarray
    frac_explained: np.ndarray
    attention_to_a: np.ndarray
    logit_profile: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray

    def frame(self, epoch: int) -> int:
        """Index of the frame at ``epoch``."""
        try:
            return self.epochs.index(int(epoch))
        except ValueError:
            raise KeyError(f"epoch {epoch} is not a frame; frames: {list(self.epochs)}") from None


def _read_summary(run: Run) -> dict:
    path = run.path / files.SUMMARY
    if not path.is_file():
        return {}
    try:
        return read_json(path)
    except RunFileError as err:
        log.warning("ignoring %s: %s", path, err)
        return {}


@torch.no_grad()
def scrub_data(
    run: Run,
    max_frames: int = MAX_FRAMES,
    epochs: Sequence[int] | None = None,
    threshold: float = 0.85,
    chunk_size: int = SCRUB_CHUNK,
) -> ScrubData:
    """The slider figures' data for a run at :func:`scrub_epochs` (or the given ``epochs``)."""
    cfg, p = run.config, run.config.p
    summary = _read_summary(run)
    boundaries = phase_anchors(summary)
    if epochs is None:
        epochs = scrub_epochs(run.epochs, max_frames, list(boundaries.values()))
    epochs = sorted(int(e) for e in epochs)
    if not epochs:
        raise RunFileError(f"{run.path}: no checkpoints to scrub through")
    basis = fourier_basis(p)
    data, parts = run.dataset, []
    for start in range(0, len(epochs), chunk_size):
        chunk = epochs[start : start + chunk_size]
        states = stack_states([run.state_dict_at(e) for e in chunk])
        fwd = last_position(states, cfg)
        fractions = neuron_freq_fractions(fwd.post, p)  # (C, d_mlp, K+1)
        best, best_frac, _ = assign_neurons(fractions, threshold)
        logits, labels = fwd.logits, data.labels
        parts.append(
            {
                "embed_freq_norm": freq_norms(embedding_components(states["embed.weight"], basis)),
                "best_freq": best,
                "frac_explained": best_frac,
                "attention_to_a": attention_to_a_map(fwd.pattern, p),
                "logit_profile": logits_along_sum_batched(logits, p),
                "train_loss": cross_entropy(logits[:, data.train_idx], labels[data.train_idx]),
                "test_loss": cross_entropy(logits[:, data.test_idx], labels[data.test_idx]),
                "test_acc": accuracy(logits[:, data.test_idx], labels[data.test_idx]),
            }
        )
        log.info("scrub: %d of %d frames", start + len(chunk), len(epochs))
    arrays = {k: torch.cat([part[k] for part in parts]).numpy() for k in parts[0]}
    key_freqs = summary.get("key_frequencies")
    if key_freqs is None:
        owner = torch.where(
            torch.as_tensor(arrays["frac_explained"][-1]) >= threshold,
            torch.as_tensor(arrays["best_freq"][-1]),
            0,
        )
        key_freqs = key_frequencies(neurons_per_freq(owner, p))
    frames = np.asarray(epochs)
    anchors = {name: int(frames[np.argmin(np.abs(frames - e))]) for name, e in boundaries.items()}
    return ScrubData(
        p=p,
        epochs=tuple(epochs),
        key_freqs=tuple(int(k) for k in key_freqs),
        threshold=threshold,
        anchors=anchors,
        **arrays,
    )


def plateau_epoch(epochs: Sequence[int], summary: dict) -> int:
    """A checkpoint in the middle of the plateau: between memorisation and grokking.

    The checkpoint nearest the midpoint of [memorisation_end (else T_mem), circuit
    formation end (else T_grok)] from a summary; the middle checkpoint when the summary
    has neither boundary.
    """
    avail = np.unique(np.asarray(list(epochs), dtype=np.int64))
    if avail.size == 0:
        raise RunFileError("no checkpoints to choose from")
    found = phase_anchors(summary)
    start = found.get("memorisation_end", found.get("T_mem"))
    end = found.get("circuit_formation_end", found.get("T_grok"))
    if start is None or end is None or end <= start:
        return int(avail[avail.size // 2])
    return int(avail[np.argmin(np.abs(avail - (start + end) / 2))])
