"""Clock or pizza: gradient symmetricity, distance irrelevance, and the run's class.

Zhong, Liu, Tegmark and Andreas (2023), "The Clock and the Pizza: Two Stories in
Mechanistic Explanation of Neural Networks" (arXiv:2306.17844), section 4.1, and their code
(the repository fjzzq2002/pizza, ``eval-main.ipynb``).  Definitions: docs/measures.md,
"Clock or pizza".

- **Distance irrelevance** q: lay the correct-class logit of each pair on a p x p grid
  indexed by (s, d) = ((a + b) mod p, (a - b) mod p); q = mean over d of (the standard
  deviation over s) / (the standard deviation over the whole grid).  A clock's correct
  logit does not depend on the distance a - b (q near 1); a pizza's is |cos(w_k d / 2)|
  times a constant, a function of d alone (q near 0).
- **Gradient symmetricity** g: for input triples (a, b, c), the cosine between the
  gradients of logit c with respect to the token embeddings of a (position 0) and of b
  (position 1), averaged over the triples.  A pizza reads E_a + E_b, so the two gradients
  agree (g near 1); a clock multiplies a-features by b-features, so each gradient is a
  function of the other input (g well below 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "CLASS_RULE",
    "DIST_IRR_THRESHOLD",
    "GRAD_SYM_THRESHOLD",
    "classify_circuit",
    "distance_irrelevance",
    "embedding_gradient_cosines",
    "sample_triples",
]

# This project's thresholds (fixed before the experiments; docs/measures.md).
GRAD_SYM_THRESHOLD = 0.9
DIST_IRR_THRESHOLD = 0.5
CLASS_RULE = (
    f"clock: gradient symmetricity < {GRAD_SYM_THRESHOLD} and distance irrelevance >= "
    f"{DIST_IRR_THRESHOLD}; pizza: gradient symmetricity >= {GRAD_SYM_THRESHOLD} and "
    f"distance irrelevance < {DIST_IRR_THRESHOLD}; mixed otherwise; read at the last "
    f"checkpoint, and only for a run whose final test accuracy is >= 0.99 (else none)"
)
N_TRIPLES = 128  # gradient symmetricity: random (a, b, c) triples (the reference uses 100)


def distance_irrelevance(correct_logits: torch.Tensor, p: int) -> torch.Tensor:
    """q of each checkpoint: correct_logits (..., p^2) of the pairs i = a p + b (the logit
    of the label (a + b) mod p) -> (...) float64.

    >>> a = torch.arange(7).repeat_interleave(7); b = torch.arange(7).repeat(7)
    >>> pizza = torch.cos(torch.pi * 2 / 7 * (a - b) / 2).abs()     # a function of d only
    >>> float(distance_irrelevance(pizza, 7)) < 1e-6
    True
    """
    x = correct_logits.double()
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    s, d = (a + b) % p, (a - b) % p
    grid = x.new_zeros(*x.shape[:-1], p, p)  # (..., s, d)
    grid[..., s, d] = x
    within = grid.std(dim=-2, correction=0).mean(-1)  # std over s at each d, mean over d
    return within / x.std(dim=-1, correction=0)


def sample_triples(p: int, n: int = N_TRIPLES, seed: int = 0) -> torch.Tensor:
    """n (a, b, c) triples drawn uniformly with a local generator: (n, 3) long."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, p, (n, 3), generator=generator)


def embedding_gradient_cosines(
    logit_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    emb_a: torch.Tensor,
    emb_b: torch.Tensor,
    c: torch.Tensor,
) -> torch.Tensor:
    """Per input, cos(d logit_c / d emb_a, d logit_c / d emb_b): (N,) float64.

    logit_fn: (emb_a (N, d), emb_b (N, d)) -> logits (N, p), each row depending on its own
    input's embeddings only; emb_a, emb_b (N, d); c (N,) the class whose logit is
    differentiated.  The mean over inputs is the gradient symmetricity.

    >>> u, v = torch.eye(2, dtype=torch.float64)
    >>> clock = lambda ea, eb: ((ea @ u) * (eb @ v))[:, None]      # a product: orthogonal
    >>> e = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    >>> embedding_gradient_cosines(clock, e, e.flip(0), torch.zeros(2, dtype=torch.long))
    tensor([0., 0.], dtype=torch.float64)
    """
    ea = emb_a.detach().double().requires_grad_(True)
    eb = emb_b.detach().double().requires_grad_(True)
    logits = logit_fn(ea, eb)  # (N, p)
    picked = logits.gather(-1, c[:, None]).sum()
    ga, gb = torch.autograd.grad(picked, (ea, eb))
    return torch.nn.functional.cosine_similarity(ga, gb, dim=-1, eps=1e-300)


def classify_circuit(grad_sym: float, dist_irr: float, final_test_acc: float | None) -> str:
    """ "clock", "pizza", "mixed" or "none" by :data:`CLASS_RULE`."""
    if final_test_acc is None or not final_test_acc >= 0.99:
        return "none"
    clockish = grad_sym < GRAD_SYM_THRESHOLD
    distance_free = dist_irr >= DIST_IRR_THRESHOLD
    if clockish and distance_free:
        return "clock"
    if not clockish and not distance_free:
        return "pizza"
    return "mixed"
