"""Training a toy run: the seeds' optimisers, a run directory like the transformer's, and
bitwise-exact resume.

- ``gd`` (arXiv:2601.19791): full-batch gradient descent on L(w) + wd ||w||^2 over the
  trained blocks, w <- w - lr (grad L(w) + 2 wd w).  One step per epoch.
- ``sgd`` (the competing-features program): batch 1, the n_train points in an order drawn
  each epoch from (init_seed, epoch); before each step the decoupled decay
  w <- (1 - lr wd) w, then w <- w - lr grad l_i(w), the gradient taken at the decayed w.
  n_train steps per epoch.
- ``adamw`` (the mlp family, docs/mlp.md): full-batch AdamW as torch's, decoupled decay;
  its moments are saved beside each checkpoint.  An mlp run logs metrics on the
  evaluated epochs only (every ``eval_every``, each checkpoint and the last).

L is the data loss: mean squared error (ridge) or mean log(1 + exp(-y z)) (labels +-1).
Everything is float64 and checkpoints keep float64, so a resumed run continues bitwise.
Epoch ``e`` is the model after ``e`` epochs, as for the transformer (grokinterp.train).
The run directory holds config.json, data.json (the data description), metrics.csv,
checkpoints/ and optimizer.safetensors (the epoch of the latest checkpoint, and the
AdamW moments; gd and sgd keep no state).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.errors import RunExistsError, RunFileError
from grokinterp.models import get_family
from grokinterp.models.config import ToyConfig
from grokinterp.schedule import checkpoint_epochs, end_epoch, first_grok_epoch
from grokinterp.storage import (
    atomic_write_text,
    format_metric_rows,
    load_tensors,
    metrics_header,
    read_metrics,
    save_tensors,
    write_json,
)
from grokinterp.toydata import ToyData, make_toy_data

__all__ = ["ToyTrainer", "data_loss", "loss_and_derivative", "train_toy"]

log = logging.getLogger(__name__)
_ORDER_STREAM = 1  # the stream tag of grokinterp.schedule.epoch_generator for batch orders


def loss_and_derivative(z: torch.Tensor, y: torch.Tensor, loss: str):
    """The mean loss of outputs z (N,) against targets y (N,), and its derivative by z (N,).

    squared: mean (z - y)^2, derivative 2 (z - y) / N;
    logistic: mean log(1 + exp(-y z)), derivative -y sigmoid(-y z) / N;
    ce (z (N, p) logits, y (N,) classes): mean softmax cross-entropy, (softmax - onehot) / N;
    mse (the same shapes): mean over points of sum_c (z_c - onehot_c)^2, 2 (z - onehot) / N.
    Leading axes of z and y (stacked runs) are kept: N is the second-to-last axis of a
    (..., N, p) z and the last of a (..., N) one.
    """
    if loss in ("ce", "mse"):
        n = z.shape[-2]
        onehot = torch.nn.functional.one_hot(y, z.shape[-1]).to(z.dtype)
        if loss == "mse":
            r = z - onehot
            return (r * r).sum(-1).mean(-1), 2 * r / n
        logp = z.log_softmax(-1)
        value = -(logp * onehot).sum(-1).mean(-1)
        return value, (logp.exp() - onehot) / n
    n = z.shape[-1]
    if loss == "squared":
        r = z - y
        return (r * r).mean(), 2 * r / n
    margin = y * z
    return torch.nn.functional.softplus(-margin).mean(), -y * torch.sigmoid(-margin) / n


def data_loss(z: torch.Tensor, y: torch.Tensor, loss: str) -> float:
    return float(loss_and_derivative(z, y, loss)[0])


def accuracy(z: torch.Tensor, y: torch.Tensor, cfg: ToyConfig) -> float:
    """Classification: the share of sign(z) == y (z = 0 counts as +1, as the seed's program).
    Regression: 1.0 if the mean squared error is below ``c`` (the ridge paper's
    "generalised"), else 0.0, so T_mem and T_grok are the first epochs the train and test
    losses fall below c.  p classes (modular): the share of argmax z == y."""
    if cfg.loss in ("ce", "mse"):
        return float((z.argmax(-1) == y).double().mean())
    if cfg.loss == "logistic":
        pred = torch.where(z >= 0, 1.0, -1.0)
        return float((pred == y).double().mean())
    return float(data_loss(z, y, "squared") < cfg.c)


class ToyTrainer:
    """The parameters, data and optimiser of one toy run, stepped one epoch at a time."""

    def __init__(self, cfg: ToyConfig, data: ToyData, fast: bool = True):
        self.cfg = cfg
        self.fast = fast  # the family's own SGD epoch, where it has one
        self.family = get_family(cfg.family)
        self.data = data
        generator = torch.Generator().manual_seed(cfg.init_seed)
        self.params = self.family.init(cfg, generator)
        self.trained = self.family.trained(cfg)
        self.steps = 0  # adamw: optimiser steps taken
        self.moments: dict[str, torch.Tensor] = {}  # adamw: "m.<name>", "v.<name>"
        if cfg.optimizer == "adamw":
            for name in self.trained:
                self.moments[f"m.{name}"] = torch.zeros_like(self.params[name])
                self.moments[f"v.{name}"] = torch.zeros_like(self.params[name])

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.family.forward(self.params, x)

    def row(self, epoch: int, evaluate: bool) -> dict:
        cfg, d = self.cfg, self.data
        z_train = self.outputs(d.x_train)
        row = {"epoch": epoch, "lr": cfg.lr, "train_loss": data_loss(z_train, d.y_train, cfg.loss)}
        if evaluate:
            z_test = self.outputs(d.x_test)
            row["train_acc"] = accuracy(z_train, d.y_train, cfg)
            row["test_loss"] = data_loss(z_test, d.y_test, cfg.loss)
            row["test_acc"] = accuracy(z_test, d.y_test, cfg)
        return row

    def gd_step(self) -> None:
        cfg, d = self.cfg, self.data
        z = self.outputs(d.x_train)
        _, dz = loss_and_derivative(z, d.y_train, cfg.loss)
        grads = self.family.grad(self.params, d.x_train, dz)
        for name in self.trained:
            p = self.params[name]
            self.params[name] = p - cfg.lr * (grads[name] + 2 * cfg.weight_decay * p)

    def adamw_step(self) -> None:
        """Full-batch AdamW as torch.optim.AdamW: decoupled decay w <- (1 - lr wd) w, then
        the bias-corrected Adam step (eps 1e-8); no warm-up."""
        cfg, d = self.cfg, self.data
        z = self.outputs(d.x_train)
        _, dz = loss_and_derivative(z, d.y_train, cfg.loss)
        grads = self.family.grad(self.params, d.x_train, dz)
        self.steps += 1
        c1, c2 = 1 - cfg.beta1**self.steps, 1 - cfg.beta2**self.steps
        for name in self.trained:
            m, v, g = self.moments[f"m.{name}"], self.moments[f"v.{name}"], grads[name]
            m.mul_(cfg.beta1).add_(g, alpha=1 - cfg.beta1)
            v.mul_(cfg.beta2).addcmul_(g, g, value=1 - cfg.beta2)
            p = self.params[name] * (1 - cfg.lr * cfg.weight_decay)
            self.params[name] = p - cfg.lr * (m / c1) / ((v / c2).sqrt() + 1e-8)

    def sgd_epoch(self, epoch: int) -> None:
        from grokinterp.schedule import epoch_generator

        cfg, d = self.cfg, self.data
        generator = epoch_generator(cfg.init_seed, epoch, _ORDER_STREAM)
        order = torch.randperm(cfg.n_train_points, generator=generator).tolist()
        if self.family.sgd_epoch is not None and self.fast:
            self.params = self.family.sgd_epoch(
                self.params, d.x_train, d.y_train, order, cfg.lr, cfg.weight_decay, cfg.loss
            )
            return
        shrink = 1 - cfg.lr * cfg.weight_decay
        for i in order:
            x, y = d.x_train[i : i + 1], d.y_train[i : i + 1]  # (1, d), (1,)
            for name in self.trained:
                self.params[name] = shrink * self.params[name]
            _, dz = loss_and_derivative(self.outputs(x), y, cfg.loss)
            grads = self.family.grad(self.params, x, dz)
            for name in self.trained:
                self.params[name] = self.params[name] - cfg.lr * grads[name]

    def step_epoch(self, epoch: int) -> None:
        if self.cfg.optimizer == "gd":
            self.gd_step()
        elif self.cfg.optimizer == "adamw":
            self.adamw_step()
        else:
            self.sgd_epoch(epoch)


def data_description(cfg: ToyConfig, data: ToyData) -> dict:
    """What data.json records: the data set's fields, its blocks and facts."""
    fields_ = ["dataset", "n_train", "n_test", "data_seed"]
    fields_ += {
        "competing-features": ["d_sig"],
        "modular": ["p", "operation", "frac_train"],
        "sparse-parity": ["n_bits", "k_relevant"],
    }.get(cfg.dataset, ["m", "spectrum", "spike_dims", "spike_value", "theta_norm", "noise", "c"])
    extra = {"relevant": list(data.relevant)} if cfg.dataset == "sparse-parity" else {}
    return {
        **extra,
        **{f: getattr(cfg, f) for f in fields_},
        "d_in": cfg.d_in,
        "loss": cfg.loss,
        "blocks": {k: list(v) for k, v in data.blocks.items()},
        "facts": data.facts,
        "note": "the data is regenerated from these fields (grokinterp.toydata)",
    }


def prepare_run(cfg: ToyConfig, out: Path, data: ToyData) -> None:
    if (out / files.CONFIG).is_file():
        raise RunExistsError(
            f"{out} already holds a run; continue it with 'grokinterp train --resume {out}', "
            f"or choose another --out"
        )
    if out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / files.DATA, data_description(cfg, data))
    atomic_write_text(out / files.METRICS, metrics_header())
    atomic_write_text(out / files.CONFIG, cfg.to_json() + "\n")  # last: now resumable


