"""The epoch-slider frames: one-checkpoint arrays at up to :data:`MAX_FRAMES` checkpoints.

``analyze`` computes them with the same chunked forward pass as the table
(:class:`~grokinterp.analysis.checkpoints.Checkpoints`), in the task's basis, and stores
them beside the table in ``frames.npz``; the slider figures of
:mod:`grokinterp.plots.sliders` only read them (:func:`read_frames`).  A task without a
Fourier basis has no frames (summary.json says why).

:func:`frame_epochs` picks the frames from the run's checkpoint schedule: the first and
last checkpoints, the checkpoints nearest the phase boundaries of the summary, and the
rest spread over training.  For each frame, :func:`frame_arrays` gives:

- the embedding's Fourier spectrum: norm of the Fourier components of W_E's token rows
  per frequency (the table's ``embed_freq_norm``);
- the neuron clusters: each MLP neuron's best frequency and the fraction of its variance
  that frequency's 2-D terms explain (:mod:`grokinterp.measures.keyfreq`);
- each head's attention from '=' to a over all inputs (a, b);
- the logit structure: the mean centred logit against d = (s - z) mod n
  (:func:`grokinterp.measures.logits_along_sum`), which a Fourier circuit makes a sum of
  cos(w_k d) peaking at d = 0;
- train loss, test loss and test accuracy, for the frame titles.

The measures are defined in docs/measures.md, the phases in docs/phases.md.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grokinterp import files
from grokinterp.analysis.checkpoints import DEFAULT_CHUNK, Checkpoints
from grokinterp.analysis.fingerprint import code_fingerprint
from grokinterp.analysis.registry import chunk_embed_components
from grokinterp.batched import stack_states
from grokinterp.fourier import freq_norms
from grokinterp.measures import (
    attention_to_a_map,
    key_frequencies,
    logits_along_sum,
    neurons_per_freq,
)
from grokinterp.run import Run
from grokinterp.storage import RunFileError, atomic_write_bytes, read_json
from grokinterp.tasks import TaskBasis, get_task

__all__ = [
    "ANCHOR_PHASES",
    "MAX_FRAMES",
    "Frames",
    "frame_arrays",
    "frame_epochs",
    "frames_fingerprint",
    "frames_from_arrays",
    "measure_frames",
    "phase_anchors",
    "profile_label",
    "read_frames",
    "write_frames",
]

log = logging.getLogger(__name__)

MAX_FRAMES = 60
ANCHOR_PHASES = ("T_mem", "memorisation_end", "circuit_formation_end", "T_grok", "cleanup_end")
FRAMES_FORMAT = "grokinterp-frames-v1"
ARRAYS = (
    "embed_freq_norm",
    "best_freq",
    "frac_explained",
    "attention_to_a",
    "logit_profile",
    "train_loss",
    "test_loss",
    "test_acc",
)


def phase_anchors(summary: Mapping) -> dict[str, int]:
    """The phase-boundary epochs a summary (``summary.json``) found: {name: epoch}."""
    phases = summary.get("phases", {}) if isinstance(summary, Mapping) else {}
    out = {}
    for name in ANCHOR_PHASES:
        epoch = (phases.get(name) or {}).get("epoch")
        if epoch is not None:
            out[name] = int(epoch)
    return out


def frame_epochs(
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


def profile_label(operation: str) -> str:
    """What the logit profile's d is for a task, e.g. '(a + b − c) mod p'."""
    task = get_task(operation)
    op = "+" if task.sign > 0 else "−"
    if task.basis_kind == "log":
        return f"(log a {op} log b − log c) mod (p − 1)"
    return f"(a {op} b − c) mod p"


def frame_arrays(ck: Checkpoints) -> dict[str, torch.Tensor]:
    """The frames' arrays of a chunk of C checkpoints, in the task's basis (n its size):
    embed_freq_norm (C, n//2 + 1), best_freq and frac_explained (C, d_mlp),
    attention_to_a (C, H, p, p), logit_profile (C, n), train_loss, test_loss, test_acc (C,).
    """
    basis: TaskBasis = ck.task_basis
    _, best, best_frac, _ = ck.neurons
    logits = ck.basis_logits  # (C, n^2, p)
    if basis.pairs is not None:  # the classes in group coordinates (class 0 left out)
        logits = logits[..., basis.residue]
    train, test = ck.dataset.train_idx, ck.dataset.test_idx
    return {
        "embed_freq_norm": freq_norms(chunk_embed_components(ck).double()),
        "best_freq": best,
        "frac_explained": best_frac,
        "attention_to_a": attention_to_a_map(ck.forward.pattern, ck.cfg.p),
        "logit_profile": logits_along_sum(logits, basis.s, basis.n),
        "train_loss": ck.pair_losses[:, train].mean(-1),
        "test_loss": ck.pair_losses[:, test].mean(-1),
        "test_acc": ck.pair_correct[:, test].mean(-1),
    }


def frames_fingerprint() -> str:
    """Hash of the code of :func:`frame_arrays` (and what it reaches): stored frames are
    reused only while it is unchanged."""
    return code_fingerprint(frame_arrays, context=(Checkpoints,), always=(Checkpoints.__init__,))


@torch.no_grad()
def measure_frames(
    run: Run, epochs: Sequence[int], threshold: float, chunk_size: int = DEFAULT_CHUNK
) -> dict[str, np.ndarray]:
    """:func:`frame_arrays` at ``epochs`` of a run, ``chunk_size`` checkpoints at a time."""
    if get_task(run.config.operation).basis(run.config.p) is None:
        raise RunFileError(
            f"{run.path}: no slider frames for operation {run.config.operation!r}: "
            f"{get_task(run.config.operation).no_basis_reason}"
        )
    parts = []
    for start in range(0, len(epochs), chunk_size):
        chunk = list(epochs[start : start + chunk_size])
        states = stack_states([run.state_dict_at(e) for e in chunk])
        ck = Checkpoints(run.config, run.dataset, chunk, states, (), threshold)
        parts.append({k: v.detach().cpu() for k, v in frame_arrays(ck).items()})
        log.info("frames: %d of %d", start + len(chunk), len(epochs))
    return {k: torch.cat([part[k] for part in parts]).numpy() for k in ARRAYS}


