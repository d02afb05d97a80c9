"""Weight-norm decay after memorisation: what pure weight decay predicts.

Theory (SPEC, "Theory to check against"; Nanda et al. 2023 section 3.2 and the seeds it
cites): once the training loss is tiny its gradient is small, and AdamW's decoupled weight
decay dominates the update ``theta <- theta - lr * wd * theta``.  Per full-batch step the
parameters then shrink as ``exp(-lr * wd * t)``, so the *sum of squared weights* shrinks as
``exp(-2 * lr * wd * t)``.  The gradient pushes back, so a measured rate below that bound
shows how much the loss still resists the decay.  The fit to a run's curve is
:func:`grokinterp.phases.fit_weight_decay`.
"""

from __future__ import annotations


def predicted_sq_norm_rate(lr: float, weight_decay: float) -> float:
    """Decay rate per epoch of the sum of squared weights under pure weight decay.

    >>> predicted_sq_norm_rate(1e-3, 1.0)
    0.002
    """
    return 2.0 * lr * weight_decay
