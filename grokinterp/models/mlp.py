"""The mlp family: one hidden layer on the token tasks (Gromov 2023; Barak et al. 2022).

f(x) = W_out act(W_in x + b_in), act = ReLU or the square (``activation = "quadratic"``,
Gromov's network, which has an analytic Fourier solution).  On ``modular`` data x is
one-hot a and one-hot b concatenated (2p inputs) and f gives p logits; on
``sparse-parity`` x is a +-1 vector of n_bits and f one output (logistic loss on +-1).

W_in (width, d_in) ~ N(0, nu^2 / d_in), b_in (width,) = 0, W_out (d_out, width) ~
N(0, nu^2 / width), all trained; ``quadratic`` is a 0-d untrained flag (1.0 for the
square), kept in every checkpoint so the parameters alone say which activation they use.
Column a of W_in[:, :p] is token a's input weight vector,
so W_in[:, :p].T is the mlp's "embedding" of a (and W_in[:, p:].T that of b), whose Fourier
spectrum the measures read (:mod:`grokinterp.measures.mlp`).  Definitions: docs/mlp.md.
"""

from __future__ import annotations

import math

import torch

from grokinterp.models import TOY_MEASURES, ModelFamily, normal

# The measures of an mlp run's table beyond the toy ones (grokinterp.measures.mlp).
MLP_MEASURES = TOY_MEASURES + (
    "n_key_freqs", "neurons_per_freq", "embed_freq_norm", "gini_embed", "restricted_loss",
    "excluded_loss", "relevant_weight_frac",
)  # fmt: skip


def _parameters(cfg) -> dict[str, tuple[int, ...]]:
    return {"W_in": (cfg.width, cfg.d_in), "b_in": (cfg.width,), "W_out": (cfg.d_out, cfg.width),
            "quadratic": ()}  # fmt: skip


def _init(cfg, generator: torch.Generator) -> dict[str, torch.Tensor]:
    W_in = normal(generator, cfg.width, cfg.d_in, std=cfg.init_scale / math.sqrt(cfg.d_in))
    W_out = normal(generator, cfg.d_out, cfg.width, std=cfg.init_scale / math.sqrt(cfg.width))
    params = {"W_in": W_in, "b_in": torch.zeros(cfg.width, dtype=torch.float64), "W_out": W_out}
    return with_activation(params, cfg.activation)


def hidden(params: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations and activations of the hidden layer: x (..., N, d) -> 2 x (..., N, width).
    The activation is the square where ``params["quadratic"]`` is 1, else ReLU."""
    pre = x @ params["W_in"].transpose(-1, -2) + params["b_in"].unsqueeze(-2)
    return pre, (pre * pre if is_quadratic(params) else torch.relu(pre))


def is_quadratic(params: dict[str, torch.Tensor]) -> bool:
    return "quadratic" in params and bool(params["quadratic"].flatten()[0])


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (..., N, d) -> logits (..., N, d_out), or (..., N) when d_out is 1."""
    _, act = hidden(params, x)
    out = act @ params["W_out"].transpose(-1, -2)
    return out.squeeze(-1) if params["W_out"].shape[-2] == 1 else out


def grad(params: dict[str, torch.Tensor], x: torch.Tensor, dz: torch.Tensor) -> dict:
    """All three blocks' gradients of a loss whose derivative by the outputs is dz
    ((..., N, d_out), or (..., N) when d_out is 1); leading axes stack runs."""
    pre, act = hidden(params, x)
    if dz.dim() == pre.dim() - 1:
        dz = dz.unsqueeze(-1)
    d_act = dz @ params["W_out"]  # (..., N, width)
    d_pre = d_act * (2 * pre if is_quadratic(params) else (pre > 0).to(pre.dtype))
    return {
        "W_in": d_pre.transpose(-1, -2) @ x,
        "b_in": d_pre.sum(-2),
        "W_out": dz.transpose(-1, -2) @ act,
    }


def with_activation(params: dict[str, torch.Tensor], activation: str) -> dict[str, torch.Tensor]:
    """The parameters with the activation flag the forward pass reads."""
    flag = torch.tensor(1.0 if activation == "quadratic" else 0.0, dtype=torch.float64)
    return {**params, "quadratic": flag}


FAMILY = ModelFamily(
    name="mlp",
    description="f(x) = W_out act(W_in x + b_in), act ReLU or x^2, on one-hot (a, b) or +-1 bits",
    parameters=_parameters,
    trained=lambda cfg: ("W_in", "b_in", "W_out"),
    init=_init,
    forward=forward,
    measures=MLP_MEASURES,
    skip_text="needs attention or the transformer's residual stream; the mlp has neither",
    grad=grad,
)