@dataclass(frozen=True)
class Frames:
    """What the slider figures draw, one row per frame (E frames, ``epochs``).

    embed_freq_norm: (E, n//2 + 1) norm of W_E's Fourier components per frequency, column
    0 the constant, in the task's basis (Z_p, or Z_{p-1} by discrete log: n = p - 1).
    best_freq: (E, d_mlp) int, each neuron's best frequency (0 for dead neurons).
    frac_explained: (E, d_mlp) that frequency's fraction of the neuron's variance (NaN: dead).
    attention_to_a: (E, n_heads, p, p) [e, h, a, b] attention from '=' to a.
    logit_profile: (E, n) mean centred logit against d (:attr:`profile_label`).
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
    basis: str = "Z_p"
    n: int = field(default=0)
    profile_label: str = "(a + b − c) mod p"

    def __post_init__(self):
        if not self.n:
            object.__setattr__(self, "n", self.logit_profile.shape[-1])

    def frame(self, epoch: int) -> int:
        """Index of the frame at ``epoch``."""
        try:
            return self.epochs.index(int(epoch))
        except ValueError:
            raise KeyError(f"epoch {epoch} is not a frame; frames: {list(self.epochs)}") from None


def frames_from_arrays(
    run: Run, epochs: Sequence[int], arrays: Mapping[str, np.ndarray], summary: Mapping, threshold
) -> Frames:
    """A :class:`Frames` of measured arrays, with the key frequencies and phase anchors of a
    summary (the key frequencies of the last frame's clusters when it has none)."""
    basis = get_task(run.config.operation).basis(run.config.p)
    key_freqs = summary.get("key_frequencies")
    if key_freqs is None:
        last = torch.as_tensor(arrays["frac_explained"][-1])
        owner = torch.where(last >= threshold, torch.as_tensor(arrays["best_freq"][-1]), 0)
        key_freqs = key_frequencies(neurons_per_freq(owner, basis.n))
    frames = np.asarray(epochs)
    anchors = {
        name: int(frames[np.argmin(np.abs(frames - e))])
        for name, e in phase_anchors(summary).items()
    }
    return Frames(
        p=run.config.p,
        epochs=tuple(int(e) for e in epochs),
        key_freqs=tuple(int(k) for k in key_freqs),
        threshold=float(threshold),
        anchors=anchors,
        basis=basis.name,
        n=basis.n,
        profile_label=profile_label(run.config.operation),
        **{k: np.asarray(arrays[k]) for k in ARRAYS},
    )


# ---------------------------------------------------------------------------- the file


def _load(path: Path) -> tuple[dict, dict[str, np.ndarray]] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {k: npz[k] for k in ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        log.warning("ignoring %s: %s", path, err)
        return None
    if meta.get("format") != FRAMES_FORMAT:
        return None
    return meta, arrays


def write_frames(
    run: Run,
    summary: Mapping,
    threshold: float,
    chunk_size: int = DEFAULT_CHUNK,
    max_frames: int = MAX_FRAMES,
) -> Path | None:
    """Measure the frames of an analysed run and write ``RUN/frames.npz``; None (and no
    file) for a task without a basis.

    The frames are :func:`frame_epochs` with the summary's phase boundaries as anchors.
    Frames already stored with the same code, config and threshold are reused.
    """
    path = run.path / files.FRAMES
    if get_task(run.config.operation).basis(run.config.p) is None:
        path.unlink(missing_ok=True)
        return None
    epochs = frame_epochs(run.epochs, max_frames, list(phase_anchors(summary).values()))
    meta = {
        "format": FRAMES_FORMAT,
        "config": run.config.to_dict(),
        "threshold": threshold,
        "fingerprint": frames_fingerprint(),
    }
    stored = _load(path) if path.is_file() else None
    have: dict[int, int] = {}
    if stored is not None and all(stored[0].get(k) == v for k, v in meta.items()):
        have = {int(e): i for i, e in enumerate(stored[0]["epochs"])}
    todo = [e for e in epochs if e not in have]
    new = measure_frames(run, todo, threshold, chunk_size) if todo else {}
    arrays = {}
    for k in ARRAYS:
        rows = []
        for e in epochs:
            if e in have:
                rows.append(stored[1][k][have[e]])
            else:
                rows.append(new[k][todo.index(e)])
        arrays[k] = np.stack(rows)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps({**meta, "epochs": epochs})), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_frames(run: Run) -> Frames:
    """The stored frames of an analysed run (``RUN/frames.npz``).

    RunFileError naming the fix when there are none: a task without a basis, or a run
    analysed before frames were stored.
    """
    task = get_task(run.config.operation)
    if task.basis(run.config.p) is None:
        raise RunFileError(
            f"no epoch-slider frames for operation {run.config.operation!r}: {task.no_basis_reason}"
        )
    path = run.path / files.FRAMES
    stored = _load(path) if path.is_file() else None
    if stored is None:
        raise RunFileError(
            f"{path}: no epoch-slider frames; run 'grokinterp analyze {run.path}' to write them"
        )
    meta, arrays = stored
    summary = read_json(run.path / files.SUMMARY) if (run.path / files.SUMMARY).is_file() else {}
    return frames_from_arrays(run, meta["epochs"], arrays, summary, meta["threshold"])
