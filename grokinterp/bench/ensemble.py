"""N runs of one shape trained as one batched model (``torch.func``), and its benchmark.

The weights of N models are stacked (``torch.func.stack_module_state``) and the fast
last-position forward (:func:`grokinterp.forward.last_position`) runs over the
stack with ``torch.func.vmap``; one AdamW steps all stacked tensors.  AdamW is elementwise
and the summed loss has model i's loss as its only term in model i's weights, so each
slice of the stack follows the same trajectory as that run trained alone, up to float
rounding (the batched matmuls sum in another order).

This is measured, not used by sweeps: a second training path would have to beat the
sweep's pool of single-run processes by 1.3x on CPU, and :func:`bench_ensemble` (``grokinterp
bench ensemble``) measures whether it does.  The runs of an ensemble may differ in their
seeds and initialisation only; every other field must match, since the optimiser's
hyperparameters are shared.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F

from grokinterp.bench.train import time_epochs
from grokinterp.config import ConfigError, RunConfig
from grokinterp.data import make_dataset
from grokinterp.forward import last_position
from grokinterp.model import build_model, tl_name
from grokinterp.training import Trainer, deterministic_algorithms, warmup_factor

__all__ = ["EnsembleTrainer", "bench_ensemble", "format_bench_ensemble"]

# Fields the members of an ensemble may differ in; everything else is shared.
PER_MEMBER_FIELDS = ("init_seed", "data_seed", "init", "init_scale", "name")
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _check_same_shape(cfgs: Sequence[RunConfig]) -> None:
    if not cfgs:
        raise ConfigError("an ensemble needs at least one RunConfig")
    first = cfgs[0].to_dict()
    for i, cfg in enumerate(cfgs[1:], start=1):
        differ = sorted(
            k for k, v in cfg.to_dict().items() if k not in PER_MEMBER_FIELDS and first[k] != v
        )
        if differ:
            raise ConfigError(
                f"ensemble member {i} differs from member 0 in {differ}; an ensemble may "
                f"differ only in {list(PER_MEMBER_FIELDS)}"
            )
    if not cfgs[0].fast_path:
        raise ConfigError("an ensemble trains with the fast path; set fast_path=True")


class EnsembleTrainer:
    """The models, one optimiser and the data of N same-shape runs, stepped together.

    ``weights`` maps native parameter names to stacked tensors of shape (N, ...); slice
    ``i`` is run ``cfgs[i]``.  ``epoch`` mirrors :meth:`grokinterp.training.Trainer.epoch`.
    """

    def __init__(self, cfgs: Sequence[RunConfig]):
        _check_same_shape(cfgs)
        self.cfgs = list(cfgs)
        cfg = self.cfgs[0]
        modules = [build_model(c).original_model for c in self.cfgs]
        params, _ = torch.func.stack_module_state(modules)
        self.weights = {k.replace("_original_component.", ""): v for k, v in params.items()}
        self.trainable = sorted(k for k, v in self.weights.items() if v.requires_grad)
        self.optimizer = torch.optim.AdamW(
            [self.weights[k] for k in self.trainable],
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            weight_decay=cfg.weight_decay,
        )
        self.loss_dtype = _DTYPES[cfg.loss_dtype]
        datasets = [make_dataset(c) for c in self.cfgs]
        self.train_tokens = torch.stack([d.train_tokens for d in datasets])  # (N, n_train, 3)
        self.train_labels = torch.stack([d.train_labels for d in datasets])  # (N, n_train)
        self.test_tokens = torch.stack([d.test_tokens for d in datasets])  # (N, n_test, 3)
        self.test_labels = torch.stack([d.test_labels for d in datasets])  # (N, n_test)
        forward = partial(_member_logits, n_heads=cfg.n_heads, act_fn=cfg.act_fn)
        self._forward = torch.func.vmap(forward)

    def __len__(self) -> int:
        return len(self.cfgs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits at the last position.  tokens (N, n, 3) -> (N, n, p)."""
        return self._forward(self.weights, tokens[..., 0], tokens[..., 1])

    def losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of each member, in the loss dtype.  (N, n, p), (N, n) -> (N,)."""
        per_example = F.cross_entropy(
            logits.flatten(0, 1).to(self.loss_dtype), labels.flatten(), reduction="none"
        )
        return per_example.view(labels.shape).mean(dim=1)

    @torch.no_grad()
    def evaluate(self, tokens: torch.Tensor, labels: torch.Tensor) -> tuple[list, list]:
        logits = self.forward(tokens)
        acc = (logits.argmax(-1) == labels).float().mean(dim=1)
        return self.losses(logits, labels).tolist(), acc.tolist()

    def epoch(self, epoch: int, evaluate: bool) -> list[dict]:
        """Log every member at ``epoch`` and take one step.  Returns one metrics row each."""
        lr = self.cfgs[0].lr * warmup_factor(epoch, self.cfgs[0].warmup_steps)
        logits = self.forward(self.train_tokens)
        losses = self.losses(logits, self.train_labels)
        rows = [{"epoch": epoch, "lr": lr, "train_loss": v} for v in losses.tolist()]
        if evaluate:
            train_acc = (logits.argmax(-1) == self.train_labels).float().mean(dim=1).tolist()
            test_loss, test_acc = self.evaluate(self.test_tokens, self.test_labels)
            for i, row in enumerate(rows):
                row.update(train_acc=train_acc[i], test_loss=test_loss[i], test_acc=test_acc[i])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        # Each member's weights appear only in its own loss, so the sum's gradient in slice
        # i is the gradient of loss i alone.
        losses.sum().backward()
        self.optimizer.step()
        return rows

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Member ``i``'s weights under native names (as :func:`native_parameters`)."""
        return {k: v[i].detach().clone() for k, v in self.weights.items()}


