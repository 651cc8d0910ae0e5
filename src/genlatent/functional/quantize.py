r"""Vector-quantization maths: nearest-code search, straight-through, VQ losses, EMA codebook.

The pieces of VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning")
as plain functions of tensors; `genlatent.nn.quantize.VectorQuantizer` holds the state and
calls them. Every function here works on rows: an encoder output of shape
$(B, D, H, W) = (2, 16, 8, 8)$ is first flattened to $N = B \cdot H \cdot W = 128$ rows of
$D = 16$ channels, $(128, 16)$, and quantized against a codebook $(K, D)$.

Distances, losses, counts and the EMA update run in at least float32 with autocast
disabled, whatever the input dtype: float16 and bfloat16 inputs are upcast to float32,
float64 inputs stay float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from genlatent._validation import (
    check_finite,
    check_floating,
    check_in_open_interval,
    check_ndim,
    check_positive_int,
    check_same_shape,
    check_tensor,
)
from genlatent.functional._dtype import compute_dtype
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = [
    "VQLosses",
    "code_counts",
    "counts_perplexity",
    "ema_codebook_update",
    "nearest_code",
    "straight_through",
    "vq_losses",
]

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class VQLosses(NamedTuple):
    """The two VQ-VAE loss terms (van den Oord et al. 2017, eq. 3), kept apart.

    Attributes:
        codebook: $\\lVert \\operatorname{sg}[z_e] - e \\rVert^2$, moves the codes.
        commitment: $\\lVert z_e - \\operatorname{sg}[e] \\rVert^2$, moves the encoder
            (weighted by ``commitment_weight``, beta in the paper, by the caller).
    """

    codebook: torch.Tensor
    commitment: torch.Tensor


class EMAUpdate(NamedTuple):
    """The new EMA statistics and codebook returned by `ema_codebook_update`.

    Attributes:
        cluster_size: $N_i$, the (uncorrected) moving average of the code counts, $(K,)$.
        embed_sum: $m_i$, the (uncorrected) moving average of the per-code sums, $(K, D)$.
        codebook: $e_i = \\hat m_i / N_i'$, the new codebook, $(K, D)$.
    """

    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    codebook: torch.Tensor


def _check_integer(name: str, value: object) -> torch.Tensor:
    tensor = check_tensor(name, value)
    if tensor.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"{name} must have an integer dtype, got {tensor.dtype}")
    return tensor


def _check_rows(name: str, tensor: torch.Tensor, layout: str) -> torch.Tensor:
    check_floating(name, tensor)
    check_ndim(name, tensor, (2,), layout)
    return tensor


def nearest_code(
    inputs: torch.Tensor,
    codebook: torch.Tensor,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Index of the nearest codebook row for every input row, in squared Euclidean distance.

    $$k_j = \operatorname*{arg\,min}_i \lVert x_j - e_i \rVert^2
          = \operatorname*{arg\,min}_i \left(\lVert e_i \rVert^2 - 2\, x_j \cdot e_i\right),$$

    one ``torch.addmm`` per chunk of codes; $\lVert x_j \rVert^2$ is the same for every code,
    so it is left out (it changes no index and would only cost precision). The search runs in
    at least float32 with autocast disabled, so float16, bfloat16 and autocast inputs get the
    indices that float32 copies of the same values get. Ties go to the smallest index, as
    ``torch.argmin``. Rows containing NaN get an unspecified index (in $[0, K)$), or,
    while `set_validate_args` is on, a ``ValueError``.

    With ``chunk_size`` the codes are visited ``chunk_size`` at a time, keeping a running
    minimum and its index, so memory is $N \times$ ``chunk_size`` distances rather than
    $N \times K$ (a codebook of 65,536 codes and 8,192 rows would otherwise take 2 GiB).
    The indices are the same as without chunking, except between codes whose distances
    are equal up to float rounding (exact duplicates, say), where blocks of different
    shapes may round differently and pick another code at the same distance. Past
    $2^{22}$ distances the rows are also searched in blocks of about $2^{20}$ (at least 64
    rows), which stay in cache (about 1.4x faster on a CPU for 131,072 rows and 512
    codes) and bound the distances held at once; rows are independent, so this changes
    no index beyond the same rounding caveat. Under ``torch.compile`` the compiler does
    its own blocking instead.

    Args:
        inputs: the rows $x_j$ to quantize (flatten a $(B, D, H, W)$ grid first).
        codebook: the codes $e_i$.
        chunk_size: codes per distance block; ``None`` does all $K$ at once.

    Returns:
        The indices, int64.

    Raises:
        TypeError: if ``inputs`` or ``codebook`` is not a floating-point tensor, or
            ``chunk_size`` is not an int.
        ValueError: on a shape that is not 2-D, differing $D$, an empty codebook,
            ``chunk_size < 1``, or (while `set_validate_args` is on) NaN or infinity in
            ``inputs`` or ``codebook``.

    Shape:
        - inputs: $(N, D)$, e.g. $(128, 16)$ for a $(2, 16, 8, 8)$ grid
        - codebook: $(K, D)$
        - output: $(N,)$

    Example:
        >>> import torch
        >>> codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [4.0, 0.0]])
        >>> nearest_code(torch.tensor([[0.9, 1.2], [3.0, 0.1], [-1.0, 0.0]]), codebook)
        tensor([1, 2, 0])
    """
    _check_rows("inputs", inputs, "(N, D)")
    _check_rows("codebook", codebook, "(K, D)")
    if inputs.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"inputs and codebook must have the same D (dim 1), got inputs shape "
            f"{tuple(inputs.shape)} and codebook shape {tuple(codebook.shape)}"
        )
    num_codes = codebook.shape[0]
    if num_codes == 0:
        raise ValueError(
            f"codebook must have at least one code (K >= 1), got shape (0, {codebook.shape[1]})"
        )
    chunk = num_codes if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_finite("inputs", inputs)
    check_finite("codebook", codebook)
    dtype = compute_dtype(inputs.dtype, codebook.dtype)
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        rows = inputs.detach().to(dtype)
        codes = codebook.detach().to(dtype)
        code_sq = codes.pow(2).sum(dim=1)
        width = min(chunk, num_codes)
        if rows.shape[0] * width <= _BLOCKING_FROM or _compiling():
            return _nearest_in_rows(rows, codes, code_sq, chunk)
        # rows in blocks whose distances stay in cache: ~1.4x faster at 131,072 x 512
        block_rows = max(_MIN_BLOCK_ROWS, _BLOCK_DISTANCES // width)
        return torch.cat(
            [
                _nearest_in_rows(rows[start : start + block_rows], codes, code_sq, chunk)
                for start in range(0, rows.shape[0], block_rows)
            ]
        )


# Past _BLOCKING_FROM distances (16 MiB of float32) the nearest-code search visits the
# rows in blocks of about _BLOCK_DISTANCES (4 MiB), so each block is still in cache when
# it is reduced. Not smaller blocks, nor below the threshold: every block costs each
# thread a synchronisation, which a busy machine makes dear.
_BLOCKING_FROM = 2**22
_BLOCK_DISTANCES = 2**20
_MIN_BLOCK_ROWS = 64


def _compiling() -> bool:
    """True while torch.compile traces (the compiler, not Python, should block then)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling()) if is_compiling is not None else False


def _nearest_in_rows(
    rows: torch.Tensor, codes: torch.Tensor, code_sq: torch.Tensor, chunk: int
) -> torch.Tensor:
    """The nearest code of each row, visiting the codes ``chunk`` at a time."""
    num_codes = codes.shape[0]
    best_dist, best_index = _nearest_in_block(rows, codes, code_sq, 0, min(chunk, num_codes))
    for start in range(chunk, num_codes, chunk):
        stop = min(start + chunk, num_codes)
        block_dist, block_index = _nearest_in_block(rows, codes, code_sq, start, stop)
        # strict < keeps the earlier (smaller) index on ties
        better = block_dist < best_dist
        best_dist = torch.where(better, block_dist, best_dist)
        best_index = torch.where(better, block_index, best_index)
    return best_index


def _nearest_in_block(
    rows: torch.Tensor, codes: torch.Tensor, code_sq: torch.Tensor, start: int, stop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min over codes ``[start, stop)`` of ``||e||^2 - 2 x.e`` and its (global) index."""
    dist = torch.addmm(code_sq[start:stop], rows, codes[start:stop].T, alpha=-2.0)
    block_dist, block_index = dist.min(dim=1)
    return block_dist, block_index + start


def straight_through(inputs: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    r"""Pass the value of ``quantized`` forward and the gradient to ``inputs`` unchanged.

    The straight-through estimator of VQ-VAE (van den Oord et al. 2017, section 3.2):

    $$y = x + \operatorname{sg}[q - x], \qquad \frac{\partial y}{\partial x} = I,$$

    with no gradient to $q$. It is computed as $\operatorname{sg}[q] + (x - \operatorname{sg}[x])$,
    the same function with the same gradient, whose value is exactly $q$ bit for bit
    (the textbook form can be one rounding off).

    Args:
        inputs: the encoder output $x$.
        quantized: its quantized value $q$, same shape; cast to ``inputs``' dtype.

    Returns:
        $q$ in ``inputs``' dtype, differentiable with respect to ``inputs`` only.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes differ.

    Shape:
        - inputs, quantized: $(*)$
        - output: $(*)$

    Example:
        >>> import torch
        >>> x = torch.tensor([0.2, 0.9], requires_grad=True)
        >>> y = straight_through(x, torch.tensor([0.0, 1.0]))
        >>> y.sum().backward()
        >>> y.detach(), x.grad
        (tensor([0., 1.]), tensor([1., 1.]))
    """
    check_floating("inputs", inputs)
    check_floating("quantized", quantized)
    check_same_shape("inputs", inputs, "quantized", quantized)
    return quantized.detach().to(inputs.dtype) + (inputs - inputs.detach())


def vq_losses(
    inputs: torch.Tensor,
    quantized: torch.Tensor,
    *,
    reduction: str = "mean",
) -> VQLosses:
    r"""The codebook and commitment terms of the VQ-VAE loss (van den Oord et al. 2017, eq. 3).

    $$L_{\text{codebook}} = \lVert \operatorname{sg}[z_e(x)] - e \rVert_2^2, \qquad
      L_{\text{commitment}} = \lVert z_e(x) - \operatorname{sg}[e] \rVert_2^2,$$

    both mean squared errors (as sonnet's ``VectorQuantizer``): equal in value, but the first
    sends gradient only to ``quantized`` (the codes) and the second only to ``inputs``
    (the encoder). The VQ-VAE loss adds them as codebook $+\ \beta \cdot$ commitment
    (``commitment_weight`` $\beta = 0.25$ in the paper); with an EMA codebook (appendix A.1)
    only the commitment term is used.

    With inputs $(B, *)$ the squared error is averaged over every non-batch element
    (channels and positions) of each example, giving per-example means $(B,)$; then

    - ``"none"``: the per-example means, $(B,)$;
    - ``"mean"``: their average over the batch, which is the mean over all elements
      (``nan`` for an empty batch, as ``torch.mean``);
    - ``"sum"``: their sum over the batch (0 for an empty batch).

    Computed in at least float32 (float64 inputs stay float64).

    Args:
        inputs: the encoder output $z_e(x)$, e.g. $(2, 16, 8, 8)$, or its rows $(128, 16)$.
        quantized: the selected codes $e$, same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch (first) dimension.

    Returns:
        `VQLosses` ``(codebook, commitment)``: scalars, or $(B,)$ for ``"none"``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes differ, the inputs are scalars or have an empty
            non-batch dim, ``reduction`` is unknown, or (while `set_validate_args` is on)
            an input holds NaN or infinity.

    Shape:
        - inputs, quantized: $(B, *)$
        - output fields: $()$ or $(B,)$

    Example:
        >>> import torch
        >>> losses = vq_losses(torch.zeros(2, 4), torch.ones(2, 4))
        >>> losses.codebook, losses.commitment
        (tensor(1.), tensor(1.))
    """
    check_floating("inputs", inputs)
    check_floating("quantized", quantized)
    check_same_shape("inputs", inputs, "quantized", quantized)
    if inputs.ndim == 0:
        raise ValueError("inputs must have a batch dimension (B, *), got a scalar")
    per_example_size = math.prod(inputs.shape[1:])
    if per_example_size == 0:
        raise ValueError(
            f"inputs must have at least one value per example, shape (B, *) with no empty "
            f"non-batch dim, got {tuple(inputs.shape)}"
        )
    check_finite("inputs", inputs)
    check_finite("quantized", quantized)
    dtype = compute_dtype(inputs.dtype, quantized.dtype)
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        x = inputs.to(dtype)
        q = quantized.to(dtype)
        # the two terms are equal in value (x - q and q - x square alike, bit for bit):
        # compute the squared error twice only when both sides need a gradient; the
        # elementwise mse_loss is one pass forward and one backward (sub and pow are five)
        if q.requires_grad:
            codebook = sum_non_batch(F.mse_loss(q, x.detach(), reduction="none"))
            codebook = codebook / per_example_size
            commitment = (
                sum_non_batch(F.mse_loss(x, q.detach(), reduction="none")) / per_example_size
                if x.requires_grad
                else codebook.detach()
            )
        else:
            commitment = sum_non_batch(F.mse_loss(x, q.detach(), reduction="none"))
            commitment = commitment / per_example_size
            codebook = commitment.detach()
        return VQLosses(reduce_batch(codebook, reduction), reduce_batch(commitment, reduction))


def code_counts(
    indices: torch.Tensor,
    codebook_size: int,
    *,
    validate_args: bool = False,
) -> torch.Tensor:
    r"""How many times each code is chosen: $n_i = |\{j : k_j = i\}|$.

    A fixed-size ``index_add_`` of ones (not ``torch.bincount``, whose output size depends
    on the values and so breaks a compiled graph); exact up to $2^{24}$ per code.

    Args:
        indices: chosen codes, any shape, e.g. $(2, 8, 8)$ or its rows $(128,)$.
        codebook_size: $K$.
        validate_args: check that every index is in $[0, K)$ (reads the values, so it
            costs a device synchronisation). Unchecked bad indices raise an unhelpful error
            or, on a GPU, a device-side assertion.

    Returns:
        The counts, float32, summing to ``indices.numel()``.

    Raises:
        TypeError: if ``indices`` is not an integer tensor or ``codebook_size`` not an int.
        ValueError: if ``codebook_size < 1``, or (with ``validate_args``) an index is out of range.

    Shape:
        - indices: $(*)$
        - output: $(K,)$

    Example:
        >>> import torch
        >>> code_counts(torch.tensor([[0, 2], [2, 2]]), 4)
        tensor([1., 0., 3., 0.])
    """
    _check_integer("indices", indices)
    check_positive_int("codebook_size", codebook_size)
    flat = indices.reshape(-1).long()
    if validate_args:
        _check_index_range(flat, codebook_size)
    counts = torch.zeros(codebook_size, dtype=torch.float32, device=indices.device)
    return counts.index_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))