def _save(out: Path, trainer: ToyTrainer, epoch: int) -> None:
    meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(epoch)}
    save_tensors(files.checkpoint_path(out, epoch), trainer.params, meta, dtype=None)
    meta = {"format": files.OPTIMIZER_FORMAT, "epoch": str(epoch), "steps": str(trainer.steps)}
    state = {"epoch": torch.tensor([epoch]), **trainer.moments}
    save_tensors(out / files.OPTIMIZER, state, meta, dtype=None)


def _resume(out: Path, trainer: ToyTrainer) -> int:
    opt_path = out / files.OPTIMIZER
    if not opt_path.is_file():
        return 0
    opt_state, meta = load_tensors(opt_path, files.OPTIMIZER_FORMAT)
    epoch = int(meta["epoch"])
    trainer.steps = int(meta.get("steps", 0))
    trainer.moments = {k: opt_state[k] for k in trainer.moments}
    tensors, _ = load_tensors(files.checkpoint_path(out, epoch), files.CHECKPOINT_FORMAT)
    expected = set(trainer.params)
    if set(tensors) != expected:
        raise RunFileError(
            f"{out}: checkpoint {epoch} holds {sorted(tensors)}, not {sorted(expected)}"
        )
    trainer.params = {k: tensors[k] for k in trainer.params}
    return epoch


