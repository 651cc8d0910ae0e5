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
from typing import NamedTuple

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
    "fsq_rows",
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


class _Constants(NamedTuple):
    """What the bound, the round and the index of every call share, per channel $(C,)$."""

    half_level: torch.Tensor
    negative_offset: torch.Tensor
    """$-o$, added to $h \tanh(z + s)$."""
    shift: torch.Tensor
    half_width: torch.Tensor
    place: torch.Tensor
    r"""$\prod_{c' < c} L_{c'}$, in the compute dtype (exact below $2^{24}$ codes)."""
    centre: torch.Tensor
    r"""$\sum_c \lfloor L_c / 2 \rfloor \prod_{c' < c} L_{c'}$, a 0-d tensor: the index of
    the rounded values $0$, so $k = \text{centre} + \sum_c \operatorname{round}(f_c)\,
    \text{place}_c$."""


_CACHE: dict[tuple[tuple[int, ...], torch.device, torch.dtype], _Constants] = {}


def _constants(levels: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> _Constants:
    r"""$h$, $o$, $s$, $\lfloor L/2 \rfloor$ and the index places, made once per levels,
    device and dtype (traced afresh under ``torch.compile``)."""
    if torch.compiler.is_compiling():
        return _compute_constants(levels, device, dtype)
    key = (levels, device, dtype)
    cached = _CACHE.get(key)
    if cached is None:  # ordinary tensors even if the first call runs in inference mode
        with torch.inference_mode(False), torch.no_grad():
            cached = _CACHE[key] = _compute_constants(levels, device, dtype)
    return cached


def _compute_constants(
    levels: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> _Constants:
    count = torch.tensor(levels, device=device, dtype=dtype)
    half_level = (count - 1) * (1 - FSQ_EPS) / 2
    offset = torch.where(torch.remainder(count, 2) == 0, 0.5, 0.0).to(dtype)
    shift = torch.tan(offset / half_level)  # as the reference code (module docstring)
    half_width = torch.floor(count / 2)
    places = [math.prod(levels[:c]) for c in range(len(levels))]
    centre = sum(place * (level // 2) for place, level in zip(places, levels, strict=True))
    place = torch.tensor(places, device=device, dtype=dtype)
    return _Constants(
        half_level,
        -offset,
        shift,
        half_width,
        place,
        torch.tensor(centre, device=device, dtype=dtype),
    )


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
    with torch.autocast(device_type=rows.device.type, enabled=False):
        return _bound(rows, levels)[0]


def _bound(rows: torch.Tensor, levels: tuple[int, ...]) -> tuple[torch.Tensor, _Constants]:
    """$f(z)$ of checked rows in the compute dtype, and the constants (autocast off)."""
    dtype = compute_dtype(rows.dtype)
    constants = _constants(levels, rows.device, dtype)
    # a multiply, then an add: a fused multiply-add would round differently from the formula
    bounded = torch.tanh(rows.to(dtype) + constants.shift) * constants.half_level
    return bounded + constants.negative_offset, constants


def _index(rounded: torch.Tensor, constants: _Constants, codebook_size: int) -> torch.Tensor:
    """Mixed-radix indices $(N,)$ of rounded rows $(N, C)$: one matrix-vector product, exact
    while the indices fit the compute dtype's integers; int64 digits beyond."""
    exact = round(2 / torch.finfo(rounded.dtype).eps)  # 2**24 in float32
    if codebook_size <= exact:
        return torch.addmv(constants.centre.expand(len(rounded)), rounded, constants.place).long()
    digits = (rounded + constants.half_width).long()
    return (digits * constants.place.long()).sum(-1)


def fsq_rows(
    rows: torch.Tensor, levels: tuple[int, ...], *, codes: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """`fsq_codes` without its checks, for a caller that has checked the rows and levels
    (`FSQ`'s forward); ``codes=False`` computes the indices only (no codes, no graph)."""
    with torch.autocast(device_type=rows.device.type, enabled=False):
        bounded, constants = _bound(rows, levels)
        rounded = torch.round(bounded.detach())
        indices = _index(rounded, constants, math.prod(levels))
        if not codes:
            return None, indices
        # straight-through round: the value is exactly `rounded`, the gradient that of `bounded`
        quantized = (rounded + (bounded - bounded.detach())) / constants.half_width
    return quantized, indices


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
    codes, indices = fsq_rows(_check_rows(inputs, levels), levels)
    assert codes is not None
    return codes, indices


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
    places = [math.prod(levels[:c]) for c in range(len(levels))]
    basis = torch.tensor(places, dtype=torch.int64, device=indices.device)
    count = torch.tensor(levels, dtype=torch.int64, device=indices.device)
    digits = torch.div(indices.long().unsqueeze(-1), basis, rounding_mode="floor") % count
    compute = compute_dtype(dtype)
    half_width = _constants(levels, indices.device, compute).half_width
    return ((digits.to(compute) - half_width) / half_width).to(dtype)
