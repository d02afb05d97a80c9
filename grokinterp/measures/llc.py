"""The local learning coefficient (LLC), estimated with the ``devinterp`` package.

Lau, Furman, Wang, Murfet and Wei (2023), "The local learning coefficient: a
singularity-aware complexity measure" (arXiv:2308.12108); the estimator is devinterp's
``estimate_learning_coeff_with_summary`` (devinterp 1.3, SGLD with localisation).
Definition and settings: docs/measures.md, "Local learning coefficient".

    LLC_hat(w*) = n beta (E_w[L_n(w)] - L_n(w*)),

the expectation over SGLD chains started at the checkpoint w* that sample
exp(-n beta L_n(w) - gamma / 2 |w - w*|^2), L_n the training loss (mean cross-entropy at
'=' over the run's training pairs, minibatches of ``batch_size``).  Every trainable
parameter is sampled (the attention biases, held at 0 in training, stay fixed).  The
chains' spread (the standard deviation of the per-chain estimates) is the convergence
diagnostic reported beside the mean.

``devinterp`` is an optional dependency (``pip install -e '.[llc]'``; ``make setup``
installs it): this module imports it only when an estimate is asked for.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import torch

from grokinterp.config import RunConfig
from grokinterp.data import Dataset
from grokinterp.errors import OptionError
from grokinterp.forward import last_position
from grokinterp.measures.losses import cross_entropy

__all__ = ["LLCSettings", "estimate_llc"]


@dataclass(frozen=True)
class LLCSettings:
    """SGLD settings of the LLC (docs/measures.md, "Local learning coefficient", for the
    calibration behind the defaults).

    lr: the SGLD step size epsilon.  nbeta: the inverse temperature n beta.  localization:
    gamma, the pull towards the checkpoint.  chains, draws: independent chains and the
    draws of each (one SGLD step per draw, after ``burnin`` steps).  batch_size:
    training pairs per SGLD step.  seed: the chains' seed.
    """

    lr: float = 1e-4
    nbeta: float = 300.0
    localization: float = 1000.0
    chains: int = 4
    draws: int = 100
    burnin: int = 0
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self):
        for name in ("lr", "nbeta"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise OptionError(f"llc {name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.localization) and self.localization >= 0):
            raise OptionError(f"llc localization must be >= 0, got {self.localization!r}")
        for name in ("chains", "draws", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"llc {name} must be an integer >= 1, got {value!r}")
        if isinstance(self.burnin, bool) or not isinstance(self.burnin, int) or self.burnin < 0:
            raise OptionError(f"llc burnin must be an integer >= 0, got {self.burnin!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class _Checkpoint(torch.nn.Module):
    """One checkpoint as a module: its trainable tensors are Parameters (sampled by SGLD),
    the rest buffers; forward(tokens (N, 3)) -> logits at '=' (N, p)."""

    def __init__(self, state: dict[str, torch.Tensor], trainable: tuple[str, ...], cfg):
        super().__init__()
        self.names = {k.replace(".", "__"): k for k in state}
        self.trainable = torch.nn.ParameterDict(
            {
                k.replace(".", "__"): torch.nn.Parameter(state[k].detach().float().clone())
                for k in trainable
            }  # fmt: skip
        )
        for k, v in state.items():
            if k not in trainable:
                self.register_buffer(k.replace(".", "__"), v.detach().float().clone())
        self.cfg = cfg

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        weights = {self.names[n]: t for n, t in self.trainable.items()}
        weights.update({self.names[n]: t for n, t in self.named_buffers()})
        cfg = self.cfg
        return last_position(
            weights, tokens[:, 0], tokens[:, 1], cfg.n_heads, cfg.act_fn,
            attn_coeff=cfg.attn_coeff,
        ).logits  # fmt: skip


def _evaluate(model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict]:
    tokens, labels = batch
    return cross_entropy(model(tokens), labels), {}


def estimate_llc(
    state: dict[str, torch.Tensor], cfg: RunConfig, dataset: Dataset, settings: LLCSettings
) -> dict[str, float]:
    """The LLC at one checkpoint: {"mean", "std" (over chains), "chain<i>" (each chain's
    estimate), "trace_first", "trace_last" (the mean sampled loss over the first and the
    last quarter of the draws: a chain still climbing has not equilibrated)}."""
    try:
        from devinterp.optim import SGMCMC
        from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    except ImportError as err:  # an optional dependency
        raise OptionError(
            "the llc measure needs the devinterp package: pip install -e '.[llc]' "
            f"(or make setup); import failed: {err}"
        ) from err
    from grokinterp.measures.sharpness import trainable_keys

    model = _Checkpoint(state, trainable_keys(cfg), cfg)
    data = torch.utils.data.TensorDataset(dataset.train_tokens, dataset.train_labels)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = torch.utils.data.DataLoader(
        data, batch_size=settings.batch_size, shuffle=True, generator=generator
    )
    with warnings.catch_warnings():  # devinterp warns on every call about its defaults
        warnings.simplefilter("ignore", UserWarning)
        out = estimate_learning_coeff_with_summary(
            model,
            loader,
            evaluate=_evaluate,
            sampling_method=SGMCMC.sgld,
            optimizer_kwargs={
                "lr": settings.lr,
                "nbeta": settings.nbeta,
                "localization": settings.localization,
            },
            num_chains=settings.chains,
            num_draws=settings.draws,
            num_burnin_steps=settings.burnin,
            seed=settings.seed,
            verbose=False,
        )
    result = {"mean": float(out["llc/mean"]), "std": float(out["llc/std"])}
    for i in range(settings.chains):
        result[f"chain{i}"] = float(out[f"llc-chain/{i}"])
    trace = out["loss/trace"]  # (chains, draws)
    quarter = max(1, settings.draws // 4)
    result["trace_first"] = float(trace[:, :quarter].mean())
    result["trace_last"] = float(trace[:, -quarter:].mean())
    return result
