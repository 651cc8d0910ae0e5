r"""The VQ-VAE vector quantizer, with a learnable or an EMA codebook."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from genlatent._deprecation import renamed_method
from genlatent._validation import (
    check_choice,
    check_in_open_interval,
    check_non_negative_float,
    check_optional_positive_int,
    check_positive_int,
)
from genlatent.functional._dtype import compute_dtype
from genlatent.functional.kmeans import kmeans
from genlatent.functional.quantize import (
    code_counts,
    code_sums,
    ema_codebook_update,
    nearest_code,
    straight_through,
    vq_losses,
)
from genlatent.functional.rotation import rotation_trick
from genlatent.nn._layout import (
    PackedShapes,
    check_indices,
    indices_from_rows,
    output_from_rows,
    rows_of,
    to_layout,
)
from genlatent.nn._replicas import replicated
from genlatent.nn.quantizer import QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["VectorQuantizer"]


class _Quantized(NamedTuple):
    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    counts: torch.Tensor


def _quantize_rows(
    rows: torch.Tensor,
    codebook: torch.Tensor,
    *,
    commitment_weight: float,
    ema: bool,
    chunk_size: int | None,
    gradient: str = "straight_through",
) -> _Quantized:
    """The hot path: a pure function of tensors with no data-dependent Python branches."""
    indices = nearest_code(rows, codebook, chunk_size=chunk_size)
    selected = F.embedding(indices, codebook)
    losses = vq_losses(rows, selected)
    weighted = commitment_weight * losses.commitment
    loss = weighted if ema else losses.codebook + weighted
    # in EMA mode the codebook term is not optimised (it equals the commitment term)
    terms = {"commitment": losses.commitment}
    if not ema:
        terms = {"codebook": losses.codebook, **terms}
    return _Quantized(
        quantized=_ESTIMATORS[gradient](rows, selected),
        indices=indices,
        loss=loss,
        terms=terms,
        counts=code_counts(indices, codebook.shape[0]),
    )


_ESTIMATORS = {"straight_through": straight_through, "rotation": rotation_trick}
_DISTANCES = ("l2", "cosine")
_INITS = ("uniform", "kmeans")
_KMEANS_ITERATIONS = 10


def _all_finite(values: torch.Tensor) -> torch.Tensor:
    """``torch.isfinite(values).all()`` in one pass: min and max propagate NaN and infinity."""
    if values.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=values.device)
    low, high = torch.aminmax(values)
    return torch.isfinite(low) & torch.isfinite(high)


def _all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class VectorQuantizer(nn.Module, PretrainedMixin):
    r"""Replace each $D$-dim vector by its nearest codebook row (VQ-VAE, van den Oord et al. 2017).

    $$k_j = \operatorname*{arg\,min}_i \lVert z_j - e_i \rVert_2^2, \qquad z_q = e_{k},$$

    with the straight-through gradient $\partial z_q / \partial z = I$ and the loss of
    eq. 3 without its reconstruction term:

    $$L = \lVert \operatorname{sg}[z] - e \rVert^2
        + \beta \lVert z - \operatorname{sg}[e] \rVert^2,$$

    each term a mean over all elements, $\beta$ = ``commitment_weight``. With ``ema=True``
    the codebook is not learned by gradient but is an exponential moving average of the
    vectors assigned to each code (appendix A.1, `ema_codebook_update`), and $L$ keeps only
    the commitment term.

    **Shapes, worked through.** Channel-first input $(B, D, H, W) = (2, 16, 8, 8)$ is
    rearranged to $(2, 8, 8, 16)$ and packed to $N = 2 \cdot 8 \cdot 8 = 128$ rows of
    $D = 16$: $(128, 16)$. Each row is compared with the $K$ codes $(K, 16)$, giving
    indices $(128,)$ and quantized rows $(128, 16)$, which are unpacked back to indices
    $(2, 8, 8)$ and quantized $(2, 16, 8, 8)$. With ``channel_last=True`` the input is
    $(2, 8, 8, 16)$ and the quantized output too. $(B, D)$, $(B, D, L)$ and
    $(B, D, T, H, W)$ (channel-last: $(B, D)$, $(B, N, D)$, $(B, T, H, W, D)$) work the
    same way. No reshape assumes a batch size: $B = 0$ works (loss ``nan``, the mean of
    nothing; all counts 0).

    **Codebook.** Initialised uniform in $(-1/K, 1/K)$ (as the PyTorch VQ-VAE tutorials).
    Learnable mode: ``codebook`` is an ``nn.Parameter``. EMA mode: ``codebook`` is a buffer,
    never in ``parameters()``, with buffers ``cluster_size`` $(K,)$ and ``embed_sum``
    $(K, D)$. Without bias correction they start at 1 and at the codebook (as if each code
    had been assigned its own value once), so unused codes neither explode nor collapse;
    with ``bias_correction=True`` they start at 0 with a step counter ``ema_step`` and the
    averages are divided by $1 - \gamma^t$ (sonnet's ``ExponentialMovingAverage``).

    **When state changes.** The EMA update, the dead-code restart and their counters run
    only in a *training step*: ``self.training`` and ``torch.is_grad_enabled()`` (so a
    reentrant-checkpoint recomputation or a ``no_grad`` pass in train mode does not count
    twice), under ``no_grad``, after the batch is quantized with the old codebook. Under
    ``torch.distributed`` the counts and sums are all-reduced (sum) first, so replicas keep
    identical codebooks. Usage is not state: each forward returns this batch's code
    ``counts``, and a trainer sums them. A batch holding NaN or infinity (possible only
    while `set_validate_args` is off; otherwise it raises) changes no state at all: no EMA
    step, no restart, on any replica, so a trainer that skips the step keeps a clean
    codebook.

    **Dead codes.** With ``restart_dead_codes=n``, a code that no vector chose (on any
    replica) for ``n`` consecutive training steps is re-seeded to a random row of the
    current batch's inputs (drawn with ``self.generator``, default the global RNG on the
    inputs' device; under ``torch.distributed`` rank 0 draws and broadcasts). Its EMA
    statistics are reset as if it had been assigned that vector once. In learnable mode
    the optimiser's state for the row is left as it is.

    Args:
        codebook_size: number of codes $K$ (512 in the reference experiment).
        embedding_dim: code dimension $D$, the encoder's output channels (16).
        commitment_weight: $\beta \ge 0$ (0.25 in the paper).
        ema: learn the codebook by EMA (appendix A.1) instead of by gradient.
        decay: EMA decay $\gamma \in (0, 1)$.
        eps: Laplace smoothing $\epsilon > 0$ of the EMA cluster sizes.
        bias_correction: divide the EMA statistics by $1 - \gamma^t$ (needs ``ema``).
        channel_last: inputs are $(B, \ldots, D)$ rather than $(B, D, \ldots)$.
        restart_dead_codes: re-seed codes unused for this many consecutive training
            steps; ``None`` (default) never does.
        chunk_size: codes per distance block in the nearest-code search (bounded memory
            for huge codebooks); ``None`` for all at once.
        distance: ``"l2"`` (default), or ``"cosine"``: inputs and codes are scaled to unit
            length before the search, and the quantized vectors are unit codes (the
            codebook, and the EMA statistics of unit inputs, keep any length).
        gradient: ``"straight_through"`` (default), or ``"rotation"``: the rotation trick
            of Fifty et al. 2024 (`rotation_trick`), same values, rotated gradients.
        init: ``"uniform"`` (default), or ``"kmeans"``: the first training step replaces
            the codebook by 10 Lloyd steps of `kmeans` on its batch's rows (unit rows with
            ``"cosine"``), seeded with $K$ distinct rows drawn with ``self.generator``
            (with replacement if the batch has fewer); under ``torch.distributed`` rank 0
            draws the seeds and every step's statistics are all-reduced, so replicas agree.
            The buffer ``initialized`` records it (and travels in the ``state_dict``).
        device: where to create the codebook and buffers.
        dtype: the codebook's dtype; EMA statistics are at least float32.

    Raises:
        TypeError: on an argument of the wrong type.
        ValueError: on ``codebook_size``/``embedding_dim`` < 1, ``decay`` outside (0, 1),
            ``eps`` <= 0, a negative or non-finite ``commitment_weight``,
            ``bias_correction`` without ``ema``, or an unknown ``distance``/``gradient``/
            ``init``.

    Shape:
        - inputs: $(B, D, *)$ with up to three trailing dims, or $(B, *, D)$ if ``channel_last``
        - quantized: same as inputs
        - indices: $(B, *)$

    Example:
        >>> import torch
        >>> quantizer = VectorQuantizer(512, 16)
        >>> out = quantizer(torch.randn(2, 16, 8, 8))
        >>> out.quantized.shape, out.indices.shape, out.loss.shape
        (torch.Size([2, 16, 8, 8]), torch.Size([2, 8, 8]), torch.Size([]))
        >>> quantizer.decode(out.indices).shape
        torch.Size([2, 16, 8, 8])
    """

    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    ema_step: torch.Tensor
    steps_since_used: torch.Tensor
    initialized: torch.Tensor

    def __init__(
        self,
        codebook_size: int,
        embedding_dim: int,
        *,
        commitment_weight: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        bias_correction: bool = False,
        channel_last: bool = False,
        restart_dead_codes: int | None = None,
        chunk_size: int | None = None,
        distance: str = "l2",
        gradient: str = "straight_through",
        init: str = "uniform",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.codebook_size = check_positive_int("codebook_size", codebook_size)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.commitment_weight = check_non_negative_float("commitment_weight", commitment_weight)
        self.decay = check_in_open_interval("decay", decay, 0.0, 1.0)
        self.eps = check_in_open_interval("eps", eps, 0.0, math.inf)
        if bias_correction and not ema:
            raise ValueError("bias_correction=True needs ema=True, got ema=False")
        self.ema = bool(ema)
        self.bias_correction = bool(bias_correction)
        self.channel_last = bool(channel_last)
        self.restart_dead_codes = check_optional_positive_int(
            "restart_dead_codes", restart_dead_codes
        )
        self.chunk_size = check_optional_positive_int("chunk_size", chunk_size)
        self.distance = check_choice("distance", distance, _DISTANCES)
        self.gradient = check_choice("gradient", gradient, tuple(_ESTIMATORS))
        self.init = check_choice("init", init, _INITS)
        self.generator: torch.Generator | None = None

        codebook = torch.empty(codebook_size, embedding_dim, device=device, dtype=dtype)
        if self.ema:
            self.codebook: torch.Tensor
            self.register_buffer("codebook", codebook)
            stats_dtype = compute_dtype(codebook.dtype)
            self.register_buffer(
                "cluster_size", torch.empty(codebook_size, device=device, dtype=stats_dtype)
            )
            self.register_buffer(
                "embed_sum",
                torch.empty(codebook_size, embedding_dim, device=device, dtype=stats_dtype),
            )
            if self.bias_correction:
                self.register_buffer("ema_step", torch.zeros((), dtype=torch.int64, device=device))
        else:
            self.codebook = nn.Parameter(codebook)
        if self.restart_dead_codes is not None:
            self.register_buffer(
                "steps_since_used", torch.zeros(codebook_size, dtype=torch.int64, device=device)
            )
        if self.init == "kmeans":
            self.register_buffer("initialized", torch.zeros((), dtype=torch.bool, device=device))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the codebook uniform in (-1/K, 1/K) and reset the EMA state and counters."""
        bound = 1.0 / self.codebook_size
        self.codebook.uniform_(-bound, bound)
        if self.ema:
            if self.bias_correction:
                self.cluster_size.zero_()
                self.embed_sum.zero_()
                self.ema_step.zero_()
            else:
                self.cluster_size.fill_(1.0)
                self.embed_sum.copy_(self.codebook)
        if self.restart_dead_codes is not None:
            self.steps_since_used.zero_()
        if self.init == "kmeans":
            self.initialized.zero_()

    def extra_repr(self) -> str:
        parts = [
            f"codebook_size={self.codebook_size}",
            f"embedding_dim={self.embedding_dim}",
            f"commitment_weight={self.commitment_weight}",
        ]
        if self.ema:
            parts += [f"ema=True, decay={self.decay}", f"eps={self.eps}"]
            if self.bias_correction:
                parts.append("bias_correction=True")
        if self.channel_last:
            parts.append("channel_last=True")
        if self.restart_dead_codes is not None:
            parts.append(f"restart_dead_codes={self.restart_dead_codes}")
        if self.chunk_size is not None:
            parts.append(f"chunk_size={self.chunk_size}")
        if self.distance != "l2":
            parts.append(f"distance={self.distance!r}")
        if self.gradient != "straight_through":
            parts.append(f"gradient={self.gradient!r}")
        if self.init != "uniform":
            parts.append(f"init={self.init!r}")
        return ", ".join(parts)

    # ----------------------------------------------------------------------------- shapes

    def _rows(self, inputs: torch.Tensor) -> tuple[torch.Tensor, PackedShapes]:
        return rows_of(
            inputs, self.embedding_dim, channel_last=self.channel_last, dim_name="embedding_dim"
        )

    def _unit(self, rows: torch.Tensor) -> torch.Tensor:
        """With ``distance="cosine"``, rows scaled to unit length (in at least float32)."""
        if self.distance == "l2":
            return rows
        return F.normalize(rows.to(compute_dtype(rows.dtype)), dim=1)

    def _codes(self) -> torch.Tensor:
        """The codebook as searched: unit rows with ``distance="cosine"``."""
        return self._unit(self.codebook)

    # ---------------------------------------------------------------------------- forward

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs``; in a training step, then update the EMA codebook and counters.

        Args:
            inputs: encoder output, $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)``; ``terms``
            holds ``codebook`` and ``commitment`` (only ``commitment`` with ``ema``, where
            the codebook term is not optimised).

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count, or (while
                `set_validate_args` is on) holds NaN or infinity.
        """
        rows, packed_shapes = self._rows(inputs)
        rows = self._unit(rows)
        training_step = self.training and torch.is_grad_enabled()
        if training_step:
            self._initialize(rows)
        result = _quantize_rows(
            rows,
            self._codes(),
            commitment_weight=self.commitment_weight,
            ema=self.ema,
            chunk_size=self.chunk_size,
            gradient=self.gradient,
        )
        self._update_state(rows, result.indices, result.counts, training_step=training_step)
        return output_from_rows(
            result.quantized.to(inputs.dtype),
            result.indices,
            packed_shapes,
            channel_last=self.channel_last,
            loss=result.loss,
            terms=result.terms,
            counts=result.counts,
        )

    # ----------------------------------------------------------------------- housekeeping

    @torch.no_grad()
    def _update_state(
        self,
        rows: torch.Tensor,
        indices: torch.Tensor,
        counts: torch.Tensor,
        *,
        training_step: bool,
    ) -> None:
        """EMA update and dead-code restart: everything that mutates state.

        A batch holding a NaN or infinite value (on any replica) changes none of it, so
        a trainer that skips a non-finite step (``skip_nonfinite``) finds the codebook
        as it was. The test runs on the device, with no host synchronisation: the update
        is computed and then discarded with ``torch.where``. Under ``torch.distributed``
        the EMA flag comes from the all-reduced sums (a non-finite row makes its code's
        sum non-finite on every replica), so all replicas agree without extra traffic.
        """
        if not training_step:
            return
        if self.ema:
            stats = torch.cat(
                [counts.unsqueeze(1), code_sums(rows, indices, self.codebook_size)], 1
            )
            if replicated():
                dist.all_reduce(stats, op=dist.ReduceOp.SUM)
            finite = torch.isfinite(stats).all()
            global_counts = stats[:, 0]
            self._ema_update(global_counts, stats[:, 1:], finite)
        elif self.restart_dead_codes is None:
            return  # a learnable codebook without restarts keeps no state to update
        else:
            global_counts, finite = counts, _all_finite(rows)
            if replicated():
                # the last entry counts the replicas that saw a non-finite value
                flagged = torch.cat([counts, (~finite).to(counts.dtype).unsqueeze(0)])
                dist.all_reduce(flagged, op=dist.ReduceOp.SUM)
                global_counts, finite = flagged[:-1], flagged[-1] == 0
        # the restart reads its dead codes on the host anyway, so this sync is free
        if self.restart_dead_codes is not None and bool(finite):
            self._restart_dead_codes(rows, global_counts, self.restart_dead_codes)

    @torch.no_grad()
    def _initialize(self, rows: torch.Tensor) -> None:
        """With ``init="kmeans"``, once: the codebook from k-means of ``rows`` (a host sync)."""
        if self.init != "kmeans" or bool(self.initialized):
            return
        distributed = replicated()
        stats_dtype = compute_dtype(self.codebook.dtype)
        rows = rows.detach().to(stats_dtype)
        size, num_rows = self.codebook_size, rows.shape[0]
        if num_rows >= size:
            pick = torch.randperm(num_rows, generator=self.generator, device=rows.device)[:size]
            seeds = rows[pick]
        elif num_rows > 0:
            pick = torch.randint(num_rows, (size,), generator=self.generator, device=rows.device)
            seeds = rows[pick]
        else:
            seeds = self.codebook.detach().to(stats_dtype).clone()
        if distributed:
            dist.broadcast(seeds, src=0)
        result = kmeans(
            rows,
            seeds,
            iterations=_KMEANS_ITERATIONS,
            reduce=_all_reduce_sum if distributed else None,
        )
        self.codebook.copy_(result.centroids)
        if self.ema and not self.bias_correction:  # as reset_parameters: each code seen once
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(self.codebook)
        self.initialized.fill_(True)

    def _ema_update(self, counts: torch.Tensor, sums: torch.Tensor, finite: torch.Tensor) -> None:
        step = None
        if self.bias_correction:
            self.ema_step.add_(finite.to(self.ema_step.dtype))
            step = self.ema_step
        update = ema_codebook_update(
            self.cluster_size,
            self.embed_sum,
            counts,
            sums,
            decay=self.decay,
            eps=self.eps,
            step=step,
            codebook=self.codebook,
        )
        # a non-finite batch leaves every statistic as it was (see _update_state)
        self.cluster_size.copy_(torch.where(finite, update.cluster_size, self.cluster_size))
        self.embed_sum.copy_(torch.where(finite, update.embed_sum, self.embed_sum))
        self.codebook.copy_(torch.where(finite, update.codebook, self.codebook))

    def _restart_dead_codes(self, rows: torch.Tensor, counts: torch.Tensor, after: int) -> None:
        self.steps_since_used.add_(1).masked_fill_(counts > 0, 0)
        dead = torch.nonzero(self.steps_since_used >= after).squeeze(1)
        if dead.numel() == 0:  # the same on every replica: counts are all-reduced
            return
        if rows.shape[0] > 0:
            pick = torch.randint(
                rows.shape[0], (dead.numel(),), device=rows.device, generator=self.generator
            )
            seeds = rows[pick].to(self.codebook.dtype)
        else:
            seeds = self.codebook[dead].clone()
        if replicated():
            dist.broadcast(seeds, src=0)
        self.codebook[dead] = seeds
        self.steps_since_used[dead] = 0
        if self.ema:
            # as if each re-seeded code had been assigned its new value once
            scale = 1.0
            if self.bias_correction:
                scale = 1.0 - self.decay ** int(self.ema_step)
            self.cluster_size[dead] = scale
            self.embed_sum[dead] = scale * seeds.to(self.embed_sum.dtype)

    # ------------------------------------------------------------------------ public API

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the nearest code of each vector, touching no state (no EMA, no counters).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            int64 indices $(B, *)$, the same as ``self(inputs).indices``.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = self._rows(inputs)
        indices = nearest_code(self._unit(rows), self._codes(), chunk_size=self.chunk_size)
        return indices_from_rows(indices, packed_shapes)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Map code indices back to codebook vectors (the inverse of `encode`).

        Args:
            indices: int tensor $(B,)$ or $(B, *)$ (up to three trailing dims), values in
                $[0, K)$ (checked: this reads the values).

        Returns:
            The vectors, channel-first $(B, D, *)$ (or $(B, *, D)$ with ``channel_last``);
            $(B, D)$ for $(B,)$ indices. In learnable mode it is differentiable with
            respect to the codebook.

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 1..4 or an index outside $[0, K)$.
        """
        indices = check_indices(indices, self.codebook_size)
        vectors = F.embedding(indices, self._codes())
        return to_layout(vectors, channel_last=self.channel_last)

    # Old names of 0.1, kept for one release (see docs/guides/migration.md).
    lookup = renamed_method("VectorQuantizer", "lookup", "decode")
