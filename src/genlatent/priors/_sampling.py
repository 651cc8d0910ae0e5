"""Temperature, top-k and top-p (nucleus) filtering of logits, shared by every prior.

Both priors draw one code per position from the categorical distribution over the
codebook that their logits define; these helpers reshape that distribution first.
"""

from __future__ import annotations

import math

import torch

from genlatent._sums import accumulator_dtype

__all__ = ["check_sampling_args", "draw", "filter_logits"]


def check_sampling_args(
    temperature: object, top_k: object, top_p: object
) -> tuple[float, int | None, float | None]:
    """Validate the sampling options; return them as ``(float, int | None, float | None)``.

    Raises:
        TypeError: if ``temperature`` or ``top_p`` is not a real number, or ``top_k`` not an int.
        ValueError: if ``temperature <= 0`` (or not finite), ``top_k < 1``, or ``top_p`` is
            outside $(0, 1]$.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a float, got {type(temperature).__name__}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be > 0 and finite, got {temperature}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise TypeError(f"top_k must be an int or None, got {type(top_k).__name__}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)):
            raise TypeError(f"top_p must be a float or None, got {type(top_p).__name__}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    return (
        float(temperature),
        top_k,
        None if top_p is None else float(top_p),
    )


def filter_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    r"""Divide by the temperature, then keep the top-k, then the top-p codes; mask the rest.

    With $\ell$ the logits, the returned logits are $\ell / \tau$ where a code is kept
    and $-\infty$ elsewhere. A code is kept if it is among the ``top_k`` largest (ties at
    the k-th value are all kept) and, sorting the tempered probabilities
    $p_{(1)} \ge p_{(2)} \ge \dots$, if the mass before it is below ``top_p``:
    $\sum_{j < i} p_{(j)} < p$ (Holtzman et al. 2020). The most likely code is always kept.
    Computed in float32 at least.

    Args:
        logits: unnormalised log-probabilities over the codebook.
        temperature: $\tau > 0$; below 1 sharpens, above 1 flattens.
        top_k: keep this many codes (all if ``None`` or at least $K$).
        top_p: keep the smallest set of most likely codes whose mass reaches ``top_p``
            (all if ``None`` or 1).

    Returns:
        The filtered logits, float32 or float64.

    Shape:
        - logits: $(N, K)$
        - output: $(N, K)$

    Example:
        >>> import torch
        >>> filter_logits(torch.tensor([[0.0, 1.0, 2.0]]), top_k=2)
        tensor([[-inf, 1., 2.]])
    """
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    logits = logits / temperature
    num_codes = logits.shape[-1]
    if top_k is not None and top_k < num_codes:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def draw(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    r"""One code per row from the filtered categorical distribution, ``(N, K) -> (N,)`` int64.

    By inversion of the cumulative distribution: with $u \sim U[0, 1)$ (one
    ``torch.rand`` per row, from ``generator``) and $C_k = \sum_{j \le k} p_j$ in
    float64 on the CPU, the code is the first $k$ with $C_k > u\, C_{K-1}$, so a code of
    probability 0 is never drawn (float32 on other devices: MPS has no float64, and a
    code of probability 0 still adds nothing to $C$). On a CPU this costs a fraction of
    ``torch.multinomial``, which draws $K$ exponentials per row.
    """
    filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    exact = accumulator_dtype(filtered.device)  # float64 on the CPU; MPS has none
    cumulative = torch.softmax(filtered.to(exact), dim=-1).cumsum(dim=-1)
    uniform = torch.rand(
        (*cumulative.shape[:-1], 1), generator=generator, dtype=exact, device=cumulative.device
    )
    codes = torch.searchsorted(cumulative, uniform * cumulative[..., -1:], right=True)
    return codes.squeeze(-1).clamp_(max=cumulative.shape[-1] - 1)
