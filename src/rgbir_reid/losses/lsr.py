"""Cross-entropy with label-smoothing regularisation (LSR) for marked samples (CE²L).

CE²L trains the identity classifier with hard labels on real images and with LSR on the
images converted by the CycleGAN, whose identity evidence is less reliable:
``q(c) = 1 − ε + ε/C`` if ``c = y``, else ``ε/C`` (Szegedy et al. 2016, as used by CE²L).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lsr_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    smooth: torch.Tensor,
    *,
    check_labels: bool = True,
) -> torch.Tensor:
    """Mean cross-entropy ``−Σ_c q(c) log p(c)`` with LSR targets only where ``smooth`` is set.

    Args:
        logits: classifier scores ``[N, C]`` (unnormalised).
        target: identity labels in ``0..C-1``, int ``[N]``.
        epsilon: smoothing ``ε`` in [0, 1]; ``0`` gives plain cross-entropy for every sample.
        smooth: bool ``[N]``; ``True`` marks samples whose target is
            ``q(c) = 1 − ε + ε/C`` for ``c = y`` and ``ε/C`` otherwise, ``False`` a one-hot target.
        check_labels: raise on a label outside ``0..C-1``. The check reads ``target`` back to
            the host (a GPU sync per call); a training loop whose labels are in range by
            construction checks them once and passes ``False``.

    Returns:
        Scalar, the loss averaged over the ``N`` samples.

    Raises:
        ValueError: on mismatched shapes, ``epsilon`` outside [0, 1] or (if ``check_labels``) a
            label outside ``0..C-1``.
    """
    if logits.ndim != 2 or target.shape != (logits.shape[0],) or smooth.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits [N, C], target [N], smooth [N]; got {tuple(logits.shape)}, "
            f"{tuple(target.shape)}, {tuple(smooth.shape)}"
        )
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    num_classes = logits.shape[1]
    if check_labels and target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"target labels must lie in 0..{num_classes - 1}")
    log_p = F.log_softmax(logits.float(), dim=1)
    nll = -log_p.gather(1, target.long().unsqueeze(1)).squeeze(1)  # −log p(y)
    uniform = -log_p.mean(dim=1)  # −(1/C) Σ_c log p(c)
    # −Σ q log p with q = (1−ε)·onehot + ε/C  =  (1−ε)·nll + ε·uniform
    smoothed = (1.0 - epsilon) * nll + epsilon * uniform
    return torch.where(smooth.to(torch.bool), smoothed, nll).mean()
