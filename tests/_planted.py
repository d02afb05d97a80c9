"""A hand-built one-layer model that runs the Fourier algorithm of Nanda et al. (2023).

Test-only code: :func:`write_planted_run` writes a run directory whose final checkpoint
holds these weights, so the analysis can be checked against a circuit whose key
frequencies, and whose losses, are known by construction.

The circuit, for key frequencies k with w_k = 2 pi k / p (residual stream of width
8K + 3 for K frequencies):

- Embedding: token t < p writes (cos w_k t, sin w_k t) into its own pair of "token"
  dimensions per frequency; '=' writes nothing there.  Positions write one-hot "position"
  dimensions (0, 1, '=').
- Attention: head 0 at '=' attends to position 0 (a) and head 1 to position 1 (b), with
  score 40 against 0 (query on the '=' dimension, key on the position dimension), so the
  other two positions get weight e^-40 ~ 4e-18 each.
  Each head copies the token dimensions into its own block, so the residual at '=' holds
  (cos w_k a, sin w_k a) and, separately, (cos w_k b, sin w_k b).
- MLP: per frequency, M^2 neurons indexed by phases alpha = 2 pi m / M, beta = 2 pi n / M,
  with pre-activation cos(w_k a - alpha) + cos(w_k b - beta) (no bias).  ReLU(x) =
  x/2 + |x|/2, and |cos u + cos v| = 2 |cos((u+v)/2)| |cos((u-v)/2)| carries
  cos(u + v) = cos(w_k (a + b) - alpha - beta), plus smaller harmonics.
- Read-out: neuron (alpha, beta) writes cos(w_k c - alpha - beta) to logit c (through two
  "logit" dimensions per frequency and W_U).  Summed over the M^2 phases, a term
  cos(x u + y v) of the activation survives only if x = y = 1 mod M (or -1): the main term
  gives (M^2/2) cos(w_k (a + b - c)), while the linear terms (x, y) = (1, 0), (0, 1) and
  the harmonics of a or b alone (2u, 2v) cancel exactly for M >= 3.  Different phases for
  a and b are why the two heads are needed: with one uniform head, a and b share the same
  dimensions and the 2u harmonic would survive as cos(w_k (2a - c)).

Each neuron keeps about 96% of its variance in its frequency's 8 terms (the rest is the
harmonics 2k, 3k, ...), so choose frequencies none of whose first harmonics fold onto
another key frequency.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch

from grokinterp import files
from grokinterp.config import RunConfig
from grokinterp.data import make_dataset
from grokinterp.model import build_model, native_parameters
from grokinterp.run import Run, load_run
from grokinterp.storage import atomic_write_text, metrics_header, save_tensors, write_json
from grokinterp.tasks import get_task

P = 31
FREQS = (2, 7, 13)  # harmonics 2k, 3k, 4k fold to 4 6 8 / 14 10 3 / 5 8 10: no collision
N_PHASES = 4  # M: M^2 neurons per frequency; M >= 3 cancels the linear terms and 2u, 2v
LOGIT_SCALE = 10.0  # p=31, k=2,7,13: smallest logit margin 11.8, loss 4e-8
ATTN_SCORE = 40.0  # attention score of the attended position: the others get e^-40
OUTSIDE_LOGIT = -30.0  # logit of an output outside the basis group (mul: c = 0)


def harmonic_collisions(p: int, freqs, orders=(2, 3, 4)) -> list[tuple[int, int, int]]:
    """(k, m, j): the harmonic m k of key frequency k folds onto another key frequency j.

    p: the length of the basis group (p, or p - 1 for the discrete log).  A harmonic that
    folds back onto k itself (the odd harmonics of a Nyquist frequency) stays in k's terms.
    """
    folded = {(k, m): min(m * k % p, -m * k % p) for k in freqs for m in orders}
    return [(k, m, j) for (k, m), j in folded.items() if j in freqs and j != k]


def basis_angles(cfg: RunConfig) -> tuple[int, torch.Tensor]:
    """(n, coord): the task basis' group size and each residue's coordinate (float64, NaN
    outside the group: residue 0 for the discrete log).  For add: (p, 0 .. p-1)."""
    basis = get_task(cfg.operation).basis(cfg.p)
    coord = torch.full((cfg.p,), float("nan"), dtype=torch.float64)
    coord[basis.residue] = torch.arange(basis.n, dtype=torch.float64)
    return basis.n, coord


def planted_config(p: int = P, freqs=FREQS, n_phases: int = N_PHASES, **changes) -> RunConfig:
    """The model shape the circuit needs: d_model 8K + 3, 2 heads of width 2K, K M^2 neurons."""
    n = len(freqs)
    shape = dict(
        p=p,
        d_model=8 * n + 3,
        n_heads=2,
        d_head=2 * n,
        d_mlp=n * n_phases**2,
        epochs=100,
        checkpoints="every:100",
        name="planted",
    )
    return RunConfig(**{**shape, **changes})


@torch.no_grad()
def plant(
    model, cfg: RunConfig, freqs=FREQS, n_phases: int = N_PHASES, phase_offset: float = 0.0
) -> None:
    """Overwrite every weight and bias of ``model`` (built from ``cfg``) with the circuit.

    The circuit lives in the task's basis (``cfg.operation``): for mul, token t and output c
    sit at angle w_k log t (w_k = 2 pi k / (p - 1)), and token 0 and output 0 get zero rows.
    ``phase_offset`` shifts every neuron phase (pi / 4 keeps a Nyquist frequency's neurons
    alive: with phases 0, pi/2, ... some would see cos(alpha) = cos(beta) = 0).
    """
    p, n, d_head = cfg.p, len(freqs), cfg.d_head
    n_group, coord = basis_angles(cfg)
    if cfg.d_model < 8 * n + 3 or cfg.n_heads != 2 or d_head < 2 * n:
        raise ValueError(f"the circuit for {n} frequencies needs {planted_config(p, freqs)}")
    if cfg.d_mlp != n * n_phases**2:
        raise ValueError(f"d_mlp must be {n * n_phases**2} for {n} frequencies, M={n_phases}")
    if harmonic_collisions(n_group, freqs):
        raise ValueError(
            f"harmonics (k, m, m k mod p) {harmonic_collisions(n_group, freqs)} land on key "
            f"frequencies {freqs}: the neurons would leak into them; choose others"
        )
    # residual dimensions: token (2K), position 0, 1, '=', head-0 copy (2K), head-1 copy
    # (2K), logit read-out (2K)
    pos0, pos1, eq = 2 * n, 2 * n + 1, 2 * n + 2
    copy_a, copy_b, logit = 2 * n + 3, 4 * n + 3, 6 * n + 3
    w = native_parameters(model)
    for param in w.values():
        param.zero_()
    W_E, W_U = w["tok_embed.weight"], w["head.weight"]  # (d_vocab, d), (p, d)
    for i, k in enumerate(freqs):
        angle = 2 * math.pi * k * coord / n_group  # NaN outside the group
        cos, sin = angle.cos().nan_to_num(0.0), angle.sin().nan_to_num(0.0)
        if 2 * k == n_group:
            sin = torch.zeros_like(sin)  # sin(pi x) = 0; avoid float residue
        W_E[:p, 2 * i], W_E[:p, 2 * i + 1] = cos, sin
        W_U[:, logit + 2 * i] = LOGIT_SCALE * cos
        W_U[:, logit + 2 * i + 1] = LOGIT_SCALE * sin
    w["pos.weight"][[0, 1, 2], [pos0, pos1, eq]] = 1.0
    if torch.isnan(coord).any():  # residues outside the group (0 for the discrete log)
        # never the answer on the basis pairs: a fixed low logit, read from the '=' position
        W_U[torch.isnan(coord), eq] = OUTSIDE_LOGIT

    W_Q, W_K = w["layers.0.attn.q.weight"], w["layers.0.attn.k.weight"]  # (h*dh, d)
    W_V, W_O = w["layers.0.attn.v.weight"], w["layers.0.attn.o.weight"]  # (h*dh, d), (d, h*dh)
    gain = math.sqrt(ATTN_SCORE * math.sqrt(d_head))  # q.k / sqrt(d_head) = ATTN_SCORE
    for head, (pos, out) in enumerate([(pos0, copy_a), (pos1, copy_b)]):
        W_Q[head * d_head, eq] = gain
        W_K[head * d_head, pos] = gain
        for j in range(2 * n):
            W_V[head * d_head + j, j] = 1.0
            W_O[out + j, head * d_head + j] = 1.0

    W_in, W_out = w["layers.0.mlp.fc_in.weight"], w["layers.0.mlp.fc_out.weight"]  # (m, d), (d, m)
    phases = [2 * math.pi * m / n_phases + phase_offset for m in range(n_phases)]
    neurons = itertools.product(range(n), phases, phases)
    for neuron, (i, alpha, beta) in enumerate(neurons):
        W_in[neuron, copy_a + 2 * i] = math.cos(alpha)
        W_in[neuron, copy_a + 2 * i + 1] = math.sin(alpha)
        W_in[neuron, copy_b + 2 * i] = math.cos(beta)
        W_in[neuron, copy_b + 2 * i + 1] = math.sin(beta)
        W_out[logit + 2 * i, neuron] = math.cos(alpha + beta)
        W_out[logit + 2 * i + 1, neuron] = math.sin(alpha + beta)


def planted_model(cfg: RunConfig, freqs=FREQS, n_phases: int = N_PHASES, phase_offset=0.0):
    model = build_model(cfg)
    plant(model, cfg, freqs, n_phases, phase_offset)
    return model


def write_planted_run(
    out_dir: str | Path, freqs=FREQS, n_phases: int = N_PHASES, phase_offset=0.0, **changes
) -> Run:
    """A run directory: the seeded initial weights at epoch 0, the circuit at the last epoch.

    ``changes`` go to :func:`planted_config` (p, frac_train, ...).
    The metrics file holds only its header (nothing was trained).
    """
    cfg = planted_config(freqs=freqs, n_phases=n_phases, **changes)
    out = Path(out_dir)
    data = make_dataset(cfg)
    atomic_write_text(out / files.CONFIG, cfg.to_json() + "\n")
    write_json(out / files.SPLIT, {"train_idx": data.train_idx.tolist()})
    atomic_write_text(out / files.METRICS, metrics_header())
    model = build_model(cfg)
    for epoch in (0, cfg.epochs):
        if epoch:
            plant(model, cfg, freqs, n_phases, phase_offset)
        meta = {"format": files.CHECKPOINT_FORMAT, "epoch": str(epoch)}
        save_tensors(files.checkpoint_path(out, epoch), model.state_dict(), meta)
    return load_run(out)
