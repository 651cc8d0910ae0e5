r"""Lloyd's k-means, for initialising a codebook from data (as in SoundStream, section 3.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from genlatent._validation import check_floating, check_ndim, check_positive_int
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.quantize import code_counts, code_sums, nearest_code

__all__ = ["KMeans", "kmeans"]


class KMeans(NamedTuple):
    """The result of `kmeans`.

    Attributes:
        centroids: the $K$ cluster centres, $(K, D)$.
        counts: how many rows the last assignment gave each centre, $(K,)$, summed over
            processes when ``reduce`` sums.
    """

    centroids: torch.Tensor
    counts: torch.Tensor


def kmeans(
    inputs: torch.Tensor,
    initial: torch.Tensor,
    *,
    iterations: int = 10,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> KMeans:
    r"""Refine ``initial`` centres by Lloyd's algorithm: assign, then average, ``iterations`` times.

    $$k_j = \operatorname*{arg\,min}_i \lVert x_j - c_i \rVert^2, \qquad
      c_i \leftarrow \frac{\sum_{j : k_j = i} x_j}{|\{j : k_j = i\}|},$$

    a centre that no row chose keeps its place. Each step does not increase the sum of
    squared distances. With ``reduce`` (say, an all-reduce sum across processes) the
    per-centre counts and sums of every step are reduced before averaging, so every
    process that starts from the same ``initial`` ends with the same centres: k-means over
    the union of their rows. Computed in at least float32, without gradient.

    Args:
        inputs: the rows $x_j$.
        initial: the starting centres (for example $K$ distinct random rows).
        iterations: the number of assign-and-average steps, at least 1.
        reduce: applied to a $(K, 1 + D)$ tensor of counts and sums before each average;
            ``None`` for a single process.

    Returns:
        `KMeans` ``(centroids, counts)``.

    Raises:
        TypeError: on a non-float ``inputs``/``initial`` or a non-int ``iterations``.
        ValueError: on shapes other than $(N, D)$ and $(K, D)$ or ``iterations`` < 1.

    Shape:
        - inputs: $(N, D)$
        - initial: $(K, D)$
        - output: $(K, D)$ and $(K,)$

    Example:
        >>> import torch
        >>> rows = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
        >>> kmeans(rows, torch.tensor([[0.0], [1.0]])).centroids
        tensor([[ 0.5000],
                [10.5000]])
    """
    check_floating("inputs", inputs)
    check_ndim("inputs", inputs, (2,), "(N, D)")
    check_floating("initial", initial)
    check_ndim("initial", initial, (2,), "(K, D)")
    if initial.shape[1] != inputs.shape[1]:
        raise ValueError(
            f"initial must have D={inputs.shape[1]} columns as inputs, got {tuple(initial.shape)}"
        )
    check_positive_int("iterations", iterations)
    dtype = compute_dtype(inputs.dtype, initial.dtype)
    num_codes = initial.shape[0]
    with torch.no_grad(), torch.autocast(device_type=inputs.device.type, enabled=False):
        rows = inputs.detach().to(dtype)
        centroids = initial.detach().to(dtype).clone()
        counts = torch.zeros(num_codes, dtype=dtype, device=inputs.device)
        for _ in range(iterations):
            indices = nearest_code(rows, centroids)
            stats = torch.cat(
                [
                    code_counts(indices, num_codes).to(dtype).unsqueeze(1),
                    code_sums(rows, indices, num_codes),
                ],
                dim=1,
            )
            if reduce is not None:
                stats = reduce(stats)
            counts, sums = stats[:, 0], stats[:, 1:]
            chosen = (counts > 0).unsqueeze(1)
            centroids = torch.where(chosen, sums / counts.clamp_min(1).unsqueeze(1), centroids)
    return KMeans(centroids, counts)
