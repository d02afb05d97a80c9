"""Scrubbing through training: one-checkpoint pictures at up to ~60 epochs of a run.

The frames are a product of ``grokinterp analyze`` (:mod:`grokinterp.analysis.frames`,
stored in ``RUN/frames.npz``, in the task's basis); this module is the notebooks' door to
them: :func:`scrub_data` measures them at any epochs of a run through the same pipeline,
and :func:`plateau_epoch` picks a checkpoint in the middle of the plateau.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from grokinterp import files
from grokinterp.analysis.checkpoints import DEFAULT_CHUNK
from grokinterp.analysis.frames import (
    MAX_FRAMES,
    Frames,
    frame_epochs,
    frames_from_arrays,
    measure_frames,
    phase_anchors,
)
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.run import Run
from grokinterp.storage import RunFileError, read_json

__all__ = [
    "MAX_FRAMES",
    "ScrubData",
    "phase_anchors",
    "plateau_epoch",
    "scrub_data",
    "scrub_epochs",
]

log = logging.getLogger(__name__)

ScrubData = Frames  # the slider figures' data (the name the notebooks use)
scrub_epochs = frame_epochs


def _read_summary(run: Run) -> dict:
    path = run.path / files.SUMMARY
    if not path.is_file():
        return {}
    try:
        return read_json(path)
    except RunFileError as err:
        log.warning("ignoring %s: %s", path, err)
        return {}


def scrub_data(
    run: Run,
    max_frames: int = MAX_FRAMES,
    epochs: Sequence[int] | None = None,
    threshold: float = NEURON_THRESHOLD,
    chunk_size: int = DEFAULT_CHUNK,
) -> Frames:
    """The slider figures' data for a run at :func:`scrub_epochs` (or the given ``epochs``),
    measured by :func:`grokinterp.analysis.frames.measure_frames`."""
    summary = _read_summary(run)
    if epochs is None:
        epochs = frame_epochs(run.epochs, max_frames, list(phase_anchors(summary).values()))
    epochs = sorted(int(e) for e in epochs)
    if not epochs:
        raise RunFileError(f"{run.path}: no checkpoints to scrub through")
    arrays = measure_frames(run, epochs, threshold, chunk_size)
    return frames_from_arrays(run, epochs, arrays, summary, threshold)


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
