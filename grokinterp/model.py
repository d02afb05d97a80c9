"""The one place a model is built, and its fast last-position logits for training.

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
from functools import partial

import torch
import transformer_lens.model_bridge.sources  # noqa: F401  (attaches boot_native)
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from grokinterp.config import RunConfig
from grokinterp.forward import last_position

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
    model.attn_coeff = cfg.attn_coeff  # read by last_position_logits
    if cfg.attn_coeff != 1:
        # model(tokens) and run_with_cache see the mixed pattern too (hook_pattern reports it)
        model.add_perma_hook("blocks.0.attn.hook_pattern", partial(_mix_pattern, cfg.attn_coeff))
    return model


def _mix_pattern(attn_coeff: float, pattern: torch.Tensor, hook=None) -> torch.Tensor:
    """attn_coeff x pattern + (1 - attn_coeff) x causal-uniform: query position q attends
    1/(q+1) to each position <= q.  pattern (B, h, q, k)."""
    n_q, n_k = pattern.shape[-2:]
    causal = torch.ones(n_q, n_k, dtype=pattern.dtype, device=pattern.device).tril()
    uniform = causal / causal.sum(-1, keepdim=True)  # (q, k)
    return attn_coeff * pattern + (1 - attn_coeff) * uniform


def trainable_parameters(model: TransformerBridge) -> list[torch.nn.Parameter]:
    """Trainable parameters in a fixed (native name) order, so optimiser state is stable."""
    params = native_parameters(model)
    return [params[name] for name in sorted(params) if params[name].requires_grad]


# Native name prefixes -> TransformerLens state-dict prefixes (the same tensors).
_TL_PREFIXES = (
    ("tok_embed.", "embed."),
    ("pos.", "pos_embed."),
    ("layers.0.mlp.fc_in.", "blocks.0.mlp.in."),
    ("layers.0.mlp.fc_out.", "blocks.0.mlp.out."),
    ("layers.", "blocks."),
    ("head.", "unembed."),
)


def tl_name(native: str) -> str:
    """The TransformerLens state-dict key of a native parameter name.

    >>> tl_name("layers.0.mlp.fc_in.weight"), tl_name("head.weight")
    ('blocks.0.mlp.in.weight', 'unembed.weight')
    """
    for old, new in _TL_PREFIXES:
        if native.startswith(old):
            return new + native[len(old) :]
    raise KeyError(f"no TransformerLens key for native parameter {native!r}")


def tl_parameters(model: TransformerBridge) -> dict[str, torch.nn.Parameter]:
    """The model's Parameters under their TransformerLens state-dict keys (autograd intact)."""
    return {tl_name(name): param for name, param in native_parameters(model).items()}


def last_position_logits(
    model: TransformerBridge, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Logits at the '=' position for inputs [a, b, '='], computed for that position only.

    Equals ``model(make_tokens(a, b, p))[:, -1]``; the forward pass is
    :func:`grokinterp.forward.last_position` on the model's own Parameters.
    Shapes: a, b (N,) -> logits (N, d_vocab_out).
    """
    cfg = model.cfg
    attn_coeff = getattr(model, "attn_coeff", 1.0)  # set by build_model
    return last_position(
        tl_parameters(model), a, b, cfg.n_heads, cfg.act_fn, attn_coeff=attn_coeff
    ).logits