def _member_logits(
    w: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, *, n_heads: int, act_fn: str
) -> torch.Tensor:
    """One member's last-position logits from its native-named weights (vmapped over N)."""
    return last_position({tl_name(k): v for k, v in w.items()}, a, b, n_heads, act_fn).logits


# --- benchmark -------------------------------------------------------------------------


def _member_configs(cfg: RunConfig, n: int) -> list[RunConfig]:
    return [cfg.replace(init_seed=cfg.init_seed + i, data_seed=cfg.data_seed + i) for i in range(n)]


def _pool_worker(cfg: RunConfig, n: int, threads: int, n_epochs: int, warmup: int, barrier, queue):
    """One process of a pool measurement: train ``n`` runs (one run with the per-run
    Trainer when n = 1, else an ensemble of n) and time ``n_epochs`` epochs."""
    torch.set_num_threads(threads)
    with deterministic_algorithms():
        cfgs = _member_configs(cfg, n)
        trainer = Trainer(cfg, make_dataset(cfg)) if n == 1 else EnsembleTrainer(cfgs)
        for epoch in range(warmup):
            trainer.epoch(epoch, evaluate=epoch % cfg.eval_every == 0)
        barrier.wait()
        start = time.time()
        for epoch in range(warmup, warmup + n_epochs):
            trainer.epoch(epoch, evaluate=epoch % cfg.eval_every == 0)
        queue.put((start, time.time()))


def _pool_rate(
    cfg: RunConfig, n: int, workers: int, threads: int, n_epochs: int, warmup: int
) -> float:
    """Model-epochs per second of ``workers`` processes of ``threads`` threads, each
    training ``n`` runs at once (as an ensemble when n > 1)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_pool_worker, args=(cfg, n, threads, n_epochs, warmup, barrier, queue))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    spans = [queue.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return workers * n * n_epochs / wall


def bench_ensemble(
    cfg: RunConfig | None = None,
    sizes: Sequence[int] = (1, 4, 16),
    n_epochs: int = 20,
    warmup: int = 3,
    threads: int = 2,
) -> dict:
    """Model-epochs per second (epochs/s x N) of N runs trained as a batched ensemble and
    as N separate runs, with ``threads`` threads in all.

    Two layouts, for each N in ``sizes``:

    - in one process with ``threads`` threads: the ensemble of N against the N runs'
      per-run Trainers stepped one after another;
    - as the sweep's local pool runs: ``threads`` processes of one thread each, every
      process training an ensemble of N (N = 1: one run with the per-run Trainer, which is
      the pool a sweep uses today).

    cfg: the shape timed (default: p = 59 with the paper's sizes and init).  Members
    differ in their init and data seeds.
    """
    cfg = cfg or RunConfig(p=59)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        with deterministic_algorithms():  # as grokinterp.training.train runs
            for n in sizes:
                cfgs = _member_configs(cfg, n)
                ensemble = EnsembleTrainer(cfgs)
                batched = n * time_epochs(
                    lambda e, t=ensemble: t.epoch(e, evaluate=e % cfg.eval_every == 0),
                    n_epochs,
                    warmup,
                )
                trainers = [Trainer(c, make_dataset(c)) for c in cfgs]

                def one_each(e: int, trainers=trainers) -> None:
                    for t in trainers:
                        t.epoch(e, evaluate=e % cfg.eval_every == 0)

                separate = n * time_epochs(one_each, max(n_epochs // n, 2), 1)
                rows.append({"n": n, "ensemble": batched, "separate": separate})
    finally:
        torch.set_num_threads(previous)
    for row in rows:
        row["pool"] = _pool_rate(cfg, row["n"], threads, 1, max(n_epochs // row["n"], 3), 2)
    single_pool = next((r["pool"] for r in rows if r["n"] == 1), None)
    if single_pool is None:
        single_pool = _pool_rate(cfg, 1, threads, 1, n_epochs, warmup)
    best = max(rows, key=lambda r: max(r["ensemble"], r["pool"]))
    return {
        "p": cfg.p,
        "d_model": cfg.d_model,
        "d_mlp": cfg.d_mlp,
        "n_train": cfg.n_train,
        "threads": threads,
        "epochs_timed": n_epochs,
        "rows": rows,
        "single_pool": single_pool,
        "best_n": best["n"],
        "best_over_pool": max(best["ensemble"], best["pool"]) / single_pool,
    }


def format_bench_ensemble(result: dict) -> str:
    t = result["threads"]
    lines = [
        f"ensemble benchmark, p={result['p']} (d_model={result['d_model']}, "
        f"d_mlp={result['d_mlp']}, {result['n_train']} training pairs), {t} threads in all; "
        f"model-epochs/s (epochs/s x N)",
        f"  {'N':>4} {'ensemble':>9} {'N separate':>11} {'ratio':>6}   "
        f"{'pool of ' + str(t) + ' x 1 thread, each an ensemble of N':>40}",
    ]
    for row in result["rows"]:
        lines.append(
            f"  {row['n']:>4} {row['ensemble']:>9.1f} {row['separate']:>11.1f} "
            f"{row['ensemble'] / row['separate']:>5.2f}x   {row['pool']:>40.1f}"
        )
    ratio = result["best_over_pool"]
    verdict = "worth a sweep path" if ratio >= 1.3 else "not worth a sweep path (< 1.3x)"
    lines.append(
        f"  best (N={result['best_n']}) over the sweep's pool of single runs "
        f"({result['single_pool']:.1f}): {ratio:.2f}x, {verdict}"
    )
    return "\n".join(lines)
