"""Small conversions used when reporting results: bits per dimension, code usage."""

from __future__ import annotations

import math

import torch

from genlatent._validation import check_positive_int, check_tensor
from genlatent.functional.quantize import counts_perplexity

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "active_units",
    "bits_per_dim",
    "code_usage",
    "unigram_bits_per_code",
]

_LN_2 = math.log(2.0)


def bits_per_dim(nats: float | torch.Tensor, num_values: int) -> float | torch.Tensor:
    r"""Convert a negative log-likelihood per example from nats to bits per data value.

    $$\text{bits/dim} = \frac{\text{nats}}{D \ln 2},$$

    where $D$ is the number of values in one example ($784$ for MNIST,
    $3 \cdot 32 \cdot 32 = 3072$ for CIFAR-10). The figure is the usual one in the
    literature only when ``nats`` is a negative log-likelihood of *discrete* data
    (binarized pixels, or 8-bit pixels after dequantization); a Bernoulli likelihood of
    grey levels or a Gaussian density gives a number on a different scale.

    Args:
        nats: negative log-likelihood per example in nats, a number or a floating tensor
            of any shape.
        num_values: $D$, the number of data values per example.

    Returns:
        The bits per dimension, a ``float`` for a number, else a tensor shaped like ``nats``.

    Raises:
        TypeError: if ``nats`` is neither a real number nor a floating-point tensor, or
            ``num_values`` is not an int.
        ValueError: if ``num_values < 1``.

    Shape:
        - nats: $(*)$
        - output: $(*)$

    Example:
        >>> import math
        >>> bits_per_dim(784 * math.log(2), 784)
        1.0
    """
    check_positive_int("num_values", num_values)
    if isinstance(nats, torch.Tensor):
        if not nats.is_floating_point():
            raise TypeError(f"nats must have a floating-point dtype, got {nats.dtype}")
        return nats / (num_values * _LN_2)
    if isinstance(nats, bool) or not isinstance(nats, (int, float)):
        raise TypeError(f"nats must be a float or a tensor, got {type(nats).__name__}")
    return float(nats) / (num_values * _LN_2)


def code_usage(counts: torch.Tensor) -> tuple[float, float]:
    r"""Fraction of codes used and usage perplexity of a code histogram.

    For counts $n_i$ of $K$ codes, the fraction is $|\{i : n_i > 0\}| / K$ and the
    perplexity $\exp H(p)$ with $p_i = n_i / \sum_k n_k$ (`counts_perplexity`, in
    $[1, K]$). For a multi-stage histogram $(S, K)$ both are averaged over the stages.
    Integer counts are read in float64, so counts beyond $2^{24}$ stay exact.

    Args:
        counts: non-negative counts per code, integer or floating, $(K,)$ or $(S, K)$.

    Returns:
        ``(fraction_used, perplexity)`` as Python floats.

    Raises:
        TypeError: if ``counts`` is not a real tensor.
        ValueError: if ``counts`` is not 1-D or 2-D, or has no code.

    Example:
        >>> import torch
        >>> used, perplexity = code_usage(torch.tensor([3, 3, 3, 0]))
        >>> used, round(perplexity, 6)
        (0.75, 3.0)
    """
    check_tensor("counts", counts)
    if counts.dtype.is_complex or counts.dtype == torch.bool:
        raise TypeError(f"counts must have a real dtype, got {counts.dtype}")
    if counts.ndim not in (1, 2) or counts.numel() == 0:
        raise ValueError(
            f"counts must have shape (K,) or (S, K) with K >= 1, got {tuple(counts.shape)}"
        )
    rows = counts.detach().cpu().to(torch.float64).reshape(-1, counts.shape[-1])  # not on MPS
    used = int((rows > 0).sum()) / rows.numel()
    perplexity = sum(float(counts_perplexity(row)) for row in rows) / rows.shape[0]
    return used, perplexity


ACTIVE_UNIT_THRESHOLD = 1e-2
r"""Burda et al.'s (2016, section 5.2) threshold on $\operatorname{Cov}_x(\mathbb{E}_q[z_d])$."""


def active_units(means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    r"""How many latent dimensions are active: their posterior mean varies over the data.

    Burda et al. (2016, section 5.2) call dimension $d$ active when
    $A_d = \operatorname{Cov}_x\bigl(\mathbb{E}_{q(z \mid x)}[z_d]\bigr) > 10^{-2}$; an
    inactive one carries no information about $x$ (its posterior is the same for every
    example, the posterior collapse of unused dimensions). The covariance is the unbiased
    sample variance over the $N$ examples, as `torch.var` computes it, in float64 on the CPU.

    Args:
        means: the posterior means $(N, D)$ of $N \ge 2$ examples.
        threshold: the variance above which a dimension counts.

    Returns:
        The number of active dimensions, in $[0, D]$.

    Raises:
        ValueError: if ``means`` is not $(N, D)$ with $N \ge 2$.

    Example:
        >>> import torch
        >>> means = torch.stack([torch.arange(4.0), torch.zeros(4)], dim=1)  # (4, 2)
        >>> active_units(means)
        1
    """
    check_tensor("means", means)
    if means.ndim != 2 or means.shape[0] < 2:
        raise ValueError(
            f"means must have shape (N, D) with N >= 2 examples, got {tuple(means.shape)}"
        )
    return int((means.detach().cpu().double().var(dim=0) > threshold).sum())  # not on MPS


def unigram_bits_per_code(
    train_codes: torch.Tensor, test_codes: torch.Tensor, codebook_size: int
) -> float:
    r"""Test cross-entropy of the code-frequency (unigram) model, in bits per code.

    The baseline a prior over code grids must beat: every position independently drawn
    from the training set's code frequencies with add-one (Laplace) smoothing,

    $$p_k = \frac{n_k + 1}{N + K}, \qquad
      \text{bits} = -\frac{1}{M}\sum_{j=1}^{M} \log_2 p_{c_j},$$

    over the $M$ test codes $c_j$ ($n_k$: training count of code $k$, $N$ training codes).

    Args:
        train_codes: training code indices, any shape, values in $[0, K)$.
        test_codes: test code indices, any shape.
        codebook_size: $K$.

    Example:
        >>> import torch
        >>> codes = torch.tensor([0, 1, 2, 3])  # uniform use of 4 codes: 2 bits each
        >>> round(unigram_bits_per_code(codes, codes, 4), 6)
        2.0
    """
    check_positive_int("codebook_size", codebook_size)
    counts = torch.bincount(train_codes.reshape(-1).long(), minlength=codebook_size)
    counts = counts.cpu().double()  # float64 on the CPU: not on MPS
    log_probs = torch.log2(counts + 1) - math.log2(counts.sum().item() + codebook_size)
    return float(-log_probs[test_codes.reshape(-1).long().cpu()].mean())
