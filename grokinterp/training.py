"""Training (full-batch AdamW by default) with dense, atomic checkpoints and bitwise-exact resume.

The run directory layout is described in :mod:`grokinterp.files`.  Epoch ``e`` means "the
model after ``e`` epochs" (``e`` optimiser steps with the default full batch; ``e *
cfg.steps_per_epoch`` with minibatches): the metrics row, checkpoint and optimiser state of
epoch ``e`` all describe that same model.  The optimisers, dropout, Grokfast filters and
minibatches are described in docs/training-options.md; their randomness comes from
generators seeded by (seed, epoch), so a resumed run draws what it would have drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.config import RunConfig
from grokinterp.data import Dataset, make_dataset
from grokinterp.errors import RunExistsError
from grokinterp.forward import draw_dropout_masks, last_position_dropped
from grokinterp.measures.losses import training_loss
from grokinterp.model import build_model, last_position_logits, tl_parameters, trainable_parameters
from grokinterp.optim import build_grad_filter, build_optimizer
from grokinterp.run import (
    Run,
    load_run,
    read_config,
    read_split,
    save_checkpoint,
    write_run_files,
)
from grokinterp.schedule import (
    checkpoint_epochs,
    end_epoch,
    epoch_generator,
    first_grok_epoch,
    first_mem_epoch,
)
from grokinterp.storage import (
    RunFileError,
    atomic_write_text,
    format_metric_rows,
    load_tensors,
    metrics_header,
    read_json,
    read_metrics,
    save_tensors,
)

log = logging.getLogger(__name__)

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_FILTER_PREFIX = "grokfast."


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Run the enclosed code with ``torch.use_deterministic_algorithms(True)``.

    Without it, the backward of the fast path's table lookups (``index_put_`` with
    accumulate) sums in an order that varies between processes at p = 113, so two runs
    with the same seeds drift apart by one ulp at the first update and then chaotically.
    The previous setting is restored on exit.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up as in Nanda et al.'s code: lr * min(step / warmup_steps, 1)."""
    return 1.0 if warmup_steps == 0 else min(step / warmup_steps, 1.0)


# Stream tags of the per-epoch generators, so a shared seed gives unrelated draws.
_BATCH_ORDER, _DROPOUT = 1, 2


def batch_order(cfg: RunConfig, epoch: int) -> list[torch.Tensor] | None:
    """The minibatches of ``epoch`` as index tensors into the training pairs, or None for
    one full batch (``batch_size`` 0 or >= n_train: no shuffle, today's full-batch step).

    A permutation of the n_train pairs drawn from (data_seed, epoch), cut into runs of
    ``batch_size`` (the last one smaller).
    """
    if cfg.steps_per_epoch == 1:
        return None
    order = torch.randperm(
        cfg.n_train, generator=epoch_generator(cfg.data_seed, epoch, _BATCH_ORDER)
    )
    return list(order.split(cfg.batch_size))


