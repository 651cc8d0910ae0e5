r"""Lookup-free quantization maths (LFQ, MAGVIT-v2: Yu et al. 2023, "Language Model Beats
Diffusion -- Tokenizer is Key to Visual Generation", section 3.1).

A row $z \in \mathbb{R}^n$ is quantized channel by channel to its sign, scaled by $s$
(``scale``): $q_b = s \cdot \operatorname{sign}(z_b)$, with $q_b = -s$ for $z_b \le 0$. The
implied codebook is $\{-s, s\}^n$, $K = 2^n$ codes, never stored. The index is the binary
number of the signs, channel $b$ the bit of weight $2^b$ (the first channel least
significant, as FSQ's mixed radix):

$$k = \sum_{b=0}^{n-1} 2^b\,[z_b > 0] .$$

**Entropy loss** (eq. 5 of the paper). Each row gets a soft assignment over the $K$ codes,
$p(c \mid z) \propto \exp(-\lVert z - c \rVert^2 / \tau)$ ($\tau$ = ``temperature``); the
loss asks each assignment to be confident and the batch to use all codes:

$$L_{\text{entropy}} = \frac{1}{N}\sum_j H\big(p(\cdot \mid z_j)\big)
    - \gamma\, H\Big(\frac{1}{N}\sum_j p(\cdot \mid z_j)\Big) + \gamma \log K,$$

$\gamma$ = ``diversity_gamma``. The constant $\gamma \log K$ (no gradient) makes the loss
a sum of two non-negative parts, $\bar H_{\text{sample}} \ge 0$ and
$\gamma(\log K - H(\bar p)) = \gamma\,\mathrm{KL}(\bar p \,\Vert\, \text{uniform}) \ge 0$
(Gibbs' inequality), so $L_{\text{entropy}} \ge 0$ with equality for confident rows that
use every code equally. Each part is computed in a form that cannot go negative through
rounding: the per-row entropy as a sum of products of non-negative numbers, and the KL
clamped at 0 (its true value is $\ge 0$; the clamp removes only rounding error).

**Never $N \times K$.** $\lVert z - c\rVert^2 = \sum_b (z_b - c_b)^2$ makes $p(c \mid z)$ a
product over bits, $p(c_b = s \mid z_b) = \sigma(a_b)$ with $a_b = 4 s z_b / \tau$, so the
per-row entropy is a sum of $n$ Bernoulli entropies, $O(Nn)$. The batch mean is not a
product, but splitting the bits into a low half $\ell$ ($n_1 = \lfloor n/2 \rfloor$ bits)
and a high half $h$ gives $p(c \mid z_j) = P^{\ell}_{j, c_\ell} P^{h}_{j, c_h}$, hence

$$\bar p_{c_h 2^{n_1} + c_\ell} = \frac{1}{N} \big(P^{h\top} P^{\ell}\big)_{c_h, c_\ell},$$

one matrix product with $N \times 2^{n/2}$ operands: exact, and $2^{16}$ codes cost two
$N \times 256$ matrices instead of one $N \times 65536$.

Everything runs in at least float32 with autocast disabled (float64 stays float64). Logits
$a_b$ are clamped to $[-40, 40]$ and the group log-probabilities to $\ge -40$: past that
the exponentials and their products with gradients become subnormal floats (10-25x slower
on CPUs), and the clamp changes each probability by less than
$e^{-40} \approx 4 \cdot 10^{-18}$.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from genlatent._validation import check_floating, check_ndim
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.quantize import _check_integer

__all__ = [
    "LFQEntropy",
    "lfq_codes",
    "lfq_codes_from_indices",
    "lfq_entropy",
    "lfq_indices",
]


class LFQEntropy(NamedTuple):
    """The entropy loss of `lfq_entropy` and its two entropies (all scalars, nats).

    Attributes:
        loss: $\\bar H_{\\text{sample}} + \\gamma\\,\\mathrm{KL}(\\bar p \\Vert \\text{uniform})
            \\ge 0$ (module docstring).
        per_sample_entropy: $\\frac1N \\sum_j H(p(\\cdot \\mid z_j)) \\in [0, \\log K]$.
        codebook_entropy: $H(\\bar p) \\in [0, \\log K]$ (no gradient through the clamp).
    """

    loss: torch.Tensor
    per_sample_entropy: torch.Tensor
    codebook_entropy: torch.Tensor


_LOG_FLOOR = 40.0
r"""Logits and log-probabilities are clamped to $[-40, 40]$ and $[-40, 0]$. Sharp assignments
otherwise give probabilities that are subnormal float32 (below $1.2 \cdot 10^{-38}$), or
whose products with gradients are, inside the matrix products; CPUs compute those 10-25x
slower (measured: 2.1 s instead of 1.0 s for a training step of 131,072 rows). The clamp changes
each probability by less than $e^{-40} \approx 4 \cdot 10^{-18}$ (and $\bar p$ by less
than $K e^{-40}$), the entropies and gradients by as little."""


def _check_rows(name: str, inputs: object) -> torch.Tensor:
    rows = check_floating(name, inputs)
    check_ndim(name, rows, (2,), "(N, n) with n bits")
    return rows


def _check_scale(scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    return float(scale)


def lfq_codes(inputs: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    r"""Signs with a straight-through gradient: $q = z + \operatorname{sg}[s\,\mathrm{sign}(z)-z]$.

    The value is exactly $\pm s$ ($-s$ for $z_b \le 0$), the gradient the identity.

    Args:
        inputs: rows $z$, one column per bit.
        scale: $s > 0$.

    Returns:
        The codes in at least float32.

    Raises:
        TypeError: on a non-float ``inputs`` or ``scale``.
        ValueError: on a shape other than $(N, n)$ or ``scale`` <= 0.

    Shape:
        - inputs: $(N, n)$
        - output: $(N, n)$

    Example:
        >>> import torch
        >>> lfq_codes(torch.tensor([[0.3, -2.0, 0.0]]))
        tensor([[ 1., -1., -1.]])
    """
    rows = _check_rows("inputs", inputs)
    scale = _check_scale(scale)
    dtype = compute_dtype(rows.dtype)
    with torch.autocast(device_type=rows.device.type, enabled=False):
        rows = rows.to(dtype)
        signs = torch.where(rows.detach() > 0, scale, -scale).to(dtype)
        return signs + (rows - rows.detach())


def _weights(bits: int, device: torch.device) -> torch.Tensor:
    return torch.pow(2, torch.arange(bits, device=device, dtype=torch.int64))


def lfq_indices(inputs: torch.Tensor) -> torch.Tensor:
    r"""The binary number of the signs: $k = \sum_b 2^b [z_b > 0]$.

    Args:
        inputs: rows $z$ (or their codes), one column per bit, at most 62 bits.

    Returns:
        int64 indices in $[0, 2^n)$.

    Raises:
        TypeError: on a non-float ``inputs``.
        ValueError: on a shape other than $(N, n)$ or more than 62 columns.

    Shape:
        - inputs: $(N, n)$
        - output: $(N,)$

    Example:
        >>> import torch
        >>> lfq_indices(torch.tensor([[0.3, -2.0, 0.0], [1.0, 1.0, 1.0]]))
        tensor([1, 7])
    """
    rows = _check_rows("inputs", inputs)
    if rows.shape[1] > 62:
        raise ValueError(f"inputs must have at most 62 bits (columns), got {rows.shape[1]}")
    positive = (rows.detach() > 0).long()
    return (positive * _weights(rows.shape[1], rows.device)).sum(-1)


def lfq_codes_from_indices(
    indices: torch.Tensor,
    bits: int,
    *,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""The codes $\pm s$ of binary indices: $c_b = s$ if bit $b$ of $k$ is set, else $-s$.

    Args:
        indices: int indices in $[0, 2^n)$ (not checked: that reads the values).
        bits: $n$.
        scale: $s > 0$.
        dtype: the floating dtype of the codes.

    Returns:
        The codes, bit for bit those `lfq_codes` gives for inputs with these indices.

    Raises:
        TypeError: on non-integer ``indices``.
        ValueError: on ``scale`` <= 0.

    Shape:
        - indices: $(*)$, e.g. $(N,)$
        - output: $(*, n)$

    Example:
        >>> import torch
        >>> lfq_codes_from_indices(torch.tensor([1, 7]), 3)
        tensor([[ 1., -1., -1.],
                [ 1.,  1.,  1.]])
    """
    _check_integer("indices", indices)
    scale = _check_scale(scale)
    weights = _weights(bits, indices.device)
    is_set = torch.bitwise_and(indices.long().unsqueeze(-1), weights) != 0
    compute = compute_dtype(dtype)
    return torch.where(is_set, scale, -scale).to(compute).to(dtype)


