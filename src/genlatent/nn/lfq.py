r"""Lookup-free quantization as a module: `LFQ`."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

from genlatent._validation import (
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
)
from genlatent.functional.bsq import bsq_entropy, to_sphere
from genlatent.functional.lfq import (
    lfq_codes,
    lfq_codes_from_indices,
    lfq_entropy,
    lfq_indices,
)
from genlatent.functional.quantize import code_counts
from genlatent.nn._layout import (
    check_indices,
    from_rows,
    indices_from_rows,
    rows_of,
    to_layout,
)
from genlatent.nn._projection import ProjectedQuantizer
from genlatent.nn._replicas import replicated
from genlatent.nn.quantizer import QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["LFQ"]


def _global_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over replicas, with the gradient of each replica's share (autograd all-reduce)."""
    return dist_nn.all_reduce(values, op=dist.ReduceOp.SUM)


class LFQ(ProjectedQuantizer, PretrainedMixin):
    r"""Lookup-free quantization (MAGVIT-v2, Yu et al. 2023): each channel to its sign.

    With $n = \log_2 K$ bits, each of the $n$ channels of a vector $z$ becomes
    $q_b = \pm s$ (``codebook_scale``; $-s$ for $z_b \le 0$), with a straight-through
    gradient ($\partial q / \partial z = I$). The implied codebook $\{-s, s\}^n$ has
    $K = 2^n$ codes (``codebook_size``) and is never stored; the index is the binary number
    of the signs, channel $b$ the bit of weight $2^b$: $k = \sum_b 2^b [z_b > 0]$.

    The loss (the paper's eq. 5 plus a commitment term) is

    $$L = \lambda_H \Big(\tfrac1N \textstyle\sum_j H(p(\cdot \mid z_j))
          - \gamma H(\bar p) + \gamma \log K\Big)
        + \beta\, \lVert z - \operatorname{sg}[q] \rVert^2,$$

    $\lambda_H$ = ``entropy_weight``, $\gamma$ = ``diversity_gamma``, $\beta$ =
    ``commitment_weight``, $p(c \mid z) \propto \exp(-\lVert z - c\rVert^2/\tau)$ with $\tau$
    = ``temperature``, $\bar p$ its batch mean, and the commitment a mean over all
    elements. The constant $\gamma \log K$ makes the entropy term a sum of two
    non-negative parts, so it is $\ge 0$ and reads 0 at its optimum (see
    `lfq_entropy`, which also shows how $2^{16}$ codes fit in memory: the
    exact batch distribution from two $N \times 2^{n/2}$ factors, never $N \times K$).
    ``terms`` holds ``entropy`` (that shifted entropy term) and ``commitment``. All of it
    is float32 with autocast off. In training under ``torch.distributed``, $\bar p$ is the
    mean over the global batch (a differentiable all-reduce of the summed probabilities),
    so data-parallel training equals one process on the whole batch; in eval mode each
    process uses its own rows.

    The paper gives no $\tau$. LFQ's default, $\tau = 0.1$, comes from a committed sweep
    (``scripts/sweep_lfq.py``, the results page): on the reduced MNIST VQ-VAE at the
    equal-steps budget it uses 100% of 512 codes (perplexity 438) where
    vector-quantize-pytorch's $\tau = 0.01$ (``inv_temperature=100``) uses 19.5%: with
    $\tau = 0.01$ the soft assignment of a unit-scale $z$ is so sharp that the batch
    entropy's gradient reaches only rows with $z$ near 0, and most codes are never tried.
    BSQ keeps $\tau = 0.01$ (the sweep found no better usage for it at 0.1 or 1).

    **BSQ** (``spherical=True``; binary spherical quantization, Zhao et al. 2024): $z$ is
    first projected to the unit sphere, $u = z / \lVert z \rVert$, and quantized to
    $\pm 1/\sqrt n$ per channel, so every code has unit norm; the commitment term is
    $\lVert u - \operatorname{sg}[q] \rVert^2$ and the entropy term LFQ's exact one on
    the sphere's codes (`lfq_entropy` at $s = 1/\sqrt n$). ``codebook_scale`` does not
    apply (the sphere fixes it). ``factorized_entropy=True`` gives the paper's estimate
    instead (`genlatent.functional.bsq`): the same per-sample entropy, and the codebook
    entropy as the sum of the bits' entropies, $O(Nn)$ rather than
    $O(N \cdot 2^{\lceil n/2 \rceil})$. That sum sees only each bit's balance over the
    batch, not how the bits co-vary, and on the reduced MNIST VQ-VAE at the equal-steps
    budget it reached its optimum (the bits' entropies summed to 8.99 of 9 bits) with
    bits correlated up to 0.95 and a code perplexity of 20 of 512 (73% of the codes
    used); the exact entropy used 100% at perplexity 493, the bits correlated at most
    0.05 (``scripts/sweep_lfq.py``, ``scripts/code_bits.py``; the results page).

    With ``dim`` $\ne n$ the inputs are projected to $n$ channels by a linear layer
    (``project_in``) and the codes back to ``dim`` by another (``project_out``); the
    entropy and commitment terms are computed on the projected $z$.

    **Shapes, worked through.** $K = 2^{10}$ ($n = 10$), ``dim=16``, channel-first input
    $(2, 16, 8, 8)$: packed to rows $(128, 16)$, projected to $(128, 10)$, signs
    $(128, 10)$ and indices $(128,)$, projected back to $(128, 16)$, unpacked to quantized
    $(2, 16, 8, 8)$ and indices $(2, 8, 8)$. An empty batch gives NaN losses (the mean of
    nothing), as `VectorQuantizer`.

    Args:
        codebook_size: $K$, a power of 2, at least 2 (at most $2^{40}$).
        dim: input channels $D$; ``None`` (default) for $D = n = \log_2 K$, no projection.
        entropy_weight: $\lambda_H \ge 0$ (0.1 in the paper).
        diversity_gamma: $\gamma \ge 0$ (1 in the paper).
        commitment_weight: $\beta \ge 0$ (0.25 in the paper).
        temperature: $\tau > 0$ of the soft assignment in the entropy term; ``None``: 0.1
            for LFQ, 0.01 for BSQ (see above).
        codebook_scale: $s > 0$, the magnitude of every code value.
        spherical: BSQ: quantize $z / \lVert z \rVert$ to codes of unit norm.
        factorized_entropy: BSQ's codebook entropy: ``False`` (the default) the exact
            entropy of the batch's mean code distribution, as LFQ's; ``True`` the BSQ
            paper's sum of the bits' entropies (see above).
        channel_last: inputs are $(B, \ldots, D)$ rather than $(B, D, \ldots)$.
        device: where to create the projections.
        dtype: the projections' dtype.

    Raises:
        TypeError: on an argument of the wrong type.
        ValueError: if ``codebook_size`` is not a power of 2 >= 2 (or above $2^{40}$),
            ``dim`` < 1, a weight or ``diversity_gamma`` is negative or not finite, or
            ``temperature``/``codebook_scale`` <= 0, or ``codebook_scale`` is given
            with ``spherical=True``, or ``factorized_entropy=True`` without it.

    Shape:
        - inputs: $(B, D, *)$ with up to three trailing dims, or $(B, *, D)$ if ``channel_last``
        - quantized: same as inputs
        - indices: $(B, *)$

    Example:
        >>> import torch
        >>> lfq = LFQ(2**10)
        >>> out = lfq(torch.randn(2, 10, 8, 8))
        >>> out.quantized.shape, out.indices.shape, sorted(out.terms)
        (torch.Size([2, 10, 8, 8]), torch.Size([2, 8, 8]), ['commitment', 'entropy'])
        >>> bool(out.loss >= 0), torch.equal(lfq.decode(out.indices), out.quantized)
        (True, True)
        >>> lfq.decode(torch.tensor([5]))[0, :4]  # 5 = 0b101: bits 0 and 2 set
        tensor([ 1., -1.,  1., -1.])
    """

    def __init__(
        self,
        codebook_size: int,
        *,
        dim: int | None = None,
        entropy_weight: float = 0.1,
        diversity_gamma: float = 1.0,
        commitment_weight: float = 0.25,
        temperature: float | None = None,
        codebook_scale: float = 1.0,
        spherical: bool = False,
        factorized_entropy: bool = False,
        channel_last: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("codebook_size", codebook_size)
        if codebook_size < 2 or codebook_size & (codebook_size - 1) != 0:
            raise ValueError(f"codebook_size must be a power of 2 (>= 2), got {codebook_size}")
        bits = codebook_size.bit_length() - 1
        if bits > 40:
            raise ValueError(f"codebook_size must be at most 2**40, got 2**{bits}")
        self.codebook_size = codebook_size
        self.bits = bits
        self.dim = bits if dim is None else check_positive_int("dim", dim)
        self.entropy_weight = check_non_negative_float("entropy_weight", entropy_weight)
        self.diversity_gamma = check_non_negative_float("diversity_gamma", diversity_gamma)
        self.commitment_weight = check_non_negative_float("commitment_weight", commitment_weight)
        if temperature is None:
            temperature = 0.01 if spherical else 0.1
        self.temperature = check_positive_float("temperature", temperature)
        self.codebook_scale = check_positive_float("codebook_scale", codebook_scale)
        self.spherical = bool(spherical)
        if self.spherical and self.codebook_scale != 1.0:
            raise ValueError(
                "codebook_scale applies only with spherical=False (BSQ's codes have unit "
                f"norm), got codebook_scale={codebook_scale}"
            )
        if not isinstance(factorized_entropy, bool):
            kind = type(factorized_entropy).__name__
            raise TypeError(f"factorized_entropy must be a bool, got {kind}")
        if factorized_entropy and not self.spherical:
            raise ValueError(
                "factorized_entropy=True applies only with spherical=True (LFQ's codebook "
                "entropy is exact), got spherical=False"
            )
        self.factorized_entropy = factorized_entropy
        # the magnitude of each code value: 1/sqrt(n) puts BSQ's codes on the unit sphere
        self._code_scale = bits**-0.5 if self.spherical else self.codebook_scale
        self.channel_last = bool(channel_last)
        self._init_projections(self.dim, bits, device, dtype)

    def extra_repr(self) -> str:
        parts = [f"codebook_size={self.codebook_size}"]
        if self.project_in is not None:
            parts.append(f"dim={self.dim}")
        parts += [
            f"entropy_weight={self.entropy_weight}",
            f"diversity_gamma={self.diversity_gamma}",
            f"commitment_weight={self.commitment_weight}",
            f"temperature={self.temperature}",
        ]
        if self.codebook_scale != 1.0:
            parts.append(f"codebook_scale={self.codebook_scale}")
        if self.spherical:
            parts.append("spherical=True")
            if self.factorized_entropy:
                parts.append("factorized_entropy=True")
        if self.channel_last:
            parts.append("channel_last=True")
        return ", ".join(parts)

    def _latents(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows $(N, D)$ to the $n$ channels quantized: projected, and on the sphere for BSQ."""
        latents = self._project_in(rows)
        return to_sphere(latents) if self.spherical else latents

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs`` to signs and compute the entropy and commitment terms.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)``; ``terms``
            holds ``entropy`` and ``commitment``; ``quantized`` has the inputs' dtype.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        latents = self._latents(rows)
        codes = lfq_codes(latents, scale=self._code_scale)
        flat_indices = lfq_indices(latents)
        reduce = _global_sum if self.training and replicated() else None
        if self.factorized_entropy:
            entropy = bsq_entropy(
                latents,
                temperature=self.temperature,
                diversity_gamma=self.diversity_gamma,
                reduce=reduce,
            ).loss
        else:  # exact; on the sphere the codes' scale is 1/sqrt(n)
            entropy = lfq_entropy(
                latents,
                temperature=self.temperature,
                scale=self._code_scale,
                diversity_gamma=self.diversity_gamma,
                reduce=reduce,
            ).loss
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            # codes is z + sg[q - z] in float32, so sg[q] is its detached value
            commitment = (latents.to(codes.dtype) - codes.detach()).square().mean()
            loss = self.entropy_weight * entropy + self.commitment_weight * commitment
        quantized = self._output(codes).to(inputs.dtype)
        indices = indices_from_rows(flat_indices, packed_shapes)
        return QuantizerOutput(
            quantized=from_rows(quantized, packed_shapes, channel_last=self.channel_last),
            indices=indices,
            loss=loss.float(),
            terms={"entropy": entropy.float(), "commitment": commitment.float()},
            counts=code_counts(flat_indices, self.codebook_size),
        )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the binary index of each vector's signs.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            int64 indices $(B, *)$, the same as ``self(inputs).indices``.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        with torch.no_grad():
            flat_indices = lfq_indices(self._latents(rows))
        return indices_from_rows(flat_indices, packed_shapes)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Map indices back to sign codes $\\pm s$ (projected to ``dim`` if ``dim`` was given).

        Args:
            indices: int tensor $(B,)$ or $(B, *)$ (up to three trailing dims), values in
                $[0, K)$ (checked: this reads the values).

        Returns:
            Float32 codes (the projection's dtype with ``dim``), channel-first $(B, D, *)$
            or $(B, *, D)$ with ``channel_last``: equal to ``self(inputs).quantized`` for
            ``indices = self.encode(inputs)``.

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 1..4 or an index outside $[0, K)$.
        """
        indices = check_indices(indices, self.codebook_size)
        codes = lfq_codes_from_indices(
            indices, self.bits, scale=self._code_scale, dtype=self._code_dtype()
        )
        vectors = self._output(codes)
        return to_layout(vectors, channel_last=self.channel_last)
