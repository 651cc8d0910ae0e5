"""Convolutional encoder and decoder with residual blocks (the reference VQ-VAE's)."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from genlatent._validation import (
    check_floating,
    check_input_dtype,
    check_ndim,
    check_positive_int,
)
from genlatent.pretrained import PretrainedMixin

__all__ = ["ConvDecoder", "ConvEncoder", "ResidualBlock"]


def _check_image(
    name: str, x: torch.Tensor, channels: int, weight: torch.Tensor, min_size: int = 1
) -> torch.Tensor:
    check_floating(name, x)
    check_ndim(name, x, (4,), f"(B, {channels}, H, W)")
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels, shape (B, {channels}, H, W), "
            f"got {tuple(x.shape)}"
        )
    if min(x.shape[2:]) < min_size:
        raise ValueError(
            f"{name} must have height and width >= {min_size}, shape (B, {channels}, H, W), "
            f"got {tuple(x.shape)}"
        )
    check_input_dtype(name, x, weight)
    return x


def _first_weight(layers: nn.Sequential) -> torch.Tensor:
    """The weight of the first convolution (its dtype is the one inputs must have)."""
    return cast(nn.Conv2d, layers[0]).weight


class ResidualBlock(nn.Module, PretrainedMixin):
    r"""One convolution with an identity skip: $y = x + \operatorname{conv}(x)$.

    The convolution keeps the spatial size (``padding = kernel_size // 2`` for odd kernels).

    Args:
        channels: input and output channels $C$.
        kernel_size: an odd kernel size (the reference uses 3 and 1).
        transposed: use ``ConvTranspose2d`` (the decoder side), else ``Conv2d``.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, an ``x`` that is not floating-point or
            (without autocast) not of the parameters' dtype.
        ValueError: on ``channels``/``kernel_size`` < 1 or an even ``kernel_size``; in
            ``forward``, an ``x`` not shaped $(B, C, H, W)$ or with an empty side.

    Shape:
        - input: $(B, C, H, W)$
        - output: $(B, C, H, W)$

    Example:
        >>> import torch
        >>> ResidualBlock(8, 3)(torch.randn(2, 8, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        *,
        transposed: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        if check_positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the size, got {kernel_size}")
        conv_type = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = conv_type(
            channels, channels, kernel_size, padding=kernel_size // 2, device=device, dtype=dtype
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + conv(x)``."""
        return x + self.conv(_check_image("x", x, self.channels, self.conv.weight))


class ConvEncoder(nn.Module, PretrainedMixin):
    r"""Downsample images 4x with strided convolutions and residual blocks.

    The reference VQ-VAE encoder, layer for layer:

    ```
    Conv 4x4 stride 2 (C_in -> C_h)  ->  Conv 4x4 stride 2 (C_h -> C_h)  ->  ReLU
    -> Residual 3x3  ->  ReLU  ->  Residual 1x1  ->  Conv 1x1 (C_h -> C_out)
    ```

    Each stride-2 convolution (padding 1) halves an even side: 32x32 becomes 8x8 and
    28x28 becomes 7x7. ``ConvEncoder(3, 512, 16)`` has 6,850,576 parameters.

    Args:
        in_channels: image channels $C_{in}$ (3 for CIFAR-10, 1 for MNIST).
        hidden_channels: width $C_h$ of the body (512 in the reference).
        out_channels: latent channels $C_{out}$, the quantizer's ``embedding_dim`` (16).
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, an ``x`` that is not floating-point or
            (without autocast) not of the parameters' dtype.
        ValueError: on a size < 1; in ``forward``, an ``x`` not shaped
            $(B, C_{in}, H, W)$, or with $H$ or $W$ below 4.

    Shape:
        - input: $(B, C_{in}, H, W)$
        - output: $(B, C_{out}, H/4, W/4)$ for $H, W$ divisible by 4.

    Example:
        >>> import torch
        >>> ConvEncoder(3, 32, 16)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.hidden_channels = check_positive_int("hidden_channels", hidden_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 4, stride=2, padding=1, **factory),
            nn.Conv2d(hidden_channels, hidden_channels, 4, stride=2, padding=1, **factory),
            nn.ReLU(),
            ResidualBlock(hidden_channels, 3, **factory),
            nn.ReLU(),
            ResidualBlock(hidden_channels, 1, **factory),
            nn.Conv2d(hidden_channels, out_channels, 1, **factory),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images ``x`` to a latent grid."""
        # two stride-2 4x4 convolutions need at least 4 pixels a side to leave one
        return self.layers(_check_image("x", x, self.in_channels, _first_weight(self.layers), 4))


class ConvDecoder(nn.Module, PretrainedMixin):
    r"""Upsample a latent grid 4x: the mirror of `ConvEncoder` with transposed convolutions.

    ```
    Conv 1x1 (C_in -> C_h)  ->  Residual 1x1 (transposed)  ->  ReLU
    -> Residual 3x3 (transposed)  ->  ReLU
    -> ConvTranspose 2x2 stride 2 (C_h -> C_h)  ->  ConvTranspose 2x2 stride 2 (C_h -> C_out)
    ```

    8x8 becomes 32x32 and 7x7 becomes 28x28. The output is unconstrained (no sigmoid):
    a reconstruction scored by squared error, or logits.

    Args:
        in_channels: latent channels $C_{in}$ (the quantizer's ``embedding_dim``).
        hidden_channels: width $C_h$ of the body.
        out_channels: image channels $C_{out}$.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a bad argument type; in ``forward``, a ``z`` that is not floating-point or
            (without autocast) not of the parameters' dtype.
        ValueError: on a size < 1; in ``forward``, a ``z`` not shaped $(B, C_{in}, h, w)$
            or with an empty side.

    Shape:
        - input: $(B, C_{in}, h, w)$
        - output: $(B, C_{out}, 4h, 4w)$

    Example:
        >>> import torch
        >>> ConvDecoder(16, 32, 3)(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.hidden_channels = check_positive_int("hidden_channels", hidden_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 1, **factory),
            ResidualBlock(hidden_channels, 1, transposed=True, **factory),
            nn.ReLU(),
            ResidualBlock(hidden_channels, 3, transposed=True, **factory),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden_channels, hidden_channels, 2, stride=2, **factory),
            nn.ConvTranspose2d(hidden_channels, out_channels, 2, stride=2, **factory),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode a latent grid ``z`` to images."""
        return self.layers(_check_image("z", z, self.in_channels, _first_weight(self.layers)))
