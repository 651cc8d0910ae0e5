"""The PatchGAN discriminator of pix2pix and VQGAN: a logit for every image patch."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from genlatent._validation import (
    check_choice,
    check_floating,
    check_input_dtype,
    check_ndim,
    check_positive_int,
)
from genlatent.pretrained import PretrainedMixin

__all__ = ["PatchDiscriminator"]

NORMS = ("batch", "group", "none")
_MAX_MULTIPLIER = 8  # widths stop doubling at 8 x channels, as in pix2pix
_KERNEL = 4


def _norm(norm: str, channels: int, factory: dict[str, Any]) -> list[nn.Module]:
    if norm == "batch":
        return [nn.BatchNorm2d(channels, **factory)]
    if norm == "group":
        return [nn.GroupNorm(math.gcd(32, channels), channels, **factory)]
    return []


class PatchDiscriminator(nn.Module, PretrainedMixin):
    r"""A PatchGAN discriminator (Isola et al. 2017): one real/fake logit per patch.

    The layout of pix2pix's ``NLayerDiscriminator``, which VQGAN (Esser et al. 2021)
    uses: every convolution is $4 \times 4$ with padding 1,

    ```
    Conv stride 2 (C_in -> c)  ->  LeakyReLU(0.2)
    -> [Conv stride 2 (-> c * min(2^l, 8))  ->  norm  ->  LeakyReLU(0.2)]  for l = 1..L-1
    -> Conv stride 1 (-> c * min(2^L, 8))   ->  norm  ->  LeakyReLU(0.2)
    -> Conv stride 1 (-> 1)
    ```

    with $c$ = ``channels`` and $L$ = ``layers``. A stride-2 convolution maps a side $H$
    to $\lfloor H / 2 \rfloor$ and a stride-1 one to $H - 1$, so the output side is
    $H' = \lfloor H / 2^L \rfloor - 2$ (for $H \ge 2^{L+2}$; 30 for $H = 256$, $L = 3$). Each
    logit sees a patch of side (the receptive field)

    $$r = 1 + 3 \sum_{l=0}^{L-1} 2^l + 3 \cdot 2^L + 3 \cdot 2^L = 9 \cdot 2^L - 2,$$

    70 pixels for the default $L = 3$ (pix2pix's "70x70 PatchGAN"). Convolutions followed
    by a norm have no bias (the norm's shift replaces it). Weights start from
    $\mathcal{N}(0, 0.02^2)$ (norm scales from $\mathcal{N}(1, 0.02^2)$), as in DCGAN
    (Radford et al. 2016) and pix2pix.

    Args:
        in_channels: image channels $C_{in}$.
        channels: width $c$ of the first convolution (64 in pix2pix and VQGAN).
        layers: the number $L$ of stride-2 convolutions (3 in pix2pix and VQGAN).
        norm: ``"batch"`` (pix2pix, VQGAN), ``"group"`` (GroupNorm with
            $\gcd(32, C)$ groups: no statistics shared across the batch) or ``"none"``.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, an ``x`` that is not
            floating-point or (without autocast) not of the parameters' dtype.
        ValueError: on a size below 1 or an unknown ``norm``; in ``forward``, an ``x`` not
            shaped $(B, C_{in}, H, W)$ or too small to leave one logit.

    Shape:
        - input: $(B, C_{in}, H, W)$
        - output: logits $(B, 1, H', W')$, $H' = \lfloor H / 2^L \rfloor - 2$ (likewise $W'$)

    Example:
        >>> import torch
        >>> discriminator = PatchDiscriminator(3)
        >>> discriminator(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
        >>> discriminator.receptive_field
        70
    """

    def __init__(
        self,
        in_channels: int,
        *,
        channels: int = 64,
        layers: int = 3,
        norm: str = "batch",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.channels = check_positive_int("channels", channels)
        self.layers = check_positive_int("layers", layers)
        self.norm = check_choice("norm", norm, NORMS)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        bias = norm == "none"
        body: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, _KERNEL, stride=2, padding=1, **factory),
            nn.LeakyReLU(0.2),
        ]
        width = channels
        for level in range(1, layers + 1):
            stride = 2 if level < layers else 1
            out = channels * min(2**level, _MAX_MULTIPLIER)
            body += [
                nn.Conv2d(width, out, _KERNEL, stride=stride, padding=1, bias=bias, **factory),
                *_norm(norm, out, factory),
                nn.LeakyReLU(0.2),
            ]
            width = out
        body.append(nn.Conv2d(width, 1, _KERNEL, stride=1, padding=1, **factory))
        self.body = nn.Sequential(*body)
        self._initialise()

    @torch.no_grad()
    def _initialise(self) -> None:
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    @property
    def receptive_field(self) -> int:
        """The side $9 \\cdot 2^L - 2$ of the input patch each logit depends on."""
        return 9 * 2**self.layers - 2

    def output_size(self, size: int) -> int:
        """The output side $H'$ for an input side $H$ (below 1: the input is too small)."""
        for _ in range(self.layers):
            size //= 2
        return size - 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of "real" for every patch of ``x``, $(B, 1, H', W')$."""
        check_floating("x", x)
        check_ndim("x", x, (4,), f"(B, {self.in_channels}, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have {self.in_channels} channels, shape (B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if min(self.output_size(int(side)) for side in x.shape[2:]) < 1:
            raise ValueError(
                f"x must have height and width >= {3 * 2**self.layers} for "
                f"layers={self.layers} (at least one logit), got {tuple(x.shape)}"
            )
        check_input_dtype("x", x, cast(nn.Conv2d, self.body[0]).weight)
        return self.body(x)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, channels={self.channels}, layers={self.layers}, "
            f"norm={self.norm!r}"
        )
