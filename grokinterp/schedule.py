"""Checkpoint schedules, where a run ends, and the seeded random stream of each epoch.

A schedule is a short string, stored in the run config:

- ``default``: 100 log-spaced epochs through the first 1,000 (epoch 0 included), then
  every 50 epochs.
- ``every:N``: every N epochs.
- ``log:N``: N log-spaced epochs over the whole run.
- ``list:E1,E2,...``: exactly these epochs.
- several joined with ``+`` (for example ``log:50+every:500``): their union.

Epoch 0 (the initialisation) and the final epoch are always included, so every run has a
checkpoint to start from and one to analyse.  A run with ``stop_after_grok = N`` ends
early, N epochs after T_grok (:func:`end_epoch`), with a checkpoint at that last epoch;
``stop_after_grok_delays = F`` makes it run on at least F x (T_grok - T_mem) epochs after
T_grok, so a slow run is not cut before its cleanup ends (docs/phases.md).

Sweeps default to :data:`SWEEP_SCHEDULE`, about 80 checkpoints for a 10k-epoch run instead
of about 300: dense through memorisation, then evenly spaced.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from grokinterp.errors import ConfigError
from grokinterp.phases import ACC_THRESHOLD

DEFAULT_SCHEDULE = "default"
SWEEP_SCHEDULE = "log:40+every:250"
GROK_ACC = ACC_THRESHOLD  # the test accuracy that defines T_grok while training


def _log_spaced(n: int, last: int) -> set[int]:
    if last <= 0:
        return {0}
    points = np.unique(np.round(np.geomspace(1, last, num=max(n, 1))).astype(int))
    return {0, *map(int, points)}


def _one(part: str, epochs: int) -> set[int]:
    kind, _, arg = part.partition(":")
    try:
        if kind == "default" and not arg:
            first = min(1000, epochs)
            return _log_spaced(100, first) | set(range(0, epochs + 1, 50))
        if kind == "every":
            step = int(arg)
            if step <= 0:
                raise ValueError
            return set(range(0, epochs + 1, step))
        if kind == "log":
            return _log_spaced(int(arg), epochs)
        if kind == "list":
            listed = {int(x) for x in arg.split(",") if x.strip()}
            bad = sorted(e for e in listed if not 0 <= e <= epochs)
            if bad:
                raise ValueError(f"epochs {bad} outside [0, {epochs}]")
            return listed
    except ValueError as err:
        detail = f" ({err})" if str(err) else ""
        raise ValueError(f"bad checkpoint schedule part {part!r}{detail}") from None
    raise ValueError(f"bad checkpoint schedule part {part!r}")


def checkpoint_epochs(spec: str, epochs: int) -> list[int]:
    """Sorted epochs at which a checkpoint is saved, for a run of ``epochs`` epochs."""
    try:
        chosen = set().union(*(_one(part.strip(), epochs) for part in spec.split("+")))
    except ValueError as err:
        raise ConfigError(
            f"RunConfig.checkpoints: {err}; allowed: 'default', 'every:N', 'log:N', "
            f"'list:E1,E2,...', or several joined with '+'"
        ) from None
    return sorted(chosen | {0, epochs})


def _first_at_least(rows: list[dict], column: str) -> int | None:
    for row in rows:
        acc = row.get(column)
        if acc is not None and acc >= GROK_ACC:
            return int(row["epoch"])
    return None


def first_grok_epoch(rows: list[dict]) -> int | None:
    """T_grok of logged metrics rows: the first eval epoch with test_acc >= GROK_ACC."""
    return _first_at_least(rows, "test_acc")


def first_mem_epoch(rows: list[dict]) -> int | None:
    """T_mem of logged metrics rows: the first eval epoch with train_acc >= GROK_ACC."""
    return _first_at_least(rows, "train_acc")


def end_epoch(
    stop_after_grok: int,
    epochs: int,
    t_grok: int | None,
    *,
    delays: float = 0.0,
    t_mem: int | None = None,
) -> int:
    """The last epoch of a run: ``epochs`` (the cap), or earlier once the run has grokked.

    With ``stop_after_grok = N`` the run ends N epochs after T_grok; with ``delays = F``
    it ends ``ceil(F * (T_grok - T_mem))`` epochs after T_grok (T_mem taken as 0 if not
    reached); with both, at the later of the two.  Both 0 means no early stop.

    >>> end_epoch(1000, 25000, 8000, delays=1.0, t_mem=100)
    15900
    >>> end_epoch(1000, 12000, 8000, delays=1.0, t_mem=100)
    12000
    """
    if (stop_after_grok <= 0 and delays <= 0) or t_grok is None:
        return epochs
    after = max(stop_after_grok, 0)
    if delays > 0:
        after = max(after, math.ceil(delays * max(t_grok - (t_mem or 0), 0)))
    return min(t_grok + after, epochs)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch, stream) through numpy's SeedSequence.

    Minibatch orders use (data_seed, epoch), dropout masks (init_seed, epoch): both are
    functions of the epoch alone, so resuming at any epoch draws the same numbers.
    """
    (state,) = np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state))
