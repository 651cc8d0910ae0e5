r"""What every autoregressive prior over a grid of codes shares: checks, likelihood, sampling.

A prior models a grid of code indices $x \in \{0, \dots, K-1\}^{h \times w}$ in raster
order (row by row, left to right), $T = hw$ positions:

$$p(x \mid y) = \prod_{t=0}^{T-1} p(x_t \mid x_{<t}, y),$$

A grid of stacked codes $(h, w, s)$ (the $s$ stage indices of a residual quantizer, or
the group indices of a grouped one, at each position) is modelled jointly in the same
order with the stage fastest: the $s$ codes of a position, in turn, after every code of
the positions before it ($T = hws$), as one plane of $h$ rows and $ws$ columns.

with an optional class label $y$. A class-conditional prior trained with
``label_dropout`` $> 0$ replaces each training label by a null class $\varnothing$ (index
``num_classes``) with that probability, so the one network also models
$p(x \mid \varnothing)$, the unconditional distribution; sampling with classifier-free
guidance (Ho and Salimans 2022) then draws each code from the logits

$$\ell^{(s)}_t = \ell_t(\varnothing) + s\,\big(\ell_t(y) - \ell_t(\varnothing)\big),$$

which are the conditional ones at $s = 1$ and the unconditional ones at $s = 0$. A
subclass computes the logits of every conditional in
one pass (`_forward_logits`) and, for sampling, the logits of position $t$ given the
codes already drawn (`_sequential_logits`); this base turns them into `loss`,
`log_prob` and `sample`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._device import module_device
from genlatent._validation import (
    _checking_values,
    check_positive_int,
    check_reduction,
    check_tensor,
)
from genlatent.priors._sampling import check_sampling_args, draw

__all__ = ["PriorLoss"]

_LN_2 = math.log(2.0)
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class PriorLoss(NamedTuple):
    """What a prior's ``loss`` returns; ``loss`` is minimised, both are logged."""

    loss: torch.Tensor
    r"""Negative log-likelihood in nats per code, $-\log p(x \mid y) / T$, reduced over the
    batch."""
    bits_per_code: torch.Tensor
    r"""The same in bits: ``loss / ln 2``; $\log_2 K$ for a uniform prior."""


def _check_grid_shape(grid_shape: object) -> tuple[int, ...]:
    if (
        isinstance(grid_shape, (str, bytes))
        or not isinstance(grid_shape, Sequence)
        or len(grid_shape) not in (2, 3)
    ):
        raise TypeError(
            f"grid_shape must be a pair (h, w) of ints, or a triple (h, w, s) for s stacked "
            f"codes per position, got {grid_shape!r}"
        )
    return tuple(check_positive_int("grid_shape", size) for size in grid_shape)


