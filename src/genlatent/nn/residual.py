r"""Residual vector quantization (SoundStream): `ResidualVQ`, stages of `VectorQuantizer`."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._validation import check_positive_int
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.quantize import nearest_code, straight_through
from genlatent.functional.rotation import rotation_trick
from genlatent.nn._layout import output_from_rows, rows_of
from genlatent.nn.quantize import VectorQuantizer, _quantize_rows
from genlatent.nn.quantizer import QuantizerOutput
from genlatent.nn.residual_quantizer import DROPPED, ResidualQuantizer

__all__ = ["ResidualVQ"]


class _Residual(NamedTuple):
    total: torch.Tensor  # sum of the stages' codes, (N, D), no gradient to the inputs
    indices: torch.Tensor  # (N, S), DROPPED for stages left out
    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    counts: torch.Tensor  # (S, K), zero rows for stages left out
    residuals: list[torch.Tensor]  # each active stage's input, (N, D)


def _residual_rows(
    rows: torch.Tensor,
    codebooks: list[torch.Tensor],
    *,
    active: int,
    commitment_weight: float,
    ema: bool,
    chunk_size: int | None,
) -> _Residual:
    """The hot path: quantize the residual with the first ``active`` codebooks in turn.

    A pure function of tensors (no state, no data-dependent Python branches), so it
    compiles as one graph; the loop over stages unrolls.
    """
    num_stages = len(codebooks)
    residual = rows
    loss = rows.new_zeros((), dtype=torch.float32)
    terms: dict[str, torch.Tensor] = {}
    indices: list[torch.Tensor] = []
    counts: list[torch.Tensor] = []
    residuals: list[torch.Tensor] = []
    codes: list[torch.Tensor] = []
    for stage, codebook in enumerate(codebooks):
        if stage >= active:
            indices.append(torch.full_like(indices[0], DROPPED))
            counts.append(torch.zeros_like(counts[0]))
            continue
        result = _quantize_rows(
            residual, codebook, commitment_weight=commitment_weight, ema=ema, chunk_size=chunk_size
        )
        selected = result.quantized.detach()  # the value is exactly the chosen code
        codes.append(selected)
        residuals.append(residual)
        if stage + 1 < num_stages:
            residual = residual - selected
        loss = loss + result.loss
        for name, value in result.terms.items():
            terms[name] = terms[name] + value if name in terms else value
        indices.append(result.indices)
        counts.append(result.counts)
    total = codes[0]  # summed in stage order, as `ResidualVQ.decode` does
    for selected in codes[1:]:
        total = total + selected
    return _Residual(
        total=total,
        indices=torch.stack(indices, dim=1),
        loss=loss,
        terms=terms,
        counts=torch.stack(counts),
        residuals=residuals,
    )


class ResidualVQ(ResidualQuantizer):
    r"""Residual vector quantization (Zeghidour et al. 2021, SoundStream, algorithm 1).

    The `ResidualQuantizer` over $S$ = ``num_quantizers`` stages of `VectorQuantizer`
    (``stages``, built from ``options``), each quantizing what the ones before it left
    over; its `encode`, `decode` and quantize dropout are the composition's, and its
    forward a fused path over the stages' codebooks (one compiled graph, float32
    residuals) that gives the composition's codes, indices, losses and EMA steps for
    straight-through stages (tested) and adds what the contract alone cannot: one shared
    codebook with one EMA step, and the rotation trick over the whole sum:

    $$r_0 = z, \qquad k_s = \operatorname*{arg\,min}_i \lVert r_s - e^{(s)}_i \rVert^2,
      \qquad r_{s+1} = r_s - e^{(s)}_{k_s}, \qquad
      z_q = \sum_{s=0}^{S-1} e^{(s)}_{k_s},$$

    with one straight-through gradient from $z_q$ to $z$ ($\partial z_q/\partial z = I$, as
    SoundStream and EnCodec train it; with the option ``gradient="rotation"``, the
    rotation trick from $z$ to $z_q$ instead). `ResidualQuantizer` over the same stages
    sums the stages' own estimators instead, $S \cdot I$ here: the two differ in the
    gradient of the output only.
    Each stage adds its own loss on its own residual (codebook and commitment terms, or
    commitment only with ``ema``); ``loss`` is their sum, ``terms`` their sums by name.
    The stage inputs $r_s$ carry the gradient to $z$ (the codes subtracted from them do
    not), so every stage's commitment term trains the encoder. Indices are
    $(B, *, S)$, ``counts`` $(S, K)$, one row per stage; `decode` sums the stages' codes in
    the same order, so ``decode(encode(x))`` equals ``forward(x).quantized`` exactly. The
    residuals are computed in at least float32 whatever the input dtype.

    ``options`` go to every stage's `VectorQuantizer` (``commitment_weight``, ``ema``,
    ``decay``, ``eps``, ``bias_correction``, ``restart_dead_codes``, ``chunk_size``,
    ``gradient``, ``init``, ``device``, ``dtype``; ``distance`` must stay ``"l2"``; with
    ``init="kmeans"`` each stage's k-means runs on its own residual, stage after stage, in
    the first training step), whose docstring says when state changes (a training step
    only) and how it is all-reduced under ``torch.distributed``. With
    ``shared_codebook=True`` one `VectorQuantizer` serves every stage; its EMA step and
    dead-code counters then run once per training step over all stages' residuals and
    codes together (not once per stage, which would decay the averages $S$ times).

    **Quantize dropout** (SoundStream section 3.3). With ``quantize_dropout=True``, each
    training step (``self.training`` and grad enabled) uses only the first $n$ stages, $n$
    drawn uniformly from $\{1, \ldots, S\}$ with ``self.generator``, on the rows' device as
    `VectorQuantizer`'s (default ``None``: that device's global RNG); under
    ``torch.distributed`` rank 0 draws and broadcasts $n$, so all replicas run the same
    stages (their all-reduces must match). A dropped stage has index
    ``-1`` (`DROPPED`), a zero row of ``counts``, no loss and no state change; `decode`
    reads ``-1`` as "no code", so ``decode(out.indices)`` still equals ``out.quantized``.

    **Shapes, worked through.** $S = 4$, $K = 512$, $D = 16$, channel-first input
    $(2, 16, 8, 8)$: packed to rows $(128, 16)$, each stage gives indices $(128,)$, stacked
    to $(128, 4)$ and unpacked to $(2, 8, 8, 4)$; quantized $(128, 16)$ back to
    $(2, 16, 8, 8)$; counts $(4, 512)$.

    Args:
        num_quantizers: $S \ge 1$ stages.
        codebook_size: $K$ codes per stage (``codebook_size`` of the contract).
        embedding_dim: $D$, the input channels.
        shared_codebook: one codebook for every stage.
        quantize_dropout: drop a random number of trailing stages in each training step.
        channel_last: inputs are $(B, \ldots, D)$ rather than $(B, D, \ldots)$.
        **options: keyword arguments of each stage's `VectorQuantizer`.

    Raises:
        TypeError: on an argument of the wrong type, including an unknown option.
        ValueError: on ``num_quantizers`` < 1 or an invalid option value.

    Shape:
        - inputs: $(B, D, *)$ with up to three trailing dims, or $(B, *, D)$ if ``channel_last``
        - quantized: same as inputs
        - indices: $(B, *, S)$
        - counts: $(S, K)$

    Example:
        >>> import torch
        >>> rvq = ResidualVQ(4, 512, 16)
        >>> out = rvq(torch.randn(2, 16, 8, 8))
        >>> out.quantized.shape, out.indices.shape, out.counts.shape
        (torch.Size([2, 16, 8, 8]), torch.Size([2, 8, 8, 4]), torch.Size([4, 512]))
        >>> torch.equal(rvq.decode(out.indices), out.quantized)
        True
    """

    def __init__(
        self,
        num_quantizers: int,
        codebook_size: int,
        embedding_dim: int,
        *,
        shared_codebook: bool = False,
        quantize_dropout: bool = False,
        channel_last: bool = False,
        **options: Any,
    ) -> None:
        nn.Module.__init__(self)
        num_quantizers = check_positive_int("num_quantizers", num_quantizers)
        self.shared_codebook = bool(shared_codebook)
        count = 1 if self.shared_codebook else num_quantizers
        self.stages = nn.ModuleList(
            VectorQuantizer(codebook_size, embedding_dim, channel_last=channel_last, **options)
            for _ in range(count)
        )
        first = self._stage(0)
        if first.distance != "l2":
            raise ValueError(
                f"ResidualVQ quantizes residuals in Euclidean distance: distance must be "
                f"'l2', got {first.distance!r}"
            )
        self._init_residual(
            num_quantizers, first.codebook_size, bool(channel_last), bool(quantize_dropout)
        )
        self.embedding_dim = first.embedding_dim

    def _stage(self, index: int) -> VectorQuantizer:
        return cast(VectorQuantizer, self.stages[0 if self.shared_codebook else index])

    def extra_repr(self) -> str:
        parts = [f"num_quantizers={self.num_quantizers}"]
        if self.shared_codebook:
            parts.append("shared_codebook=True")
        if self.quantize_dropout > 0:
            parts.append("quantize_dropout=True")
        if self.channel_last:
            parts.append("channel_last=True")
        return ", ".join(parts)

    def _rows(self, inputs: torch.Tensor) -> tuple[torch.Tensor, Any]:
        rows, packed_shapes = rows_of(inputs, self.embedding_dim, channel_last=self.channel_last)
        codebook_dtype = self._stage(0).codebook.dtype
        dtype = compute_dtype(rows.dtype, codebook_dtype)
        return rows.to(dtype), packed_shapes

    def _residual_dtype(self, inputs: torch.Tensor) -> torch.dtype:
        return compute_dtype(super()._residual_dtype(inputs), self._stage(0).codebook.dtype)

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs`` in stages; in a training step, update each stage's state.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)`` with indices
            $(B, *, S)$ and counts $(S, K)$; ``terms`` sums the stages' terms by name.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count, or (while
                `set_validate_args` is on) holds NaN or infinity.
        """
        rows, packed_shapes = self._rows(inputs)
        training_step = self.training and torch.is_grad_enabled()
        active = self._active_stages(training_step, rows.device)
        if training_step:
            self._initialize_stages(rows)
        first = self._stage(0)
        result = _residual_rows(
            rows,
            [self._stage(s).codebook for s in range(self.num_quantizers)],
            active=active,
            commitment_weight=first.commitment_weight,
            ema=first.ema,
            chunk_size=first.chunk_size,
        )
        self._update_state(result, active, training_step=training_step)
        estimator = rotation_trick if first.gradient == "rotation" else straight_through
        return output_from_rows(
            estimator(rows, result.total).to(inputs.dtype),
            result.indices,
            packed_shapes,
            channel_last=self.channel_last,
            loss=result.loss,
            terms=result.terms,
            counts=result.counts,
        )

    @torch.no_grad()
    def _initialize_stages(self, rows: torch.Tensor) -> None:
        """With ``init="kmeans"``: k-means for each stage on its residual, once, in order."""
        if self._stage(0).init != "kmeans":
            return
        count = 1 if self.shared_codebook else self.num_quantizers
        if all(bool(self._stage(index).initialized) for index in range(count)):
            return
        residual = rows.detach()
        for index in range(count):
            stage = self._stage(index)
            stage._initialize(residual)  # a no-op for a stage already initialised
            chosen = nearest_code(residual, stage.codebook, chunk_size=stage.chunk_size)
            residual = residual - F.embedding(chosen, stage.codebook).to(residual.dtype)

    @torch.no_grad()
    def _update_state(self, result: _Residual, active: int, *, training_step: bool) -> None:
        if not training_step:
            return
        if self.shared_codebook:
            self._stage(0)._update_state(
                torch.cat(result.residuals),
                result.indices[:, :active].T.reshape(-1),
                result.counts[:active].sum(dim=0),
                training_step=True,
            )
            return
        for stage in range(active):
            self._stage(stage)._update_state(
                result.residuals[stage],
                result.indices[:, stage],
                result.counts[stage],
                training_step=True,
            )
