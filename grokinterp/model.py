"""The one place a model is built, and the fast last-position forward used for training.

The model is a TransformerLens 4 ``TransformerBridge`` booted natively (no download):
one layer, no LayerNorm, ReLU MLP, as in Nanda et al. (2023).

Initialisation (``RunConfig.init``; docs/reproducing-the-paper.md), every weight normal
with mean 0 and biases zero:

==========  ====================================================================
``paper``   std 1/sqrt(d_model) for W_E, W_pos, W_Q, W_K, W_V, W_O, W_in, W_out;
            std 1/sqrt(d_vocab) for W_U, d_vocab = p + 1 (Nanda et al.'s code)
``tl-demo`` std 0.8/sqrt(d_model) for every weight (legacy TransformerLens, as in
            its grokking demo)
``native``  TransformerLens 4's ``boot_native``: as tl-demo, with W_O and W_out
            further scaled by 1/sqrt(2 n_layers)
==========  ====================================================================

``RunConfig.init_scale`` multiplies every initial weight.  Draws come from a local
generator seeded with ``init_seed``, so the global RNG is untouched and a config always
gives the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import einops
import torch
import torch.nn.functional as F
import transformer_lens.model_bridge.sources  # noqa: F401  (attaches boot_native)
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.config import RunConfig

# Native parameter names (bridge wrappers stripped) of the biases the paper's model does
# not train: attention biases. The unembedding has no bias parameter at all.
_ATTENTION_BIASES = (
    "layers.0.attn.q.bias",
    "layers.0.attn.k.bias",
    "layers.0.attn.v.bias",
    "layers.0.attn.o.bias",
)
_MLP_BIASES = ("layers.0.mlp.fc_in.bias", "layers.0.mlp.fc_out.bias")


def bridge_config(cfg: RunConfig) -> TransformerBridgeConfig:
    return TransformerBridgeConfig(
        n_layers=1,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        act_fn=cfg.act_fn,
        normalization_type=None,
        n_ctx=3,
        d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out,
        seed=cfg.init_seed,
    )


def native_parameters(model: TransformerBridge) -> dict[str, torch.nn.Parameter]:
    """The model's trainable tensors under their native names (e.g. 'layers.0.attn.q.weight').

    These are the very Parameter objects the bridge computes with.
    """
    return {
        name.replace("_original_component.", ""): param
        for name, param in model.original_model.named_parameters()
    }


# Native weight names in TransformerLens' own init order, with their TL property names.
_WEIGHTS = (
    ("tok_embed.weight", "W_E"),
    ("pos.weight", "W_pos"),
    ("layers.0.attn.q.weight", "W_Q"),
    ("layers.0.attn.k.weight", "W_K"),
    ("layers.0.attn.v.weight", "W_V"),
    ("layers.0.attn.o.weight", "W_O"),
    ("layers.0.mlp.fc_in.weight", "W_in"),
    ("layers.0.mlp.fc_out.weight", "W_out"),
    ("head.weight", "W_U"),
)


def init_stds(cfg: RunConfig) -> dict[str, float]:
    """The initial std of every weight under ``cfg.init`` and ``cfg.init_scale``.

    Keys are TransformerLens property names (W_E, ..., W_U); every bias starts at zero.

    >>> stds = init_stds(RunConfig())  # paper: 1/sqrt(128), and W_U 1/sqrt(114)
    >>> round(stds["W_E"], 5), round(stds["W_U"], 5)
    (0.08839, 0.09366)
    """
    base = 0.8 / math.sqrt(cfg.d_model)  # legacy TransformerLens "gpt2" init
    if cfg.init == "paper":
        stds = {name: 1 / math.sqrt(cfg.d_model) for _, name in _WEIGHTS}
        stds["W_U"] = 1 / math.sqrt(cfg.d_vocab)
    elif cfg.init == "tl-demo":
        stds = {name: base for _, name in _WEIGHTS}
    else:  # native: residual-writing projections scaled by 1/sqrt(2 n_layers), n_layers = 1
        stds = {name: base for _, name in _WEIGHTS}
        stds["W_O"] = stds["W_out"] = base / math.sqrt(2)
    return {name: std * cfg.init_scale for name, std in stds.items()}


@torch.no_grad()
def _initialise(model: TransformerBridge, cfg: RunConfig) -> None:
    """Redraw every weight with :func:`init_stds` and zero every bias, in place.

    ``native`` keeps TransformerLens' own draws (scaled by init_scale); the other schemes
    draw standard normals on the CPU from a generator seeded with ``init_seed``, in
    TransformerLens' init order, so the weights do not depend on the device.
    """
    params = native_parameters(model)
    stds = init_stds(cfg)
    generator = torch.Generator().manual_seed(cfg.init_seed)
    for native, name in _WEIGHTS:
        param = params[native]
        if cfg.init == "native":
            param.mul_(cfg.init_scale)
        else:
            draw = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.copy_(draw * stds[name])
    for native, param in params.items():
        if native.endswith(".bias"):
            param.zero_()


def build_model(cfg: RunConfig, device: str | torch.device = "cpu") -> TransformerBridge:
    """Build the run's model with its seeded initialisation (``cfg.init``, ``init_scale``).

    Attention biases are held at zero and untrained; MLP biases are trained unless
    ``cfg.biases == "none"`` (the TransformerLens grokking-demo variant).
    """
    model = TransformerBridge.boot_native(bridge_config(cfg), device=device)
    _initialise(model, cfg)
    params = native_parameters(model)
    frozen = _ATTENTION_BIASES + (_MLP_BIASES if cfg.biases == "none" else ())
    for name in frozen:
        with torch.no_grad():
            params[name].zero_()
        params[name].requires_grad_(False)
    model.eval()  # no dropout exists; eval keeps behaviour explicit
    return model


def trainable_parameters(model: TransformerBridge) -> list[torch.nn.Parameter]:
    """Trainable parameters in a fixed (native name) order, so optimiser state is stable."""
    params = native_parameters(model)
    return [params[name] for name in sorted(params) if params[name].requires_grad]


def last_position_logits(
    model: TransformerBridge, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Logits at the '=' position for inputs [a, b, '='], computed for that position only.

    Equals ``model(make_tokens(a, b, p))[:, -1]``.  The query at the last position always
    sees the same token, so the query and the keys/values of each (position, token) are
    small tables; attention and the MLP then run for one position per example instead of
    three.  Shapes: a, b (N,) -> logits (N, d_vocab_out).
    """
    cfg = model.cfg
    return last_position_logits_from(
        native_parameters(model), a, b, n_heads=cfg.n_heads, act_fn=cfg.act_fn
    )


