r"""The masking maths of MaskGIT (Chang et al. 2022): the cosine schedule, training masks,
the number of codes left masked after each sampling step, and confidence re-masking.

The schedule $\gamma(r) = \cos(\pi r / 2)$ falls from 1 at $r = 0$ to 0 at $r = 1$.
Training masks $\lceil \gamma(r) T \rceil$ of a grid's $T$ codes, $r \sim U(0, 1)$;
sampling in $S$ steps leaves $\lceil \gamma(s / S) T \rceil$ codes masked after step $s$.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cosine_schedule", "gumbel_noise", "random_mask", "remaining_masked"]


def cosine_schedule(ratio: torch.Tensor) -> torch.Tensor:
    r"""The fraction of codes masked at ratio $r \in [0, 1]$: $\gamma(r) = \cos(\pi r / 2)$.

    Example:
        >>> cosine_schedule(torch.tensor([0.0, 0.5])).tolist()
        [1.0, 0.7071067690849304]
    """
    return torch.cos(ratio * (math.pi / 2))


def random_mask(
    batch: int,
    num_positions: int,
    *,
    mask_ratio: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Which codes of each grid to mask, ``(B, T)`` bool: a uniformly random subset of each row.

    Without ``mask_ratio`` each grid draws $r \sim U(0, 1)$ and masks
    $n = \lceil \gamma(r)\, T \rceil$ codes (at least 1: $\gamma(r) > 0$ for $r < 1$), the
    training schedule of MaskGIT (sec. 3.2). With ``mask_ratio`` $\rho$ every grid masks
    $n = \max(1, \operatorname{round}(\rho T))$ codes, as `MaskGITPrior.loss` does at a
    fixed ratio. The $n$ positions are those of the $n$ smallest of $T$ uniforms, so every
    subset of size $n$ is equally likely. From ``generator``: the $B$ ratios first (when
    drawn), then the $B T$ uniforms.
    """
    if mask_ratio is None:
        ratio = torch.rand(batch, generator=generator, device=device)
        counts = torch.ceil(cosine_schedule(ratio) * num_positions).clamp(1, num_positions)
    else:
        count = min(num_positions, max(1, round(mask_ratio * num_positions)))
        counts = torch.full((batch,), count, device=device)
    scores = torch.rand(batch, num_positions, generator=generator, device=device)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < counts.long().unsqueeze(1)


def remaining_masked(num_positions: int, steps: int) -> list[int]:
    r"""How many of $T$ codes stay masked after each of $S$ sampling steps, $[n_1, \dots, n_S]$.

    $$n_s = \min\big(\lceil \gamma(s / S)\, T \rceil,\; n_{s-1} - 1\big), \quad n_0 = T,
      \quad n_S = 0:$$

    the cosine schedule (MaskGIT eq. 3), unmasking at least one code per step.
    $n_s \ge S - s$ for $S \le T$ (as $\gamma(x) \ge 1 - x$), so every step unmasks some.

    Example:
        >>> remaining_masked(49, 4)
        [46, 35, 19, 0]
    """
    counts, previous = [], num_positions
    for step in range(1, steps):
        previous = min(
            math.ceil(math.cos(math.pi * step / (2 * steps)) * num_positions), previous - 1
        )
        counts.append(previous)
    return [*counts, 0]


def gumbel_noise(
    shape: tuple[int, ...],
    *,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    r"""Standard Gumbel noise $-\log(-\log u)$, $u \sim U(0, 1)$ kept off 0 and 1."""
    tiny = torch.finfo(dtype).tiny
    uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return -torch.log(-torch.log(uniform.clamp(tiny, 1 - torch.finfo(dtype).eps)))
