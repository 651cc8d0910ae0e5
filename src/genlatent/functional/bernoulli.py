"""Bernoulli likelihood computed from logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlatent._validation import (
    check_finite,
    check_floating,
    check_same_shape,
    check_unit_interval,
)
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = ["bernoulli_log_likelihood"]


def bernoulli_log_likelihood(
    x: torch.Tensor,
    logits: torch.Tensor,
    *,
    reduction: str = "none",
    validate: bool | None = None,
) -> torch.Tensor:
    r"""Log-likelihood of $x \in [0, 1]$ under independent Bernoullis with the given logits.

    Summed over every non-batch dimension, computed from logits so it stays finite for
    saturated decoders (no $\log 0$):

    $$\log p(x) = \sum_i x_i \log \sigma(\ell_i) + (1 - x_i)\log(1 - \sigma(\ell_i))
      = -\sum_i \operatorname{BCE}(\ell_i, x_i).$$

    Its negative with ``reduction="sum"`` is the tutorial's
    ``F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")``.
    Grey levels in $[0, 1]$ are accepted (the continuous relaxation used for MNIST).

    Args:
        x: targets in $[0, 1]$.
        logits: the decoder's logits $\ell$, same shape.
        reduction: over the batch (first) dimension.

        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).
    Returns:
        Log-likelihood in nats: shape $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if ``x`` or ``logits`` is not a floating-point tensor.
        ValueError: on mismatched shapes, a scalar ``x``, an unknown ``reduction``, or
            (while `set_validate_args` is on) ``x`` outside $[0, 1]$ or non-finite logits
            (a target outside $[0, 1]$ gives a number that is no log-likelihood).

    Shape:
        - x, logits: $(B, *)$
        - output: $(B,)$ or $()$

    Example:
        >>> x = torch.tensor([[1.0, 0.0]])
        >>> bernoulli_log_likelihood(x, torch.zeros(1, 2))  # 2 log(1/2)
        tensor([-1.3863])
    """
    check_floating("x", x)
    check_floating("logits", logits)
    check_same_shape("x", x, "logits", logits)
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    check_unit_interval("x", x, validate)
    check_finite("logits", logits, validate)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    per_example = -sum_non_batch(bce)
    return reduce_batch(per_example, reduction)