def _check_index_range(flat: torch.Tensor, codebook_size: int) -> None:
    if flat.numel() == 0:
        return
    low, high = int(flat.min()), int(flat.max())
    if low < 0 or high >= codebook_size:
        raise ValueError(
            f"indices must be in [0, {codebook_size - 1}] (codebook_size={codebook_size}), "
            f"got values from {low} to {high}"
        )


def code_sums(inputs: torch.Tensor, indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    r"""Sum of the input rows assigned to each code: $s_i = \sum_{j : k_j = i} x_j$.

    An ``index_add_`` over the rows (no $N \times K$ one-hot matrix), in at least float32.

    Args:
        inputs: the rows $x_j$.
        indices: their codes $k_j$ (from `nearest_code`).
        codebook_size: $K$.

    Returns:
        The per-code sums; rows of unused codes are zero.

    Raises:
        TypeError: on a non-float ``inputs`` or non-integer ``indices``.
        ValueError: on shapes other than $(N, D)$ and $(N,)$.

    Shape:
        - inputs: $(N, D)$, e.g. $(128, 16)$
        - indices: $(N,)$
        - output: $(K, D)$

    Example:
        >>> import torch
        >>> code_sums(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([1, 1]), 2)
        tensor([[0., 0.],
                [4., 6.]])
    """
    _check_rows("inputs", inputs, "(N, D)")
    _check_integer("indices", indices)
    check_positive_int("codebook_size", codebook_size)
    if indices.shape != inputs.shape[:1]:
        raise ValueError(
            f"indices must have shape (N,) = ({inputs.shape[0]},) to match inputs "
            f"{tuple(inputs.shape)}, got {tuple(indices.shape)}"
        )
    dtype = compute_dtype(inputs.dtype)
    sums = torch.zeros(codebook_size, inputs.shape[1], dtype=dtype, device=inputs.device)
    return sums.index_add_(0, indices.long(), inputs.detach().to(dtype))


def counts_perplexity(counts: torch.Tensor) -> torch.Tensor:
    r"""Perplexity of a code-usage histogram: $\exp H(p)$ with $p_i = n_i / \sum_k n_k$.

    $$\operatorname{PPL} = \exp\Big(-\sum_i p_i \log p_i\Big) \in [1, K],$$

    with $0 \log 0 = 0$: 1 when one code takes everything, $K$ when all are used equally.
    An all-zero histogram (an empty batch) has perplexity 1, the value of a point mass,
    so the result is always finite and in $[1, K]$ (it is clamped there against rounding).

    Args:
        counts: non-negative counts (or weights) $n_i$ per code.

    Returns:
        The perplexity, a scalar in at least float32.

    Raises:
        TypeError: if ``counts`` is not a floating-point tensor.
        ValueError: if ``counts`` is not 1-D or is empty.

    Shape:
        - counts: $(K,)$
        - output: $()$

    Example:
        >>> import torch
        >>> counts_perplexity(torch.tensor([5.0, 5.0, 0.0, 0.0]))
        tensor(2.)
    """
    check_floating("counts", counts)
    check_ndim("counts", counts, (1,), "(K,)")
    if counts.shape[0] == 0:
        raise ValueError("counts must have at least one code, shape (K,) with K >= 1, got (0,)")
    counts = counts.to(compute_dtype(counts.dtype))
    total = counts.sum()
    probs = torch.where(total > 0, counts / total, torch.zeros_like(counts))
    entropy = -torch.xlogy(probs, probs).sum()
    return entropy.exp().clamp(1.0, float(counts.shape[0]))


def ema_codebook_update(
    cluster_size: torch.Tensor,
    embed_sum: torch.Tensor,
    counts: torch.Tensor,
    sums: torch.Tensor,
    *,
    decay: float,
    eps: float,
    step: int | torch.Tensor | None = None,
    codebook: torch.Tensor | None = None,
) -> EMAUpdate:
    r"""One exponential-moving-average codebook step (van den Oord et al. 2017, appendix A.1).

    With this batch's counts $n_i$ and sums $s_i = \sum_{j: k_j = i} z_j$ (`code_counts`,
    `code_sums`; all-reduced first under data parallelism):

    $$N_i \leftarrow \gamma N_i + (1 - \gamma)\, n_i, \qquad
      m_i \leftarrow \gamma m_i + (1 - \gamma)\, s_i,$$

    where $\gamma$ is ``decay``. With ``step`` $= t$ (bias correction, as sonnet's
    ``ExponentialMovingAverage`` with zero-initialised statistics), the averages used below
    are $\hat N_i = N_i / (1 - \gamma^t)$ and $\hat m_i = m_i / (1 - \gamma^t)$; without it
    $\hat N = N$, $\hat m = m$. Laplace smoothing (as sonnet's ``VectorQuantizerEMA``) keeps
    every count positive, so a code that receives no vectors never divides by zero:

    $$N_i' = \frac{\hat N_i + \epsilon}{n + K\epsilon}\, n, \quad n = \sum_k \hat N_k,
      \qquad e_i = \hat m_i / N_i'.$$

    $N_i' = 0$ only when $n = 0$ (nothing has ever been counted); those rows keep
    ``codebook`` if given, else they are zero. The function is pure: it returns new
    tensors and leaves its arguments unchanged; a module copies them into its buffers.
    Computed in at least float32.

    Args:
        cluster_size: the moving average $N$ of the counts before this step.
        embed_sum: the moving average $m$ of the sums before this step.
        counts: this batch's counts $n_i$.
        sums: this batch's per-code sums $s_i$.
        decay: $\gamma \in (0, 1)$ (0.99 in the paper).
        eps: the Laplace smoothing $\epsilon > 0$ (1e-5 in sonnet).
        step: $t \ge 1$, the number of updates including this one, for bias correction;
            ``None`` for none.
        codebook: the current codebook, kept where $N_i' = 0$.

    Returns:
        `EMAUpdate` ``(cluster_size, embed_sum, codebook)``; the statistics are the
        uncorrected $N$ and $m$ (the state to keep), the codebook uses the corrected ones.

    Raises:
        TypeError: on a non-float tensor or a non-number ``decay``/``eps``.
        ValueError: on mismatched shapes, ``decay`` outside (0, 1) or ``eps`` <= 0.

    Shape:
        - cluster_size, counts: $(K,)$
        - embed_sum, sums, codebook: $(K, D)$
        - output: $(K,)$, $(K, D)$, $(K, D)$

    Example:
        >>> import torch
        >>> update = ema_codebook_update(
        ...     torch.ones(2), torch.zeros(2, 3), torch.tensor([4.0, 0.0]),
        ...     torch.full((2, 3), 2.0) * torch.tensor([[1.0], [0.0]]), decay=0.5, eps=1e-5)
        >>> update.cluster_size
        tensor([2.5000, 0.5000])
        >>> update.codebook[0]
        tensor([0.4000, 0.4000, 0.4000])
    """
    check_floating("cluster_size", cluster_size)
    check_ndim("cluster_size", cluster_size, (1,), "(K,)")
    check_floating("embed_sum", embed_sum)
    check_ndim("embed_sum", embed_sum, (2,), "(K, D)")
    if embed_sum.shape[0] != cluster_size.shape[0]:
        raise ValueError(
            f"embed_sum must have shape (K, D) with K={cluster_size.shape[0]} as cluster_size, "
            f"got {tuple(embed_sum.shape)}"
        )
    check_floating("counts", counts)
    check_same_shape("cluster_size", cluster_size, "counts", counts)
    check_floating("sums", sums)
    check_same_shape("embed_sum", embed_sum, "sums", sums)
    if codebook is not None:
        check_floating("codebook", codebook)
        check_same_shape("embed_sum", embed_sum, "codebook", codebook)
    decay = check_in_open_interval("decay", decay, 0.0, 1.0)
    eps = check_in_open_interval("eps", eps, 0.0, math.inf)
    if step is not None and not isinstance(step, torch.Tensor):
        check_positive_int("step", step)

    dtype = compute_dtype(cluster_size.dtype, embed_sum.dtype)
    with torch.autocast(device_type=cluster_size.device.type, enabled=False):
        new_cluster_size = cluster_size.to(dtype) * decay + counts.to(dtype) * (1.0 - decay)
        new_embed_sum = embed_sum.to(dtype) * decay + sums.to(dtype) * (1.0 - decay)
        if step is None:
            avg_cluster_size, avg_embed_sum = new_cluster_size, new_embed_sum
        else:
            step_t = torch.as_tensor(step, device=cluster_size.device).to(dtype)
            correction = 1.0 - torch.pow(torch.as_tensor(decay, dtype=dtype), step_t)
            avg_cluster_size = new_cluster_size / correction
            avg_embed_sum = new_embed_sum / correction
        num_codes = cluster_size.shape[0]
        total = avg_cluster_size.sum()
        smoothed = (avg_cluster_size + eps) / (total + num_codes * eps) * total
        positive = (smoothed > 0).unsqueeze(1)
        new_codebook = avg_embed_sum / torch.where(positive, smoothed.unsqueeze(1), 1.0)
        fallback = torch.zeros_like(new_codebook) if codebook is None else codebook.to(dtype)
        new_codebook = torch.where(positive, new_codebook, fallback)
    return EMAUpdate(new_cluster_size, new_embed_sum, new_codebook)
