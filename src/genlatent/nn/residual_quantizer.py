r"""Residual quantization over any quantizers: `ResidualQuantizer`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.distributed as dist
from torch import nn

from genlatent._validation import check_floating
from genlatent.functional._dtype import compute_dtype
from genlatent.nn._composition import (
    check_part_output,
    check_parts,
    stacked_indices,
    sum_losses,
)
from genlatent.nn._replicas import replicated
from genlatent.nn.quantizer import Quantizer, QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["DROPPED", "ResidualQuantizer"]

DROPPED = -1
"""The index of a stage that quantize dropout left out."""


def _dropout_probability(value: object) -> float:
    if isinstance(value, bool):  # True: every training step drops (ResidualVQ's flag)
        return float(value)
    if not isinstance(value, (int, float)):
        raise TypeError(f"quantize_dropout must be a float, got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"quantize_dropout must be in [0, 1], got {value}")
    return float(value)


class ResidualQuantizer(nn.Module, PretrainedMixin):
    r"""Residual quantization over any quantizers (SoundStream, Zeghidour et al. 2021, alg. 1).

    $S$ stages $Q_0, \ldots, Q_{S-1}$, each a `Quantizer`, each quantizing what the stages
    before it left over:

    $$r_0 = z, \qquad q_s = Q_s(r_s), \qquad r_{s+1} = r_s - \operatorname{sg}[q_s],
      \qquad z_q = \sum_{s=0}^{S-1} q_s .$$

    Residual VQ, residual FSQ and residual LFQ (vector-quantize-pytorch's ``ResidualFSQ``,
    ``ResidualLFQ``) are this over `VectorQuantizer`, `FSQ` or `LFQ` stages; the stages
    are used only through the contract, so a user's quantizer is a stage too. The
    residuals are computed in at least float32 whatever the input dtype, and the stages'
    codes summed in stage order, as `decode` sums them, so ``decode(encode(x))`` equals
    ``forward(x).quantized`` exactly in eval mode (when each stage's does).

    **Gradient.** With $J_s = \partial q_s / \partial r_s$ each stage's own estimator and
    the residuals handed on without gradient through the codes ($r_{s+1} = r_s -
    \operatorname{sg}[q_s]$, so $\partial r_s / \partial z = I$),

    $$\frac{\partial z_q}{\partial z} = \sum_s J_s ,$$

    the plain chain rule of the sum, as vector-quantize-pytorch's residual quantizers
    compute it: $S \cdot I$ for straight-through stages (`VectorQuantizer`, `LFQ`), one stage
    gives exactly that stage's gradient, and each stage's parameters (an FSQ projection)
    get the gradient of its own $q_s$. A stage with learned projections has $J_s =
    W_{out} D_s W_{in}$, far from $I$ at the start: an estimator built around $I$ (one
    straight-through over the sum plus each stage's deviation $J_s - I$, as a development
    version of this class had it) gives such a stack $\sum_s J_s - (S-1) I$, close to
    $-(S-1) I$ at the start, and a 4-stage residual FSQ VQ-VAE then diverged on MNIST
    (test MSE 0.082 after 3 epochs, against 0.0045 for one stage). The stage inputs
    $r_s$ carry the gradient to $z$, so every stage's own loss (a commitment term) trains
    the encoder.

    ``loss`` is the sum of the stages' losses, ``terms`` their sums by name; indices are
    $(B, *, S)$ and counts $(S, K)$, one row per stage (every stage must have the same
    ``codebook_size`` $K$ and layout, and give one index per position). A stage changes
    its state in a training step as it would alone, on its own residual.

    **Quantize dropout** (SoundStream section 3.3). With probability ``quantize_dropout``
    a training step (``self.training`` and grad enabled) uses only the first $n$ stages,
    $n$ uniform in $\{1, \ldots, S\}$, drawn with ``self.generator`` (default ``None``: the
    global CPU RNG; a generator's device is where the draw runs); under
    ``torch.distributed`` rank 0's draw is broadcast, so all replicas run the same stages.
    A dropped stage is not called: index ``-1`` (`DROPPED`), a zero row of ``counts``, no
    loss, no state change, a zero gradient to its parameters (so that
    ``DistributedDataParallel`` needs no ``find_unused_parameters``); `decode` reads
    ``-1`` as "no code".

    **Shapes, worked through.** Four `FSQ` stages with levels $[8, 5, 5, 5]$ ($K = 1000$)
    and ``dim=16``, channel-first input $(2, 16, 8, 8)$: every stage takes and gives
    $(2, 16, 8, 8)$ and indices $(2, 8, 8)$; the indices stack to $(2, 8, 8, 4)$, the
    counts to $(4, 1000)$.

    Args:
        stages: the quantizers $Q_0, \ldots, Q_{S-1}$ (at least one), registered as
            ``stages``.
        quantize_dropout: the probability that a training step drops trailing stages.

    Raises:
        TypeError: if ``stages`` is not a sequence of quantizers, or ``quantize_dropout``
            not a number.
        ValueError: if ``stages`` is empty or mixes codebook sizes or layouts, or
            ``quantize_dropout`` is outside $[0, 1]$.

    Shape:
        - inputs: what the stages take, $(B, D, *)$ (or $(B, *, D)$ if they are ``channel_last``)
        - quantized: same as inputs
        - indices: $(B, *, S)$
        - counts: $(S, K)$

    Example:
        >>> import torch
        >>> from genlatent.nn import FSQ
        >>> rfsq = ResidualQuantizer([FSQ([8, 5, 5, 5], dim=16) for _ in range(4)])
        >>> out = rfsq(torch.randn(2, 16, 8, 8))
        >>> out.quantized.shape, out.indices.shape, out.counts.shape
        (torch.Size([2, 16, 8, 8]), torch.Size([2, 8, 8, 4]), torch.Size([4, 1000]))
        >>> x = torch.randn(1, 16)
        >>> torch.equal(rfsq.eval().decode(rfsq.encode(x)), rfsq(x).quantized)
        True
    """

    def __init__(self, stages: Sequence[Quantizer], *, quantize_dropout: float = 0.0) -> None:
        super().__init__()
        parts, size, channel_last = check_parts(stages, "stages", "ResidualQuantizer")
        self.stages = nn.ModuleList(parts)
        self._init_residual(len(parts), size, channel_last, quantize_dropout)

    def _init_residual(
        self, num_stages: int, codebook_size: int, channel_last: bool, quantize_dropout: object
    ) -> None:
        self.num_quantizers = num_stages
        self.codebook_size = codebook_size
        self.channel_last = channel_last
        self.quantize_dropout = _dropout_probability(quantize_dropout)
        self.generator: torch.Generator | None = None

    def _stage(self, index: int) -> Quantizer:
        """The quantizer of stage ``index`` (a subclass may share one over several)."""
        return cast(Quantizer, self.stages[index])

    def extra_repr(self) -> str:
        return f"quantize_dropout={self.quantize_dropout}" if self.quantize_dropout else ""

    def _active_stages(self, training_step: bool, device: torch.device) -> int:
        """How many leading stages this call runs: all, or a quantize-dropout draw."""
        if not (training_step and self.quantize_dropout > 0):
            return self.num_quantizers
        where = self.generator.device if self.generator is not None else torch.device("cpu")
        draw = torch.randint(1, self.num_quantizers + 1, (2,), generator=self.generator,
                             device=where)  # fmt: skip
        if self.quantize_dropout < 1.0:  # draw[1] says whether this step drops at all
            keep = torch.rand((), generator=self.generator, device=where) >= self.quantize_dropout
            draw[1] = keep.long()
        else:
            draw[1] = 0
        if replicated():
            draw = draw.to(device)
            dist.broadcast(draw, src=0)
        active, keep_all = (int(value) for value in draw.tolist())
        return self.num_quantizers if keep_all else active

    def _untouched(self, index: int) -> torch.Tensor:
        """Zero, with a zero gradient to a dropped stage's parameters.

        DistributedDataParallel expects a gradient for every parameter in every step; a
        stage that quantize dropout skipped gets zeros, as it would on every replica.
        """
        zero = torch.zeros((), dtype=torch.float32)
        for parameter in cast(nn.Module, self._stage(index)).parameters():
            zero = zero.to(parameter.device) + 0.0 * parameter.float().sum()
        return zero

    def _residual_dtype(self, inputs: torch.Tensor) -> torch.dtype:
        return compute_dtype(check_floating("inputs", inputs).dtype)

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs`` stage by stage; in a training step each stage updates its state.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last`` stages, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)`` with indices
            $(B, *, S)$ and counts $(S, K)$; ``terms`` sums the stages' terms by name.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if the first stage refuses the inputs' shape, or a stage gives
                more than one index per position.
        """
        z = inputs.to(self._residual_dtype(inputs))
        training_step = self.training and torch.is_grad_enabled()
        active = self._active_stages(training_step, inputs.device)
        residual = z
        outputs: list[QuantizerOutput] = []
        for index in range(active):
            out = self._stage(index)(residual)
            check_part_output(out, "stages", index)
            codes = out.quantized.to(z.dtype)
            outputs.append(out._replace(quantized=codes))
            if index + 1 < active:
                residual = residual - codes.detach()
        quantized = outputs[0].quantized
        for out in outputs[1:]:  # in stage order, as decode sums them
            quantized = quantized + out.quantized
        loss, terms = sum_losses(outputs)
        for index in range(active, self.num_quantizers):
            loss = loss + self._untouched(index)
        first = outputs[0]
        dropped = self.num_quantizers - active
        indices = [out.indices for out in outputs]
        indices += [torch.full_like(first.indices, DROPPED)] * dropped
        counts = [out.counts for out in outputs] + [torch.zeros_like(first.counts)] * dropped
        return QuantizerOutput(
            quantized=quantized.to(inputs.dtype),
            indices=torch.stack(indices, dim=-1),
            loss=loss,
            terms=terms,
            counts=torch.stack(counts),
        )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Every stage's index, touching no state (all stages, no dropout).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last`` stages, $(B, *, D)$.

        Returns:
            int64 indices $(B, *, S)$, equal to ``self(inputs).indices`` in eval mode.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if the first stage refuses the inputs' shape.
        """
        with torch.no_grad():
            residual = inputs.detach().to(self._residual_dtype(inputs))
            stage_indices = []
            for index in range(self.num_quantizers):
                stage = self._stage(index)
                chosen = stage.encode(residual)
                stage_indices.append(chosen)
                if index + 1 < self.num_quantizers:
                    residual = residual - stage.decode(chosen).to(residual.dtype)
        return torch.stack(stage_indices, dim=-1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum the stages' codes, $z_q = \\sum_s Q_s^{-1}(k_s)$; ``-1`` (dropped) adds 0.

        Args:
            indices: int tensor $(B, S)$ or $(B, *, S)$ (up to three dims in $*$), values
                in $[0, K)$ or ``-1`` (checked: this reads the values).

        Returns:
            The codes in at least float32, channel-first $(B, D, *)$ or $(B, *, D)$ with
            ``channel_last`` stages.

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 2..5, a last dim other than $S$, or an index
                outside $[-1, K)$.
        """
        indices = stacked_indices(
            indices, self.codebook_size, self.num_quantizers, "num_quantizers", dropped=True
        )
        total = self._stage_codes(indices, 0)
        for index in range(1, self.num_quantizers):
            total = total + self._stage_codes(indices, index)
        return total

    def _stage_codes(self, indices: torch.Tensor, index: int) -> torch.Tensor:
        """Stage ``index``'s codes of ``indices[..., index]``, exact zeros where dropped."""
        stage_indices = indices[..., index]
        codes = self._stage(index).decode(stage_indices.clamp_min(0))
        codes = codes.to(compute_dtype(codes.dtype))
        dropped = (stage_indices == DROPPED).unsqueeze(-1 if self.channel_last else 1)
        return torch.where(dropped, 0.0, codes)
