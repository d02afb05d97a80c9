"""Training many mlp runs as one stacked model: the batched path of a sweep (docs/mlp.md).

Runs of the ``mlp`` family that share every shape (the same :func:`stack_key`: data set,
p, width, epochs, schedule...) and differ only in :data:`STACKED_FIELDS` (lr, weight
decay, betas, seeds) are trained together: their parameters, AdamW moments and data are
stacked on a leading run axis R, and each epoch is one batched forward and backward pass
(``torch.matmul`` over R) instead of R small ones.  On a CPU a small mlp's step is
dominated by per-operation overhead, which the stack pays once for all R runs.

Each run's directory is written exactly as :func:`grokinterp.models.train.train_toy`
writes it (config.json, data.json, metrics.csv, checkpoints, the AdamW moments), so it
loads, analyses and resumes as a single run; its numbers equal the single run's to float
rounding (the tests check it).  A run leaves the stack when it ends (its epochs cap, or
``stop_after_grok`` after T_grok), or when its loss stops being finite (then it is
reported with that error and its directory removed from the group's results).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.models.config import ToyConfig
from grokinterp.models.train import ToyTrainer, loss_and_derivative, one_thread, prepare_run
from grokinterp.schedule import checkpoint_epochs, end_epoch, first_grok_epoch
from grokinterp.storage import format_metric_rows, save_tensors
from grokinterp.toydata import make_toy_data

__all__ = ["STACKED_FIELDS", "can_stack", "stack_key", "train_stacked"]

# The fields that may differ between the runs of one stack.
STACKED_FIELDS = ("lr", "weight_decay", "beta1", "beta2", "init_seed", "data_seed", "name",
                  "stop_after_grok")  # fmt: skip


def can_stack(cfg) -> bool:
    """Whether a config can join a stack: an mlp run trained by full-batch AdamW."""
    return isinstance(cfg, ToyConfig) and cfg.family == "mlp" and cfg.optimizer == "adamw"


def stack_key(cfg: ToyConfig) -> tuple:
    """Runs with equal keys can be trained in one stack."""
    data = cfg.to_dict()
    return tuple(sorted((k, v) for k, v in data.items() if k not in STACKED_FIELDS))


def _column(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


class _Stack:
    """The live runs' parameters, moments, data and per-run hyperparameters, stacked."""

    def __init__(self, cfgs: Sequence[ToyConfig], trainers: Sequence[ToyTrainer]):
        self.family = trainers[0].family
        self.trained = trainers[0].trained
        self.loss = cfgs[0].loss
        self.params = {k: torch.stack([t.params[k] for t in trainers]) for k in trainers[0].params}
        self.moments = {
            k: torch.stack([t.moments[k] for t in trainers]) for k in trainers[0].moments
        }
        data = [t.data for t in trainers]
        self.x_train = torch.stack([d.x_train for d in data])
        self.y_train = torch.stack([d.y_train for d in data])
        self.x_test = torch.stack([d.x_test for d in data])
        self.y_test = torch.stack([d.y_test for d in data])
        self.lr = _column([c.lr for c in cfgs])
        self.wd = _column([c.weight_decay for c in cfgs])
        self.beta1 = _column([c.beta1 for c in cfgs])
        self.beta2 = _column([c.beta2 for c in cfgs])

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long)
        for group in (self.params, self.moments):
            for k in group:
                group[k] = group[k][index]
        for name in ("x_train", "y_train", "x_test", "y_test", "lr", "wd", "beta1", "beta2"):
            setattr(self, name, getattr(self, name)[index])

    def _shaped(self, column: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return column.view(-1, *([1] * (like.dim() - 1)))

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.family.forward(self.params, x)

    def step(self, steps: int) -> None:
        """One AdamW step of every run (``steps``: the step count after it)."""
        z = self.outputs(self.x_train)
        _, dz = loss_and_derivative(z, self.y_train, self.loss)
        grads = self.family.grad(self.params, self.x_train, dz)
        for name in self.trained:
            p, g = self.params[name], grads[name]
            b1, b2 = self._shaped(self.beta1, p), self._shaped(self.beta2, p)
            lr, wd = self._shaped(self.lr, p), self._shaped(self.wd, p)
            m, v = self.moments[f"m.{name}"], self.moments[f"v.{name}"]
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            c1, c2 = 1 - b1**steps, 1 - b2**steps
            self.params[name] = p * (1 - lr * wd) - lr * (m / c1) / ((v / c2).sqrt() + 1e-8)

    def rows(self, epoch: int, cfgs: Sequence[ToyConfig]) -> list[dict]:
        """Each live run's metrics row at ``epoch`` (all evaluated)."""
        z_train, z_test = self.outputs(self.x_train), self.outputs(self.x_test)
        train_loss = loss_and_derivative(z_train, self.y_train, self.loss)[0]
        test_loss = loss_and_derivative(z_test, self.y_test, self.loss)[0]
        train_acc, test_acc = _accuracy(z_train, self.y_train), _accuracy(z_test, self.y_test)
        return [
            {
                "epoch": epoch,
                "lr": cfg.lr,
                "train_loss": float(train_loss[r]),
                "train_acc": float(train_acc[r]),
                "test_loss": float(test_loss[r]),
                "test_acc": float(test_acc[r]),
            }  # fmt: skip
            for r, cfg in enumerate(cfgs)
        ]


def _accuracy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per run: argmax accuracy (p classes) or sign accuracy (+-1 labels, 0 counts as +1)."""
    if z.dim() == y.dim() + 1:
        return (z.argmax(-1) == y).double().mean(-1)
    return (torch.where(z >= 0, 1.0, -1.0) == y).double().mean(-1)


def _save(out: Path, stack: _Stack, r: int, epoch: int) -> None:
    params = {k: v[r].clone() for k, v in stack.params.items()}
    meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(epoch)}
    save_tensors(files.checkpoint_path(out, epoch), params, meta, dtype=None)
    moments = {k: v[r].clone() for k, v in stack.moments.items()}
    meta = {"format": files.OPTIMIZER_FORMAT, "epoch": str(epoch), "steps": str(epoch)}
    state = {"epoch": torch.tensor([epoch]), **moments}
    save_tensors(out / files.OPTIMIZER, state, meta, dtype=None)


def train_stacked(cfgs: Sequence[ToyConfig], outs: Sequence[str | Path]) -> dict[str, str | None]:
    """Train the runs ``cfgs`` into the new folders ``outs`` as one stack.

    Returns {out: None} for each run that finished, {out: error} for one that diverged.
    All configs must share a :func:`stack_key`; ValueError otherwise.
    """
    if not cfgs or len(cfgs) != len(outs):
        raise ValueError("train_stacked needs one output folder per config, and at least one")
    if not all(can_stack(c) for c in cfgs) or len({stack_key(c) for c in cfgs}) != 1:
        raise ValueError(
            "train_stacked needs mlp runs with optimizer 'adamw' that differ only in "
            f"{STACKED_FIELDS}"
        )
    outs = [Path(o) for o in outs]
    trainers = []
    for cfg, out in zip(cfgs, outs, strict=True):
        trainer = ToyTrainer(cfg, make_toy_data(cfg))
        prepare_run(cfg, out, trainer.data)
        trainers.append(trainer)
    with one_thread():
        return _train(list(cfgs), outs, _Stack(cfgs, trainers))


def _train(cfgs: list[ToyConfig], outs: list[Path], stack: _Stack) -> dict[str, str | None]:
    cfg0 = cfgs[0]
    ckpts = set(checkpoint_epochs(cfg0.checkpoints, cfg0.epochs))
    live = list(range(len(cfgs)))  # positions in cfgs of the runs in the stack, in order
    t_grok: list[int | None] = [None] * len(cfgs)
    ends = [cfg0.epochs] * len(cfgs)
    errors: dict[str, str | None] = {str(o): None for o in outs}
    handles = [open(o / files.METRICS, "a", buffering=1) for o in outs]  # noqa: SIM115
    try:
        for epoch in range(cfg0.epochs + 1):
            for r, i in enumerate(live):
                if epoch in ckpts or epoch == ends[i]:
                    _save(outs[i], stack, r, epoch)
            evaluate = epoch in ckpts or epoch % cfg0.eval_every == 0
            evaluate = evaluate or any(ends[i] == epoch for i in live)
            leaving = []
            if evaluate:
                rows = stack.rows(epoch, [cfgs[i] for i in live])
                for r, (i, row) in enumerate(zip(live, rows, strict=True)):
                    if not (epoch in ckpts or epoch % cfg0.eval_every == 0 or epoch == ends[i]):
                        continue  # logged on its own evaluated epochs only, as a single run
                    if not math.isfinite(row["train_loss"]):
                        errors[str(outs[i])] = (
                            f"FloatingPointError: the train loss is {row['train_loss']} at "
                            f"epoch {epoch}: the run diverged; lower lr (lr = {cfgs[i].lr:g})"
                        )
                        leaving.append(r)
                        continue
                    handles[i].write(format_metric_rows([row]))
                    if epoch == ends[i]:
                        leaving.append(r)
                    elif t_grok[i] is None and cfgs[i].stop_after_grok:
                        t_grok[i] = first_grok_epoch([row])
                        ends[i] = end_epoch(cfgs[i].stop_after_grok, cfgs[i].epochs, t_grok[i])
            if leaving:
                kept = [r for r in range(len(live)) if r not in leaving]
                live = [live[r] for r in kept]
                if not live:
                    break
                stack.keep(kept)
            stack.step(epoch + 1)
    finally:
        for handle in handles:
            handle.close()
    return errors