class _CodeGridModel(nn.Module):
    """What every model over grids of codes shares: sizes, label and guidance checks."""

    def __init__(
        self,
        codebook_size: int,
        grid_shape: Sequence[int],
        num_classes: int | None,
        label_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.codebook_size = check_positive_int("codebook_size", codebook_size)
        self.grid_shape = _check_grid_shape(grid_shape)
        height, width, *stacked = self.grid_shape
        self._plane = (height, width * math.prod(stacked))
        """The grid as the subclasses see it: $h$ rows of $w s$ codes."""
        if num_classes is not None:
            check_positive_int("num_classes", num_classes)
        self.num_classes = num_classes
        self.label_dropout = _check_label_dropout(label_dropout, num_classes)

    @property
    def null_class(self) -> int | None:
        """The index of the null class $\varnothing$ (``num_classes``) when the prior was
        built with ``label_dropout > 0``, else ``None``: labels equal to it give the
        unconditional model."""
        return self.num_classes if self.label_dropout > 0 else None

    @property
    def _embedded_classes(self) -> int:
        """Rows of a class embedding: the classes, and the null class if there is one."""
        assert self.num_classes is not None
        return self.num_classes + (1 if self.label_dropout > 0 else 0)

    @property
    def num_positions(self) -> int:
        """$T = h w$ (or $h w s$ for stacked codes), the number of codes in one grid."""
        return math.prod(self.grid_shape)

    # ------------------------------------------------------------------ checks

    def _check_indices(self, indices: object) -> torch.Tensor:
        indices = check_tensor("indices", indices)
        if indices.dtype not in _INTEGER_DTYPES:
            raise TypeError(
                f"indices must have an integer dtype (code indices, int64), got {indices.dtype}"
            )
        if tuple(indices.shape[1:]) != self.grid_shape:
            expected = ", ".join(str(size) for size in self.grid_shape)
            raise ValueError(
                f"indices must have shape (B, {expected}) (the prior's grid_shape), "
                f"got {tuple(indices.shape)}"
            )
        _check_range("indices", indices, self.codebook_size)
        return indices.long()

    def _check_labels(self, labels: object, batch: int) -> torch.Tensor | None:
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    "labels must be None: this prior is unconditional (num_classes=None), "
                    f"got a {type(labels).__name__}"
                )
            return None
        if labels is None:
            raise ValueError(
                f"labels are required: this prior is class-conditional "
                f"(num_classes={self.num_classes}), got None"
            )
        labels = check_tensor("labels", labels)
        if labels.dtype not in _INTEGER_DTYPES:
            raise TypeError(f"labels must have an integer dtype (int64), got {labels.dtype}")
        if tuple(labels.shape) != (batch,):
            raise ValueError(f"labels must have shape (B,) = ({batch},), got {tuple(labels.shape)}")
        _check_range("labels", labels, self._embedded_classes)
        return labels.long()

    def _drop_labels(
        self, labels: torch.Tensor | None, batch: int, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        """Checked labels; in training mode with ``label_dropout`` $p > 0$ each is replaced by
        the null class with probability $p$ (one uniform per label from ``generator``)."""
        if self.num_classes is None:
            return None
        labels = self._check_labels(labels, batch)
        if self.training and self.label_dropout > 0 and labels is not None:
            drop = torch.rand(labels.shape, generator=generator, device=labels.device)
            labels = torch.where(drop < self.label_dropout, self._embedded_classes - 1, labels)
        return labels

    def _check_guidance(self, guidance_scale: object) -> float:
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)):
            raise TypeError(f"guidance_scale must be a float, got {type(guidance_scale).__name__}")
        if not (guidance_scale >= 0 and math.isfinite(guidance_scale)):
            raise ValueError(f"guidance_scale must be >= 0 and finite, got {guidance_scale}")
        if guidance_scale != 1.0 and self.null_class is None:
            raise ValueError(
                f"guidance_scale={guidance_scale} needs a class-conditional prior trained with "
                "label_dropout > 0 (the null class is its unconditional model); this prior has "
                f"num_classes={self.num_classes}, label_dropout={self.label_dropout}"
            )
        return float(guidance_scale)

    def extra_repr(self) -> str:
        conditional = f", num_classes={self.num_classes}" if self.num_classes is not None else ""
        if self.label_dropout:
            conditional += f", label_dropout={self.label_dropout}"
        return f"codebook_size={self.codebook_size}, grid_shape={self.grid_shape}{conditional}"