def train_toy(
    cfg: ToyConfig | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
):
    """Train a toy run into ``out_dir`` (or continue it with ``resume=True``); return it."""
    from grokinterp.run import load_toy_run, read_toy_config

    out = Path(out_dir)
    if resume:
        if not (out / files.CONFIG).is_file():
            raise RunFileError(f"{out}: no run to resume (no {files.CONFIG})")
        stored = read_toy_config(out)
        if cfg is not None and cfg != stored:
            raise RunExistsError(f"{out} holds a different run than the config given")
        cfg = stored
        for leftover in out.rglob(".*.tmp"):
            leftover.unlink()
    elif cfg is None:
        raise ValueError("train_toy() needs a config unless resume=True")
    data = make_toy_data(cfg)
    if not resume:
        prepare_run(cfg, out, data)
    if cfg.exact_path:
        from grokinterp.ridge_path import write_exact_run

        write_exact_run(cfg, out, data, on_epoch=on_epoch)
        return load_toy_run(out)
    with one_thread():
        return _train(cfg, out, data, resume, on_epoch)


@contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread while a toy trains: its tensors are small, and a pool of threads
    only adds waiting (10x slower on a busy machine).  The setting is restored on exit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(cfg: ToyConfig, out: Path, data: ToyData, resume: bool, on_epoch):
    from grokinterp.run import load_toy_run

    trainer = ToyTrainer(cfg, data)
    start = _resume(out, trainer) if resume else 0
    kept = []
    if resume:
        kept = [r for r in read_metrics(out / files.METRICS) if r["epoch"] < start]
        atomic_write_text(out / files.METRICS, metrics_header() + format_metric_rows(kept))
    ckpts = set(checkpoint_epochs(cfg.checkpoints, cfg.epochs))
    # stop_after_grok: T_grok is read back from the kept metrics on resume, so a resumed
    # run stops where it would have (as the transformer's, grokinterp.training)
    t_grok = first_grok_epoch(kept) if resume else None
    end = end_epoch(cfg.stop_after_grok, cfg.epochs, t_grok)
    with open(out / files.METRICS, "a", buffering=1) as metrics:
        for epoch in range(start, cfg.epochs + 1):
            is_ckpt = epoch in ckpts or epoch == end
            if is_ckpt:
                _save(out, trainer, epoch)
            last = epoch == end
            evaluate = last or is_ckpt or epoch % cfg.eval_every == 0
            if not evaluate and cfg.family == "mlp":
                trainer.step_epoch(epoch)
                continue
            row = trainer.row(epoch, evaluate)
            if not math.isfinite(row["train_loss"]):
                raise FloatingPointError(
                    f"{out}: the train loss is {row['train_loss']} at epoch {epoch}: the run "
                    f"diverged; lower lr (lr = {cfg.lr:g})"
                )
            if not last:
                trainer.step_epoch(epoch)
            metrics.write(format_metric_rows([row]))
            if on_epoch is not None:
                on_epoch(row)
            if last:
                break
            if t_grok is None and cfg.stop_after_grok and evaluate:
                t_grok = first_grok_epoch([row])
                end = end_epoch(cfg.stop_after_grok, cfg.epochs, t_grok)
    return load_toy_run(out)