class Trainer:
    """The model, optimiser and data of one run, stepped one epoch at a time.

    ``forward`` is the fast last-position path, or the plain TransformerLens forward when
    ``cfg.fast_path`` is False; both train the same parameters.  ``forward`` never drops
    out: evaluation and the logged metrics are deterministic.
    """

    def __init__(self, cfg: RunConfig, data: Dataset, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = build_model(cfg, device=self.device)
        self.params = trainable_parameters(self.model)
        self.optimizer = build_optimizer(cfg, self.params)
        self.grad_filter = build_grad_filter(cfg)
        self.loss_dtype = _DTYPES[cfg.loss_dtype]
        to = self.device
        self.train_tokens, self.train_labels = data.train_tokens.to(to), data.train_labels.to(to)
        self.test_tokens, self.test_labels = data.test_tokens.to(to), data.test_labels.to(to)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at the last position.  tokens (N, 3) -> (N, p)."""
        if self.cfg.fast_path:
            return last_position_logits(self.model, tokens[:, 0], tokens[:, 1])  # attn_coeff too
        return self.model(tokens)[:, -1]

    @torch.no_grad()
    def evaluate(self, tokens: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        logits = self.forward(tokens)
        loss = training_loss(logits, labels, self.loss_dtype, self.cfg.loss).item()
        return loss, (logits.argmax(-1) == labels).float().mean().item()

    def train_forward(self, tokens: torch.Tensor, generator: torch.Generator | None):
        """Logits of a training step: :meth:`forward`, with dropout masks drawn from
        ``generator`` when ``cfg.dropout`` > 0 (fast path only; the config enforces it)."""
        if self.cfg.dropout == 0:
            return self.forward(tokens)
        cfg = self.cfg
        masks = draw_dropout_masks(len(tokens), cfg.d_model, cfg.n_heads, cfg.dropout, generator)
        masks = type(masks)(*(m.to(self.device) for m in vars(masks).values()))
        weights = tl_parameters(self.model)
        return last_position_dropped(
            weights, tokens[:, 0], tokens[:, 1], cfg.n_heads, masks, cfg.act_fn, cfg.attn_coeff
        )

    def step_lr(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (counted from 0 over the whole run)."""
        return self.cfg.lr * warmup_factor(step, self.cfg.warmup_steps)

    def epoch(self, epoch: int, evaluate: bool) -> dict:
        """Log the model at ``epoch`` and train one epoch.  Returns the metrics row.

        The row's ``lr`` is that of the epoch's first step and ``train_loss`` the loss of
        the model at ``epoch`` on all training pairs, without dropout.
        """
        first_step = epoch * self.cfg.steps_per_epoch
        lr = self.step_lr(first_step)
        batches = batch_order(self.cfg, epoch)
        if batches is None and self.cfg.dropout == 0:  # the default: one forward for both
            logits = self.forward(self.train_tokens)
            loss = training_loss(logits, self.train_labels, self.loss_dtype, self.cfg.loss)
            row = {"epoch": epoch, "lr": lr, "train_loss": loss.item()}
            if evaluate:
                row["train_acc"] = (logits.argmax(-1) == self.train_labels).float().mean().item()
                row["test_loss"], row["test_acc"] = self.evaluate(
                    self.test_tokens, self.test_labels
                )
            self.optimizer_step(loss, lr)
            return row
        train_loss, train_acc = self.evaluate(self.train_tokens, self.train_labels)
        row = {"epoch": epoch, "lr": lr, "train_loss": train_loss}
        if evaluate:
            row["train_acc"] = train_acc
            row["test_loss"], row["test_acc"] = self.evaluate(self.test_tokens, self.test_labels)
        generator = None
        if self.cfg.dropout > 0:
            generator = epoch_generator(self.cfg.init_seed, epoch, _DROPOUT)
        for i, idx in enumerate(batches if batches is not None else [None]):
            tokens = self.train_tokens if idx is None else self.train_tokens[idx.to(self.device)]
            labels = self.train_labels if idx is None else self.train_labels[idx.to(self.device)]
            logits = self.train_forward(tokens, generator)
            self.optimizer_step(
                training_loss(logits, labels, self.loss_dtype, self.cfg.loss),
                self.step_lr(first_step + i),
            )
        return row

    def final_row(self, epoch: int) -> dict:
        """The metrics of the model after the last step (no step taken)."""
        train_loss, train_acc = self.evaluate(self.train_tokens, self.train_labels)
        test_loss, test_acc = self.evaluate(self.test_tokens, self.test_labels)
        lr = self.step_lr(epoch * self.cfg.steps_per_epoch)
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
        }

    def optimizer_step(self, loss: torch.Tensor, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.grad_filter.apply(self.params)
        self.optimizer.step()

    # state for checkpoints and resume
    def optimizer_tensors(self) -> dict[str, torch.Tensor]:
        """The optimiser state as ``<i>.<key>`` and the Grokfast filter state as
        ``grokfast.<i>.<key>`` (i indexes :attr:`params`)."""
        state = self.optimizer.state_dict()["state"]
        tensors = {f"{i}.{k}": v for i, s in state.items() for k, v in s.items()}
        for name, value in self.grad_filter.state_tensors().items():
            tensors[f"{_FILTER_PREFIX}{name}"] = value
        return tensors

    def load_optimizer_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        filter_state = {}
        for name, value in tensors.items():
            if name.startswith(_FILTER_PREFIX):
                filter_state[name[len(_FILTER_PREFIX) :]] = value.to(self.device)
                continue
            index, key = name.split(".", 1)
            state.setdefault(int(index), {})[key] = value
        self.grad_filter.load_state_tensors(filter_state)
        full = self.optimizer.state_dict()
        full["state"] = state
        self.optimizer.load_state_dict(full)


def _prepare_new_run(cfg: RunConfig, out: Path, data: Dataset) -> None:
    if (out / files.CONFIG).is_file():
        existing = read_config(out)
        if existing != cfg:
            changed = sorted(k for k, v in cfg.to_dict().items() if existing.to_dict().get(k) != v)
            raise RunExistsError(
                f"{out} already holds a different run (fields that differ: {changed}); "
                f"choose another --out, or delete that folder"
            )
        raise RunExistsError(
            f"{out} already holds this run; continue it with 'grokinterp train --resume {out}'"
        )
    if out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} exists and is not empty; choose another --out")
    write_run_files(out, cfg, data.train_idx)


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files a killed writer left behind (see storage.atomic_write_bytes)."""
    for leftover in out.rglob(".*.tmp"):
        log.info("removing %s, left by an interrupted write", leftover)
        leftover.unlink()


def _resume_point(out: Path, trainer: Trainer) -> int:
    """Load the latest checkpoint that has optimiser state; return its epoch."""
    opt_path = out / files.OPTIMIZER
    if not opt_path.is_file():
        return 0  # killed before the first checkpoint finished: start over
    tensors, meta = load_tensors(opt_path, files.OPTIMIZER_FORMAT)
    epoch = int(meta["epoch"])
    run = load_run(out)
    trainer.model.load_state_dict(run.state_dict_at(epoch))
    trainer.load_optimizer_tensors(tensors)
    return epoch


def train(
    cfg: RunConfig | None,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[dict], None] | None = None,
) -> Run:
    """Train a run into ``out_dir`` (or continue it with ``resume=True``) and return it.

    ``on_epoch`` is called with each metrics row, e.g. to drive a progress bar.
    """
    out = Path(out_dir)
    if _is_toy(cfg, out, resume):  # a toy model family: grokinterp.models.train
        from grokinterp.models.train import train_toy

        return train_toy(cfg, out, resume=resume, on_epoch=on_epoch)
    if resume:
        if not (out / files.CONFIG).is_file():
            raise RunFileError(f"{out}: no run to resume (no {files.CONFIG})")
        stored = read_config(out)
        if cfg is not None and cfg != stored:
            raise RunExistsError(f"{out} holds a different run than the config given")
        cfg = stored
        data = make_dataset(cfg, train_idx=read_split(out, cfg))
        _remove_stale_temporaries(out)
    else:
        if cfg is None:
            raise ValueError("train() needs a config unless resume=True")
        data = make_dataset(cfg)
        _prepare_new_run(cfg, out, data)

    trainer = Trainer(cfg, data, device=device)
    start = _resume_point(out, trainer) if resume else 0
    kept = []
    if resume:
        kept = [r for r in read_metrics(out / files.METRICS) if r["epoch"] < start]
        atomic_write_text(out / files.METRICS, metrics_header() + format_metric_rows(kept))
        log.info("resuming %s at epoch %d", out, start)

    ckpt_epochs = set(checkpoint_epochs(cfg.checkpoints, cfg.epochs))
    # The run ends at the epochs cap, or stop_after_grok epochs (and/or stop_after_grok_delays
    # x (T_grok - T_mem)) after T_grok; on resume, T_mem and T_grok are read back from the
    # kept metrics, so a resumed run stops where it would have.
    stops = cfg.stop_after_grok > 0 or cfg.stop_after_grok_delays > 0
    t_mem, t_grok = first_mem_epoch(kept), first_grok_epoch(kept)

    def _end() -> int:
        return end_epoch(
            cfg.stop_after_grok,
            cfg.epochs,
            t_grok,
            delays=cfg.stop_after_grok_delays,
            t_mem=t_mem,
        )

    end = _end()
    with deterministic_algorithms(), open(out / files.METRICS, "a", buffering=1) as metrics:
        for epoch in range(start, cfg.epochs + 1):
            is_ckpt = epoch in ckpt_epochs or epoch == end
            if is_ckpt:
                _save_checkpoint(out, trainer, epoch)
            if epoch == end:
                row = trainer.final_row(epoch)
            else:
                evaluate = is_ckpt or epoch % cfg.eval_every == 0
                row = trainer.epoch(epoch, evaluate)
            metrics.write(format_metric_rows([row]))
            if on_epoch is not None:
                on_epoch(row)
            if epoch == end:
                break
            if t_grok is None and stops:
                t_mem = t_mem if t_mem is not None else first_mem_epoch([row])
                t_grok = first_grok_epoch([row])
                end = _end()
    if end < cfg.epochs:
        log.info("%s: stopped at epoch %d, %d after T_grok", out, end, end - t_grok)
    return load_run(out)


def _is_toy(cfg, out: Path, resume: bool) -> bool:
    if cfg is not None:
        return not isinstance(cfg, RunConfig)
    from grokinterp.models.config import is_toy

    return resume and (out / files.CONFIG).is_file() and is_toy(read_json(out / files.CONFIG))


def _save_checkpoint(out: Path, trainer: Trainer, epoch: int) -> None:
    save_checkpoint(out, epoch, trainer.model.state_dict())
    # Optimiser state after the checkpoint: if killed in between, resume starts from the
    # previous checkpoint and rewrites this one identically.
    meta = {"format": files.OPTIMIZER_FORMAT, "epoch": str(epoch)}
    save_tensors(out / files.OPTIMIZER, trainer.optimizer_tensors(), meta)