class _GridPrior(_CodeGridModel):
    """Base of the autoregressive priors: `loss`, `log_prob`, `logits` and `sample`."""

    loss_unit = "nats/code"
    """What the loss terms are measured in: nats per code."""

    # ------------------------------------------------------------------ to implement

    def _forward_logits(self, indices: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits $(B, K, h, ws)$ of every conditional, from checked int64 indices
        $(B, h, ws)$ (the plane of `_plane`)."""
        raise NotImplementedError

    def _sequential_logits(
        self, codes: torch.Tensor, labels: torch.Tensor | None, *, use_cache: bool
    ) -> Iterator[torch.Tensor]:
        """Yield the logits $(B, K)$ of position $t = 0, 1, \\dots$ of the flat ``codes``
        $(B, T)$, reading ``codes[:, :t]`` only, which the caller may fill in between."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the protocol

    def forward(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The logits of every conditional; see `logits`."""
        indices = self._check_indices(indices)
        batch = indices.shape[0]
        labels = self._check_labels(labels, batch)
        logits = self._forward_logits(indices.reshape(batch, *self._plane), labels)
        return logits.reshape(batch, self.codebook_size, *self.grid_shape)

    def logits(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        r"""The logits of $p(x_t \mid x_{<t}, y)$ at every position, in one pass.

        The logits at position $(i, j)$ depend only on the codes before it in raster
        order (and on the label), never on $x_{ij}$ itself or later codes.

        Args:
            indices: the codes $x$, integers in $[0, K)$.
            labels: the class $y$ of each grid, required exactly when ``num_classes`` is set.

        Returns:
            Unnormalised log-probabilities over the codebook at every position.

        Raises:
            TypeError: if ``indices`` or ``labels`` is not an integer tensor.
            ValueError: on a shape other than $(B, h, w)$, codes outside $[0, K)$ or labels
                outside $[0, \text{num\_classes})$ (while value checks are on), labels
                given to an unconditional prior or missing for a conditional one.

        Shape:
            - indices: $(B, h, w)$, or $(B, h, w, s)$ for stacked codes
            - labels: $(B,)$
            - output: $(B, K, h, w)$, or $(B, K, h, w, s)$
        """
        return self(indices, labels)

    def log_prob(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        r"""The exact log-likelihood of each grid, in nats.

        $$\log p(x \mid y) = \sum_{t=0}^{T-1} \log \operatorname{softmax}(\ell_t)_{x_t},$$

        with $\ell_t$ the logits at position $t$ (see `logits`); computed in float32 at
        least.

        Takes the arguments of `logits` and raises its errors.

        Shape:
            - indices: $(B, h, w)$
            - labels: $(B,)$
            - output: $(B,)$
        """
        logits = self.logits(indices, labels)
        if logits.dtype not in (torch.float32, torch.float64):
            logits = logits.float()
        nll = F.cross_entropy(logits, indices.long(), reduction="none")  # (B, *grid_shape)
        return -nll.flatten(start_dim=1).sum(dim=1)

    def loss(
        self,
        indices: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
    ) -> PriorLoss:
        r"""Negative log-likelihood per code: the quantity a prior is trained on.

        $$\mathcal{L}(x) = -\frac{1}{T} \log p(x \mid y) \quad \text{nats per code},$$

        averaged over the batch for ``reduction="mean"`` (an empty batch gives ``nan``),
        summed for ``"sum"``, one per grid for ``"none"``. ``bits_per_code`` is
        $\mathcal{L} / \ln 2$.

        Args:
            indices: the codes $(B, h, w)$.
            labels: the classes $(B,)$, required when ``num_classes`` is set. An
                unconditional prior ignores them, so a trainer that passes a labelled
                dataset's labels to every ``loss`` that declares them can train it
                (`logits`, `log_prob` and `sample` still refuse them).
            reduction: ``"mean"``, ``"sum"`` or ``"none"``.
            generator: draws the label dropout in training mode (on the labels' device).

        In training mode with ``label_dropout`` $p > 0$, each label is replaced by the
        null class with probability $p$ before the likelihood is computed; in eval mode
        the loss is the exact conditional likelihood of the labels given.

        Raises:
            ValueError: on an unknown ``reduction``; otherwise as `logits`.
        """
        reduction = check_reduction(reduction)
        if self.num_classes is None:
            labels = None
        elif self.training and self.label_dropout > 0 and labels is not None:
            labels = self._drop_labels(labels, check_tensor("indices", indices).shape[0], generator)
        per_grid = -self.log_prob(indices, labels) / self.num_positions
        if reduction == "mean":
            per_grid = per_grid.mean()
        elif reduction == "sum":
            per_grid = per_grid.sum()
        return PriorLoss(per_grid, per_grid / _LN_2)

    def _sample(
        self,
        num: int,
        labels: torch.Tensor | None,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        generator: torch.Generator | None,
        *,
        use_cache: bool,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        check_positive_int("num", num)
        labels = self._check_labels(labels, num)
        temperature, top_k, top_p = check_sampling_args(temperature, top_k, top_p)
        scale = self._check_guidance(guidance_scale)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        device = module_device(self)
        guided = scale != 1.0 and labels is not None
        if labels is not None and guided:  # one batch: the labels' rows, then the null class's
            labels = torch.cat([labels, torch.full_like(labels, self._embedded_classes - 1)])
        rows = 2 * num if guided else num
        codes = torch.zeros(rows, self.num_positions, dtype=torch.long, device=device)
        with torch.no_grad():
            steps = self._sequential_logits(codes, labels, use_cache=use_cache)
            for t, logits in enumerate(steps):
                if guided:
                    conditional, unconditional = logits.float().chunk(2)
                    logits = unconditional + scale * (conditional - unconditional)
                drawn = draw(
                    logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
                )
                codes[:, t] = drawn.repeat(2) if guided else drawn
        return codes[:num].reshape(num, *self.grid_shape)


def _check_label_dropout(label_dropout: object, num_classes: int | None) -> float:
    if isinstance(label_dropout, bool) or not isinstance(label_dropout, (int, float)):
        raise TypeError(f"label_dropout must be a float, got {type(label_dropout).__name__}")
    if not 0.0 <= label_dropout < 1.0:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
    if label_dropout > 0 and num_classes is None:
        raise ValueError(
            f"label_dropout={label_dropout} needs num_classes: it drops class labels, and an "
            "unconditional prior has none"
        )
    return float(label_dropout)


def _check_range(name: str, values: torch.Tensor, size: int) -> None:
    """While value checks are on, require integers in ``[0, size)``."""
    if not _checking_values() or values.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(values))
    if low < 0 or high >= size:
        raise ValueError(f"{name} must be in [0, {size}), got values from {low} to {high}")
