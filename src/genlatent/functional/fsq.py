r"""Finite scalar quantization maths (FSQ, Mentzer et al. 2023, "Finite Scalar Quantization:
VQ-VAE Made Simple", appendix A.1).

Each of the $C$ channels of a row is bounded to an interval that holds $L_c$ integers
(``levels[c]``), rounded with the straight-through estimator and scaled to $[-1, 1]$. The
implied codebook is the grid of $\prod_c L_c$ points; it is never stored. As in the
paper's reference code (appendix A.1), with $\epsilon = 10^{-3}$:

$$h_c = \tfrac{(L_c - 1)(1 - \epsilon)}{2}, \quad
  o_c = \begin{cases} 0 & L_c \text{ odd} \\ \tfrac12 & L_c \text{ even} \end{cases}, \quad
  s_c = \tan(o_c / h_c), \quad
  f(z)_c = h_c \tanh(z_c + s_c) - o_c,$$

$$\hat z_c = \operatorname{round}(f(z)_c) / \lfloor L_c / 2 \rfloor .$$

For odd $L_c$ the rounded values are the $L_c$ integers $-\lfloor L_c/2 \rfloor, \ldots,
\lfloor L_c/2 \rfloor$. For even $L_c$ the bound is shifted down by half a level, so the
rounded values are $-L_c/2, \ldots, L_c/2 - 1$: $L_c$ integers whose grid, shifted back up
by $o_c = 1/2$, is symmetric around 0 ($L_c = 4$: rounded $\{-2, -1, 0, 1\}$, codes
$\{-1, -\tfrac12, 0, \tfrac12\}$).

**The shift.** The reference code writes $s_c = \tan(o_c / h_c)$, which is kept here so the
codes are the paper's. The shift that would put $f(0)$ exactly at 0 is
$\operatorname{artanh}(o_c / h_c)$; the two agree to third order in $o_c / h_c$ (for
$L_c = 4$: 0.34663 against 0.34695, so $f(0) = -4.3 \cdot 10^{-4}$, still code 0), and
only $\tan$ is defined for $L_c = 2$, where $o_c / h_c = 1/(1-\epsilon) > 1$: there
$f(0) \approx -0.043$ (code 0) and the boundary between the codes $-1$ and $0$ lies at
$z_c = -\tan(o_c/h_c) \approx -1.56$, not at 0. (vector-quantize-pytorch uses
$\operatorname{artanh}$ with $1 + \epsilon$, and rejects $L_c = 2$ unless asked for its
symmetric variant.)

**Indices** are mixed-radix numbers with the first channel the least significant digit
(as the reference code): with digits $d_c = \operatorname{round}(f(z)_c) +
\lfloor L_c/2 \rfloor \in \{0, \ldots, L_c - 1\}$,

$$k = \sum_c d_c \prod_{c' < c} L_{c'} .$$

Everything runs in at least float32 with autocast disabled (float64 stays float64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genlatent._validation import check_floating, check_ndim
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.quantize import _check_integer

__all__ = [
    "FSQ_EPS",
    "check_levels",
    "fsq_bound",
    "fsq_codes",
    "fsq_codes_from_indices",
]

FSQ_EPS = 1e-3
"""The $\\epsilon$ of the bound: keeps $h_c \\tanh$ strictly inside the outer half levels."""


def check_levels(levels: object) -> tuple[int, ...]:
    """Require a non-empty sequence of ints, each at least 2; return it as a tuple."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise TypeError(f"levels must be a sequence of ints, got {type(levels).__name__}")
    if len(levels) == 0:
        raise ValueError("levels must hold at least one level count, got an empty sequence")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(
                f"levels must be a sequence of ints, got {type(level).__name__} in {levels!r}"
            )
        if level < 2:
            raise ValueError(f"levels must each be >= 2, got {list(levels)}")
    return tuple(levels)