def _bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    """$H(\\sigma(a)) = \\sigma(a)\\,\\mathrm{softplus}(-a) + \\sigma(-a)\\,\\mathrm{softplus}(a)$,
    every factor >= 0, finite for every finite ``a``."""
    return torch.sigmoid(logits) * F.softplus(-logits) + torch.sigmoid(-logits) * F.softplus(logits)


def _group_probs(logits: torch.Tensor) -> torch.Tensor:
    """$P_{j,k} = \\prod_b p_{jb}(\\text{bit } b \\text{ of } k)$ over the group's $2^g$ codes.

    As $\\exp(\\log\\sigma(a) B^\\top + \\log\\sigma(-a) (1 - B)^\\top)$, $B$ the codes' bits:
    two products of non-positive logs, no cancellation. A group of 0 bits gives ones.
    """
    bits = logits.shape[1]
    codes = torch.arange(2**bits, device=logits.device)
    set_bits = (torch.bitwise_and(codes.unsqueeze(1), _weights(bits, logits.device)) != 0).to(
        logits.dtype
    )
    log_probs = F.logsigmoid(logits) @ set_bits.T + F.logsigmoid(-logits) @ (1 - set_bits).T
    return log_probs.clamp_min(-_LOG_FLOOR).exp()


def lfq_entropy(
    inputs: torch.Tensor,
    *,
    temperature: float = 0.01,
    scale: float = 1.0,
    diversity_gamma: float = 1.0,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LFQEntropy:
    r"""The LFQ entropy loss, shifted to be $\ge 0$ (see the module docstring for the maths).

    $$L = \frac{1}{N}\sum_j H\big(p(\cdot \mid z_j)\big) + \gamma\big(\log K - H(\bar p)\big),
      \qquad p(c \mid z) \propto e^{-\lVert z - c \rVert^2 / \tau},$$

    exact (no sampling of codes), with memory $O(N \cdot 2^{\lceil n/2 \rceil})$.
    An empty batch ($N = 0$) gives NaN, the mean of nothing.

    Args:
        inputs: rows $z$ (before quantization), one column per bit.
        temperature: $\tau > 0$ of the soft assignment.
        scale: the code magnitude $s > 0$.
        diversity_gamma: $\gamma \ge 0$, the weight of the batch's code entropy.
        reduce: applied to the batch's summed code probabilities $\sum_j p(\cdot \mid
            z_j)$ before $\bar p$ is formed; under data parallelism, a differentiable
            all-reduce (sum) makes $\bar p$ the global batch's, as one process would
            compute it (`LFQ` passes one in distributed training).

    Returns:
        `LFQEntropy` ``(loss, per_sample_entropy, codebook_entropy)``, scalars in at least
        float32.

    Raises:
        TypeError: on a non-float ``inputs`` or a non-number argument.
        ValueError: on a shape other than $(N, n)$, more than 40 bits, ``temperature`` or
            ``scale`` <= 0, or a negative ``diversity_gamma``.

    Shape:
        - inputs: $(N, n)$
        - output fields: $()$

    Example:
        >>> import torch
        >>> # confident rows spread evenly over the 4 codes: both parts are 0 (to 1e-15)
        >>> out = lfq_entropy(torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]))
        >>> round(out.loss.item(), 6), round(out.codebook_entropy.item(), 4)
        (0.0, 1.3863)
        >>> # every row on one code: the codebook entropy is 0 and the loss gamma * log 4
        >>> round(lfq_entropy(torch.ones(4, 2)).loss.item(), 4)
        1.3863
    """
    rows = _check_rows("inputs", inputs)
    bits = rows.shape[1]
    if bits > 40:
        raise ValueError(f"inputs must have at most 40 bits (columns), got {bits}")
    for name, value in (("temperature", temperature), ("scale", scale)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a float, got {type(value).__name__}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {value}")
    if isinstance(diversity_gamma, bool) or not isinstance(diversity_gamma, (int, float)):
        raise TypeError(f"diversity_gamma must be a float, got {type(diversity_gamma).__name__}")
    if not (math.isfinite(diversity_gamma) and diversity_gamma >= 0):
        raise ValueError(f"diversity_gamma must be finite and >= 0, got {diversity_gamma}")

    dtype = compute_dtype(rows.dtype)
    with torch.autocast(device_type=rows.device.type, enabled=False):
        # log p(+s) - log p(-s) per bit, clamped (see _LOG_FLOOR)
        logits = (rows.to(dtype) * (4.0 * scale / temperature)).clamp(-_LOG_FLOOR, _LOG_FLOOR)
        per_sample = _bernoulli_entropy(logits).sum(dim=1).mean()
        low_bits = bits // 2
        low = _group_probs(logits[:, :low_bits])
        high = _group_probs(logits[:, low_bits:])
        joint = high.T @ low  # (2^high, 2^low): sum over rows of p(c | z_j)
        if reduce is not None:
            joint = reduce(joint)
        mean_probs = joint.reshape(-1) / joint.sum()
        log_k = bits * math.log(2.0)
        # KL(p || uniform) = sum p (log p + log K) >= 0; the clamp only removes rounding,
        # and log of a clamped p keeps the gradient finite where p underflows to 0
        tiny = torch.finfo(dtype).tiny
        kl = (mean_probs * (mean_probs.clamp_min(tiny).log() + log_k)).sum().clamp_min(0.0)
        loss = per_sample + diversity_gamma * kl
    codebook_entropy = (log_k - kl).clamp_min(0.0)
    return LFQEntropy(loss=loss, per_sample_entropy=per_sample, codebook_entropy=codebook_entropy)