def last_position_logits_from(
    w: Mapping[str, torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    n_heads: int,
    act_fn: str,
) -> torch.Tensor:
    """:func:`last_position_logits` as a pure function of the weights ``w`` (native names,
    as :func:`native_parameters` gives them), so that ``torch.func.vmap`` can run it over
    a stack of models (grokinterp.sweep.ensemble).  Shapes: a, b (N,) -> logits (N, p).
    """
    p = w["head.weight"].shape[0]
    d_head = w["layers.0.attn.q.weight"].shape[0] // n_heads
    W_E, W_pos = w["tok_embed.weight"], w["pos.weight"]  # (d_vocab, d), (3, d)

    resid_a = W_E[:p] + W_pos[0]  # (p, d): position 0 holding token t
    resid_b = W_E[:p] + W_pos[1]  # (p, d): position 1 holding token t
    resid_eq = W_E[p] + W_pos[2]  # (d,): position 2 always holds '='

    def heads(x: torch.Tensor, which: str) -> torch.Tensor:
        out = F.linear(x, w[f"layers.0.attn.{which}.weight"], w[f"layers.0.attn.{which}.bias"])
        return out.unflatten(-1, (n_heads, d_head))

    q = heads(resid_eq, "q")  # (h, dh)
    scale = math.sqrt(d_head)
    score_a = einops.einsum(heads(resid_a, "k"), q, "t h dh, h dh -> t h") / scale
    score_b = einops.einsum(heads(resid_b, "k"), q, "t h dh, h dh -> t h") / scale
    score_eq = einops.einsum(heads(resid_eq, "k"), q, "h dh, h dh -> h") / scale
    scores = torch.stack(
        [score_a[a], score_b[b], score_eq.expand(a.shape[0], n_heads)], dim=-1
    )  # (N, h, 3)
    pattern = scores.softmax(dim=-1)

    v_a, v_b, v_eq = heads(resid_a, "v"), heads(resid_b, "v"), heads(resid_eq, "v")
    z = (
        pattern[..., 0:1] * v_a[a] + pattern[..., 1:2] * v_b[b] + pattern[..., 2:3] * v_eq
    )  # (N, h, dh)
    attn_out = F.linear(z.flatten(1), w["layers.0.attn.o.weight"], w["layers.0.attn.o.bias"])

    resid_mid = resid_eq + attn_out  # (N, d)
    act = F.relu if act_fn == "relu" else F.gelu
    hidden = act(F.linear(resid_mid, w["layers.0.mlp.fc_in.weight"], w["layers.0.mlp.fc_in.bias"]))
    resid_post = resid_mid + F.linear(
        hidden, w["layers.0.mlp.fc_out.weight"], w["layers.0.mlp.fc_out.bias"]
    )
    return F.linear(resid_post, w["head.weight"])  # (N, p)