def _constants(
    levels: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """$h$, $o$, $s$ and $\\lfloor L/2 \\rfloor$ per channel, $(C,)$ each."""
    count = torch.tensor(levels, device=device, dtype=dtype)
    half_level = (count - 1) * (1 - FSQ_EPS) / 2
    offset = torch.where(torch.remainder(count, 2) == 0, 0.5, 0.0).to(dtype)
    shift = torch.tan(offset / half_level)  # as the reference code (module docstring)
    half_width = torch.floor(count / 2)
    return half_level, offset, shift, half_width


def _check_rows(inputs: object, levels: tuple[int, ...]) -> torch.Tensor:
    rows = check_floating("inputs", inputs)
    check_ndim("inputs", rows, (2,), f"(N, C) with C={len(levels)}")
    if rows.shape[1] != len(levels):
        raise ValueError(
            f"inputs must have C={len(levels)} channels (one per level) in dim 1, "
            f"got shape {tuple(rows.shape)}"
        )
    return rows


def fsq_bound(inputs: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    r"""The bound $f(z)_c = h_c \tanh(z_c + s_c) - o_c$ before rounding (module docstring).

    Args:
        inputs: rows $z$, one column per level.
        levels: $L_c \ge 2$ per channel.

    Returns:
        $f(z)$ in at least float32, differentiable; rounding it gives the digits minus
        $\lfloor L_c / 2 \rfloor$.

    Raises:
        TypeError: on a non-float ``inputs`` or levels that are not ints.
        ValueError: on a shape other than $(N, C)$ with $C$ = ``len(levels)``, or a level < 2.

    Shape:
        - inputs: $(N, C)$
        - output: $(N, C)$

    Example:
        >>> import torch
        >>> # L = 4 maps 0 to -4.3e-4 (the reference code's tan shift), still code 0
        >>> fsq_bound(torch.tensor([[0.0, 0.0], [50.0, -50.0]]), [5, 4])
        tensor([[ 0.0000e+00, -4.2850e-04],
                [ 1.9980e+00, -1.9985e+00]])
    """
    levels = check_levels(levels)
    rows = _check_rows(inputs, levels)
    dtype = compute_dtype(rows.dtype)
    with torch.autocast(device_type=rows.device.type, enabled=False):
        half_level, offset, shift, _ = _constants(levels, rows.device, dtype)
        return torch.tanh(rows.to(dtype) + shift) * half_level - offset


def fsq_codes(inputs: torch.Tensor, levels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Quantize rows to the FSQ grid: codes $\hat z$ with a straight-through round, and indices.

    The value is $\operatorname{round}(f(z)) / \lfloor L/2 \rfloor$ exactly; the gradient
    skips the round (straight-through) but not the bound:
    $\partial \hat z_c / \partial z_c = h_c (1 - \tanh^2(z_c + s_c)) / \lfloor L_c/2 \rfloor$.

    Args:
        inputs: rows $z$, one column per level.
        levels: $L_c \ge 2$ per channel.

    Returns:
        ``(codes, indices)``: codes in $[-1, 1]$ in at least float32, and the mixed-radix
        indices (module docstring), int64 in $[0, \prod_c L_c)$.

    Raises:
        TypeError: on a non-float ``inputs`` or levels that are not ints.
        ValueError: on a shape other than $(N, C)$ with $C$ = ``len(levels)``, or a level < 2.

    Shape:
        - inputs: $(N, C)$, e.g. $(128, 3)$ for levels $[8, 6, 5]$
        - output: $(N, C)$ and $(N,)$

    Example:
        >>> import torch
        >>> codes, indices = fsq_codes(torch.tensor([[0.0, 0.0], [50.0, -50.0]]), [5, 4])
        >>> codes
        tensor([[ 0.,  0.],
                [ 1., -1.]])
        >>> indices  # digits (2, 2) and (4, 0), the first channel least significant
        tensor([12,  4])
    """
    levels = check_levels(levels)
    bounded = fsq_bound(inputs, levels)
    with torch.autocast(device_type=bounded.device.type, enabled=False):
        rounded = torch.round(bounded.detach())
        _, _, _, half_width = _constants(levels, bounded.device, bounded.dtype)
        # straight-through round: the value is exactly `rounded`, the gradient that of `bounded`
        codes = (rounded + (bounded - bounded.detach())) / half_width
        digits = (rounded + half_width).long()
    return codes, (digits * _basis(levels, digits.device)).sum(-1)


def _basis(levels: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """$\\prod_{c' < c} L_{c'}$ per channel, int64 $(C,)$."""
    places = [math.prod(levels[:c]) for c in range(len(levels))]
    return torch.tensor(places, dtype=torch.int64, device=device)


def fsq_codes_from_indices(
    indices: torch.Tensor,
    levels: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Grid codes of mixed-radix indices: $d_c = \lfloor k / \prod_{c'<c} L_{c'}\rfloor \bmod L_c$.

    Returns $\hat z_c = (d_c - \lfloor L_c/2 \rfloor) / \lfloor L_c/2 \rfloor$, bit for bit
    the codes `fsq_codes` gives for those indices.

    Args:
        indices: int indices in $[0, \prod_c L_c)$ (not checked: that reads the values).
        levels: $L_c \ge 2$ per channel.
        dtype: the floating dtype of the codes.

    Returns:
        The codes, one column per level.

    Raises:
        TypeError: on non-integer ``indices`` or levels that are not ints.
        ValueError: on a level < 2.

    Shape:
        - indices: $(*)$, e.g. $(N,)$
        - output: $(*, C)$

    Example:
        >>> import torch
        >>> fsq_codes_from_indices(torch.tensor([0, 17, 19]), [5, 4])
        tensor([[-1.0000, -1.0000],
                [ 0.0000,  0.5000],
                [ 1.0000,  0.5000]])
    """
    levels = check_levels(levels)
    _check_integer("indices", indices)
    basis = _basis(levels, indices.device)
    count = torch.tensor(levels, dtype=torch.int64, device=indices.device)
    digits = torch.div(indices.long().unsqueeze(-1), basis, rounding_mode="floor") % count
    compute = compute_dtype(dtype)
    _, _, _, half_width = _constants(levels, indices.device, compute)
    return ((digits.to(compute) - half_width) / half_width).to(dtype)
