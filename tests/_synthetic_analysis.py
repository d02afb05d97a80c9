"""A synthetic analysis table and summary with plausible grokking curves (no training).

Used by the plot and figure tests, and to time figure writing at p=113 scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokinterp.analysis.summary import weight_norm_fits

KEY_FREQS = (3, 5)
MEM_END, CIRC_END, CLEAN_END = 100.0, 400.0, 700.0
T_MEM, T_GROK = 40.0, 650.0


def synthetic_table(
    p: int = 13, n_checkpoints: int = 40, epochs: int = 1000, n_heads: int = 4, key_freqs=KEY_FREQS
) -> pd.DataFrame:
    """Tidy table (epoch, measure, key, value) with every measure the figures draw."""
    t = np.unique(np.round(np.linspace(0, epochs, n_checkpoints))).astype(int)
    rng = np.random.default_rng(0)
    s = 1 / (1 + np.exp(-(t - CIRC_END) / 60))  # circuit-formation sigmoid
    rows: list[tuple[int, str, str, float]] = []

    def add(measure: str, key, values) -> None:
        rows.extend((int(e), measure, str(key), float(v)) for e, v in zip(t, values, strict=True))

    train_loss = 4.6 * np.exp(-t / 30) + 1e-6
    test_loss = 4.6 + 6 * np.exp(-(((t - 150) / 120) ** 2)) - 4.6 * s + 1e-4
    add("train_loss", "", train_loss)
    add("test_loss", "", test_loss)
    add("train_acc", "", np.minimum(1, t / T_MEM))
    add("test_acc", "", s)
    n_freq = (p - 1) // 2
    for k in range(n_freq + 1):
        base = 1 + 0.1 * rng.random(len(t))
        grow = 4 * s if k in key_freqs else -0.9 * s
        add("embed_freq_norm", k, base + grow)
        add("wl_freq_norm", k, base + 0.8 * grow)
        add("neurons_per_freq", k, np.round(10 * s) if k in key_freqs else np.zeros(len(t)))
    add("gini_embed", "", 0.1 + 0.6 * s)
    add("gini_wl", "", 0.1 + 0.5 * s)
    add("restricted_loss", "all", 4.6 - 4.5 * s)
    add("restricted_loss", "train", 4.6 - 4.5 * s)
    add("restricted_loss", "test", 4.6 - 4.5 * s)
    add("excluded_loss", "all", train_loss + 5 * s)
    for k in key_freqs:
        add("excluded_loss", k, train_loss + 3 * s)
        add("logit_explained_var", k, 0.4 * s)
    add("logit_explained_var", "all", 0.85 * s)
    for h in range(n_heads):
        att_a = 0.33 + 0.1 * (h - 1.5) * s
        add("attn_to", f"h{h}:a", att_a)
        add("attn_to", f"h{h}:b", 0.33 - 0.05 * s)
        add("attn_to", f"h{h}:=", 1 - att_a - (0.33 - 0.05 * s))
    norm = np.where(t < MEM_END, 400 + 2 * t, 600 * np.exp(-2e-3 * (t - MEM_END)))
    add("weight_norm_sq", "total", norm)
    add("weight_norm_sq", "tok_embed.weight", 0.3 * norm)
    return pd.DataFrame(rows, columns=["epoch", "measure", "key", "value"])


def synthetic_summary(p: int = 13, d_mlp: int = 32, key_freqs=KEY_FREQS) -> dict:
    rng = np.random.default_rng(1)
    best = rng.choice(list(key_freqs) + [1], size=d_mlp).tolist()
    frac = np.clip(rng.normal(0.9, 0.08, d_mlp), 0, 1).tolist()
    frac[0] = float("nan")
    norms = synthetic_table(p=p).query("measure == 'weight_norm_sq' and key == 'total'")
    boundaries = {"memorisation_end": MEM_END, "circuit_formation_end": CIRC_END}
    boundaries["cleanup_end"] = CLEAN_END
    return {
        "key_frequencies": list(key_freqs),
        "phases": {
            "T_mem": {"epoch": T_MEM, "rule": "first epoch with train_acc >= 0.99"},
            "T_grok": {"epoch": T_GROK, "rule": "first epoch with test_acc >= 0.99"},
            "memorisation_end": {"epoch": MEM_END, "rule": "test loss peak"},
            "circuit_formation_end": {"epoch": CIRC_END, "rule": "excluded loss peak"},
            "cleanup_end": {"epoch": CLEAN_END, "rule": "95% of the Gini rise"},
        },
        "final": {"train_loss": 1e-6, "test_loss": 1e-4},
        "weight_norm_fits": weight_norm_fits(
            norms["epoch"].to_numpy(), norms["value"].to_numpy(), boundaries, 1e-3, 1.0
        ),
        "neurons": {"best_freq": best, "frac_explained": frac, "threshold": 0.85},
    }
