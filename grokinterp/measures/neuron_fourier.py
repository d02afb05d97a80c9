"""Per-neuron Fourier structure: the inverse participation ratio (IPR) of each neuron's
input spectrum, and the phase alignment of its input and output weights.

After the single-frequency analysis of two-layer networks on modular addition by He et
al. (2026), where a trained neuron m reads cos(w_k a + phi_m) + cos(w_k b + phi_m) and
writes cos(w_k c + psi_m) with psi_m = 2 phi_m ("phase alignment"): the ReLU's square term
turns cos(w (a + b) + 2 phi_m) into a vote for c = a + b only when psi_m = 2 phi_m.
Definitions: docs/measures.md, "Neuron IPR and phase alignment".

In the one-layer transformer a neuron's **input weights** are its read of a token through
the attention's OV circuit, theta_m(t) = W_in[m] . W_O W_V W_E[t] (all heads summed; the
positional embedding and the attention pattern only add a constant and a scale), and its
**output weights** are W_L[m, c] = W_out[m] . W_U[:, c].  With the Fourier power
P_k = C_k^2 + S_k^2 of theta_m at the frequencies k = 1 .. (p - 1) / 2:

- IPR_m = sum_k P_k^2 / (sum_k P_k)^2: 1 for a single frequency, 2 / (p - 1) for a flat
  spectrum;
- phi_m, psi_m: the phases of theta_m and of W_L[m, :] at the neuron's dominant input
  frequency k_m (x ~ A cos(w t + phase)); alignment_m = cos(psi_m - 2 phi_m), 1 when
  aligned, near 0 on average for unrelated phases.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fourier_coefficients", "neuron_ipr", "ov_input_weights", "phase_alignment"]


def ov_input_weights(weights: dict[str, torch.Tensor], p: int) -> torch.Tensor:
    """theta (..., d_mlp, p): W_in W_O W_V W_E[t]^T for the tokens t < p, from
    TransformerLens-keyed weights (nn.Linear layout; optional leading axes)."""
    W_E = weights["embed.weight"][..., :p, :].double()  # (..., p, d)
    W_V = weights["blocks.0.attn.v.weight"].double()  # (..., h dh, d)
    W_O = weights["blocks.0.attn.o.weight"].double()  # (..., d, h dh)
    W_in = weights["blocks.0.mlp.in.weight"].double()  # (..., d_mlp, d)
    return W_in @ W_O @ W_V @ W_E.transpose(-1, -2)


def fourier_coefficients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """C_k = sum_t x_t cos(w_k t), S_k = sum_t x_t sin(w_k t) for k = 1 .. (p - 1) / 2:
    x (..., p) -> two (..., (p - 1) / 2) float64 tensors."""
    p = x.shape[-1]
    k = torch.arange(1, (p - 1) // 2 + 1, dtype=torch.float64)
    angle = 2 * math.pi / p * k[:, None] * torch.arange(p, dtype=torch.float64)  # (K, p)
    x = x.double()
    return x @ angle.cos().T, x @ angle.sin().T


def neuron_ipr(theta: torch.Tensor) -> torch.Tensor:
    """IPR of each row's Fourier power spectrum: theta (..., n, p) -> (..., n) float64.

    >>> t = torch.arange(11, dtype=torch.float64)
    >>> round(float(neuron_ipr(torch.cos(2 * math.pi * 3 / 11 * t + 0.4)[None])[0]), 6)
    1.0
    """
    c, s = fourier_coefficients(theta)
    power = c**2 + s**2
    return (power**2).sum(-1) / power.sum(-1).clamp_min(1e-300) ** 2


def phase_alignment(theta: torch.Tensor, W_L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos(psi_m - 2 phi_m), amplitude weight) per neuron: theta, W_L (..., n, p) ->
    two (..., n) float64.  The weight is the product of the input and output amplitudes at
    the neuron's dominant input frequency, for the amplitude-weighted mean."""
    c_in, s_in = fourier_coefficients(theta)
    c_out, s_out = fourier_coefficients(W_L)
    k = (c_in**2 + s_in**2).argmax(-1, keepdim=True)  # (..., n, 1) dominant input frequency

    def at(x: torch.Tensor) -> torch.Tensor:
        return x.gather(-1, k).squeeze(-1)

    phi = torch.atan2(-at(s_in), at(c_in))  # x ~ A cos(w t + phi): C ~ cos phi, S ~ -sin phi
    psi = torch.atan2(-at(s_out), at(c_out))
    weight = torch.hypot(at(c_in), at(s_in)) * torch.hypot(at(c_out), at(s_out))
    return torch.cos(psi - 2 * phi), weight
