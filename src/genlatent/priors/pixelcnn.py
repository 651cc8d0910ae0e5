"""The gated PixelCNN of van den Oord et al. (2016) as a prior over a grid of codes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from genlatent._validation import check_positive_int
from genlatent.pretrained import PretrainedMixin
from genlatent.priors._base import _GridPrior

__all__ = ["PixelCNNPrior"]


def _gate(x: torch.Tensor) -> torch.Tensor:
    r"""The gated unit $\tanh(a) \odot \sigma(b)$ of the two halves of the channels."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move every row one down (zeros in row 0): row ``i`` then holds what row ``i-1`` saw."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class _GatedLayer(nn.Module):
    """One gated layer: a vertical and a horizontal stack (van den Oord et al. 2016, fig. 2).

    With kernel size $n = 2r + 1$, the vertical convolution at $(i, j)$ reads rows
    $i - r \\dots i$, columns $j - r \\dots j + r$ of the vertical stack (so, by induction,
    only input rows $\\le i$); it reaches the horizontal stack shifted one row down, so
    through it position $(i, j)$ sees rows $< i$ only. The horizontal convolution reads
    columns $j - r \\dots j$ of its row, and $j - r - 1 \\dots j - 1$ in the first layer,
    which must not see the code it predicts. The horizontal stack is residual after the
    first layer. A class embedding adds a bias to both stacks' pre-activations (eq. 4).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        *,
        first: bool,
        num_classes: int | None,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.radius = kernel_size // 2
        self.first = first
        r, c = self.radius, channels
        self.vertical = nn.Conv2d(c, 2 * c, (r + 1, 2 * r + 1), **factory)
        self.horizontal = nn.Conv2d(c, 2 * c, (1, r + 1), **factory)
        self.vertical_to_horizontal = nn.Conv2d(2 * c, 2 * c, 1, **factory)
        self.horizontal_out = nn.Conv2d(c, c, 1, **factory)
        self.condition: nn.Embedding | None = None
        if num_classes is not None:
            self.condition = nn.Embedding(num_classes, 4 * c, **factory)
            nn.init.normal_(self.condition.weight, std=0.1)

    def forward(
        self, vertical: torch.Tensor, horizontal: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.radius
        v = self.vertical(F.pad(vertical, (r, r, r, 0)))
        # columns j - r ... j, or j - r - 1 ... j - 1 in the first layer (not the code at j)
        h_in = F.pad(horizontal, (r + 1, 0))[..., :-1] if self.first else F.pad(horizontal, (r, 0))
        h = self.horizontal(h_in) + self.vertical_to_horizontal(_shift_down(v))
        if self.condition is not None and labels is not None:
            bias_v, bias_h = rearrange(
                self.condition(labels), "b (two c) -> two b c 1 1", two=2
            ).unbind(0)
            v, h = v + bias_v, h + bias_h
        h = self.horizontal_out(_gate(h))
        return _gate(v), h if self.first else h + horizontal


class PixelCNNPrior(_GridPrior, PretrainedMixin):
    r"""Gated PixelCNN (van den Oord et al. 2016) over a grid of codes, as in VQ-VAE.

    The prior of the VQ-VAE paper (van den Oord et al. 2017, sec. 4): the codes are
    embedded ($E[x_{ij}] \in \mathbb{R}^C$), then ``layers`` gated layers, each with a
    vertical stack (the rows above) and a horizontal stack (the codes to the left in
    the same row), which together see every earlier position in raster order and no
    later one, without the blind spot of the masked PixelCNN. Each layer computes

    $$y = \tanh(W_f * x + V_f e_y) \odot \sigma(W_g * x + V_g e_y),$$

    the class-conditional bias $V e_y$ present only when ``num_classes`` is set. Two
    1x1 convolutions with ReLUs map the horizontal stack to the logits over the $K$ codes.

    Sampling runs the whole network once per position ($T = hw$ passes): there is no
    cache.

    Args:
        codebook_size: $K$, the number of codes.
        grid_shape: $(h, w)$ of one grid of codes, e.g. ``(8, 8)``; or $(h, w, s)$ for
            $s$ stacked codes per position (residual stages or groups), laid out as a
            plane of $h$ rows and $ws$ columns (the stages of a position side by side),
            so the raster order draws them in turn.
        channels: $C$, the width of both stacks.
        layers: number of gated layers (the first one cannot see the code it predicts).
        kernel_size: odd $n$; each layer widens the view by $n // 2$ rows and columns.
        num_classes: number of classes for a class-conditional prior; ``None`` for an
            unconditional one.
        label_dropout: the probability that a training label is replaced by the null
            class (index ``num_classes``, an extra embedding row), which makes the prior
            also model the unconditional distribution, for classifier-free guidance
            (``sample(..., guidance_scale=)``); 0 (the default) adds no null class.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a non-int size or a ``grid_shape`` that is not a pair or a triple.
        ValueError: on a size below 1 or an even ``kernel_size``. For the methods, see
            `logits`.

    Shape:
        - indices: $(B, h, w)$ integer codes (or $(B, h, w, s)$); labels: $(B,)$.
        - `logits`: $(B, K, h, w)$; `log_prob`: $(B,)$; `sample`: $(N, h, w)$ int64.

    Example:
        >>> import torch
        >>> prior = PixelCNNPrior(16, (3, 3), channels=8, layers=2, num_classes=10)
        >>> indices, labels = torch.randint(16, (4, 3, 3)), torch.tensor([0, 1, 2, 3])
        >>> prior.logits(indices, labels).shape
        torch.Size([4, 16, 3, 3])
        >>> prior.loss(indices, labels).loss.shape
        torch.Size([])
        >>> prior.sample(2, labels=torch.tensor([7, 7])).shape
        torch.Size([2, 3, 3])
    """

    def __init__(
        self,
        codebook_size: int,
        grid_shape: Sequence[int],
        *,
        channels: int = 64,
        layers: int = 8,
        kernel_size: int = 3,
        num_classes: int | None = None,
        label_dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(codebook_size, grid_shape, num_classes, label_dropout)
        self.channels = check_positive_int("channels", channels)
        self.layers = check_positive_int("layers", layers)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.code_embedding = nn.Embedding(self.codebook_size, channels, **factory)
        self.gated_layers = nn.ModuleList(
            _GatedLayer(
                channels,
                kernel_size,
                first=index == 0,
                num_classes=None if num_classes is None else self._embedded_classes,
                device=device,
                dtype=dtype,
            )
            for index in range(layers)
        )
        self.output = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, **factory),
            nn.ReLU(),
            nn.Conv2d(channels, self.codebook_size, 1, **factory),
        )

    def _forward_logits(self, indices: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = rearrange(self.code_embedding(indices), "b h w c -> b c h w")
        vertical, horizontal = x, x
        for layer in self.gated_layers:
            vertical, horizontal = layer(vertical, horizontal, labels)
        return self.output(horizontal)

    def _sequential_logits(
        self, codes: torch.Tensor, labels: torch.Tensor | None, *, use_cache: bool
    ) -> Iterator[torch.Tensor]:
        del use_cache  # always recomputes: there is no cache
        width = self._plane[1]
        for t in range(self.num_positions):
            grid = rearrange(codes, "b (h w) -> b h w", w=width)  # with the codes drawn so far
            yield self._forward_logits(grid, labels)[:, :, t // width, t % width]

    def sample(
        self,
        num: int,
        *,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        r"""Draw ``num`` grids of codes, one position at a time in raster order.

        Each position runs the whole network on the grid drawn so far; the logits at
        the position are filtered (temperature, then top-k, then top-p; see
        `filter_logits`) and one code is drawn by inverting the cumulative distribution
        with one uniform from ``generator``. Runs without gradients, on the parameters'
        device.

        Args:
            num: the number of grids $N$.
            labels: the class of each grid, $(N,)$, exactly when ``num_classes`` is set.
            temperature: $\tau > 0$; towards 0 the draw tends to the most likely code.
            top_k: draw among the ``top_k`` most likely codes only.
            top_p: draw among the smallest set of codes holding mass ``top_p`` only.
            generator: the source of randomness, on the parameters' device.
            guidance_scale: classifier-free guidance $s \ge 0$: each code is drawn from
                $\ell(\varnothing) + s(\ell(y) - \ell(\varnothing))$, the labels' logits
                and the null class's (see the module); 1 draws from the conditional
                model exactly as without guidance, 0 from the unconditional one. Needs
                a prior built with ``label_dropout > 0``.

        Returns:
            The codes, int64 $(N, h, w)$.

        Raises:
            TypeError: on a wrong argument type.
            ValueError: if ``num < 1``, ``temperature <= 0``, ``top_k < 1``, ``top_p``
                outside $(0, 1]$, or on bad ``labels`` (see `logits`).
        """
        return self._sample(
            num, labels, temperature, top_k, top_p, generator, use_cache=False,
            guidance_scale=guidance_scale,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, channels={self.channels}, layers={self.layers}, "
            f"kernel_size={self.kernel_size}"
        )
