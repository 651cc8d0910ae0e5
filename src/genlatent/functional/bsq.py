r"""Binary spherical quantization maths (BSQ: Zhao et al. 2024, "Image and Video
Tokenization with Binary Spherical Quantization", section 3).

BSQ is LFQ on the unit sphere. A row $z \in \mathbb{R}^n$ is first projected to the
sphere, $u = z / \lVert z \rVert$, then each channel quantized to its sign at the scale
that keeps the code on the sphere:

$$\hat u_b = \frac{1}{\sqrt n}\operatorname{sign}(u_b), \qquad \lVert \hat u \rVert = 1,$$

with the straight-through gradient to $u$ (`genlatent.functional.lfq.lfq_codes` with
$s = 1/\sqrt n$); the index is the binary number of the signs, as LFQ's. Because both
$u$ and $\hat u$ are unit vectors, the quantization error is bounded,
$\lVert u - \hat u \rVert^2 = 2 - 2\,u \cdot \hat u \le 2 - 2/\sqrt n$.

**Entropy estimate** (the paper's section 3.2). The soft assignment over the $2^n$ codes,
$q(c \mid u) \propto \exp(-\lVert u - c \rVert^2 / \tau)$ (``temperature`` $\tau$; the
paper's $e^{2 \tau' c \cdot u}$ with $\tau' = 1/\tau$: the code norms are all 1),
factorizes over the bits, $q(c_b = +s \mid u_b) = \sigma(a_b)$ with $a_b = 4 s u_b / \tau$.
The per-sample entropy is therefore exact as a sum of Bernoulli entropies; the codebook
entropy $H(\mathbb{E}_u[q(c \mid u)])$ is the paper's factorized approximation, the sum
of the entropies of the batch's mean bit probabilities $\bar p_b = \frac1N \sum_j
\sigma(a_{jb})$ (an upper bound of the joint entropy, by subadditivity):

$$L = \frac1N \sum_j \sum_b H\big(\sigma(a_{jb})\big)
    + \gamma \Big(n \log 2 - \sum_b H(\bar p_b)\Big) \ge 0,$$

shifted by the constant $\gamma\, n \log 2$ as LFQ's loss, so that it reads 0 at its
optimum (confident rows, every bit balanced over the batch). $O(Nn)$ time and memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from genlatent._validation import check_floating, check_ndim, check_positive_float
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.lfq import _LOG_FLOOR, LFQEntropy, _bernoulli_entropy

__all__ = ["bsq_entropy", "to_sphere"]


def to_sphere(inputs: torch.Tensor) -> torch.Tensor:
    r"""Rows to the unit sphere, $u = z / \max(\lVert z \rVert, \epsilon)$, in at least float32.

    Args:
        inputs: rows $z$.

    Returns:
        Unit rows (a zero row stays zero), autocast off.

    Raises:
        TypeError: on a non-float ``inputs``.
        ValueError: on a shape other than $(N, n)$.

    Shape:
        - inputs: $(N, n)$
        - output: $(N, n)$

    Example:
        >>> import torch
        >>> to_sphere(torch.tensor([[3.0, -4.0]]))
        tensor([[ 0.6000, -0.8000]])
    """
    check_floating("inputs", inputs)
    check_ndim("inputs", inputs, (2,), "(N, n) with n bits")
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        return F.normalize(inputs.to(compute_dtype(inputs.dtype)), dim=1)


def bsq_entropy(
    inputs: torch.Tensor,
    *,
    temperature: float = 0.01,
    diversity_gamma: float = 1.0,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LFQEntropy:
    r"""BSQ's entropy loss with the factorized codebook entropy (module docstring).

    $$L = \frac1N \sum_j \sum_b H\big(\sigma(a_{jb})\big)
        + \gamma \Big(n \log 2 - \sum_b H(\bar p_b)\Big), \qquad
        a_{jb} = \frac{4 u_{jb}}{\sqrt n\, \tau} .$$

    Args:
        inputs: unit rows $u$ (`to_sphere`), one column per bit.
        temperature: $\tau > 0$ of the soft assignment.
        diversity_gamma: $\gamma \ge 0$, the weight of the codebook entropy.
        reduce: applied to the batch's summed bit probabilities and row count (one
            vector of $n + 1$ entries) before $\bar p$ is formed; under data parallelism a
            differentiable all-reduce makes $\bar p$ the global batch's.

    Returns:
        `LFQEntropy` ``(loss, per_sample_entropy, codebook_entropy)``, scalars in at least
        float32; ``codebook_entropy`` is the factorized estimate $\sum_b H(\bar p_b)$.
        An empty batch gives NaN.

    Raises:
        TypeError: on a non-float ``inputs`` or a non-number argument.
        ValueError: on a shape other than $(N, n)$, ``temperature`` <= 0, or a negative
            ``diversity_gamma``.

    Shape:
        - inputs: $(N, n)$
        - output fields: $()$

    Example:
        >>> import torch
        >>> # confident rows, each bit balanced over the batch: the loss is 0
        >>> u = torch.tensor([[-1.0, -1.0], [1.0, 1.0]]) / 2**0.5
        >>> round(bsq_entropy(u).loss.item(), 6)
        0.0
        >>> # every row on one code: the codebook entropy is 0 and the loss gamma * 2 log 2
        >>> round(bsq_entropy(torch.ones(3, 2) / 2**0.5).loss.item(), 4)
        1.3863
    """
    check_floating("inputs", inputs)
    check_ndim("inputs", inputs, (2,), "(N, n) with n bits")
    temperature = check_positive_float("temperature", temperature)
    if isinstance(diversity_gamma, bool) or not isinstance(diversity_gamma, (int, float)):
        raise TypeError(f"diversity_gamma must be a float, got {type(diversity_gamma).__name__}")
    if not (math.isfinite(diversity_gamma) and diversity_gamma >= 0):
        raise ValueError(f"diversity_gamma must be finite and >= 0, got {diversity_gamma}")
    bits = inputs.shape[1]
    dtype = compute_dtype(inputs.dtype)
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        scale = 4.0 / (math.sqrt(bits) * temperature)
        logits = (inputs.to(dtype) * scale).clamp(-_LOG_FLOOR, _LOG_FLOOR)
        per_sample = _bernoulli_entropy(logits).sum(dim=1).mean()
        count = torch.full((1,), float(logits.shape[0]), dtype=dtype, device=logits.device)
        sums = torch.cat([torch.sigmoid(logits).sum(dim=0), count])
        if reduce is not None:
            sums = reduce(sums)
        mean_probs = (sums[:-1] / sums[-1]).clamp(0.0, 1.0)
        tiny = torch.finfo(dtype).tiny
        codebook = -(
            mean_probs * mean_probs.clamp_min(tiny).log()
            + (1 - mean_probs) * (1 - mean_probs).clamp_min(tiny).log()
        ).sum()
        gap = (bits * math.log(2.0) - codebook).clamp_min(0.0)  # >= 0; the clamp is rounding
        loss = per_sample + diversity_gamma * gap
    return LFQEntropy(loss=loss, per_sample_entropy=per_sample, codebook_entropy=codebook)
