r"""How close reconstructions are to their images: PSNR, SSIM, and a Fréchet distance in
the features of the classifier genlatent trains (not Inception: see `frechet_distance`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from genlatent._device import module_device
from genlatent._validation import check_floating, check_ndim, check_positive_float, check_same_shape
from genlatent.data.batching import TensorBatches
from genlatent.metrics.frechet import frechet_distance

__all__ = ["classifier_features", "psnr", "reconstruction_frechet_distance", "ssim"]

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window (Wang et al. 2004, section III-C)."""
SSIM_SIGMA = 1.5
"""Standard deviation of the window, in pixels."""
SSIM_K1, SSIM_K2 = 0.01, 0.03
"""The constants of $C_1 = (K_1 R)^2$ and $C_2 = (K_2 R)^2$."""


def _pair(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    x_tensor, y_tensor = check_floating("x", x), check_floating("y", y)
    check_ndim("x", x_tensor, (4,), "(B, C, H, W)")
    check_same_shape("x", x_tensor, "y", y_tensor)
    return x_tensor, y_tensor


def _working_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 stays float64; half precisions are computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    r"""Peak signal-to-noise ratio of each image, in dB.

    $$\operatorname{PSNR}(x, y) = 10 \log_{10} \frac{R^2}{\frac{1}{CHW}\sum_{c,h,w}
      (x_{chw} - y_{chw})^2},$$

    ``inf`` for identical images. The mean over a set of these per-image values is larger
    than the PSNR of the set's pooled MSE (`Evaluation.psnr`), by Jensen's inequality.

    Args:
        x: images, e.g. reconstructions.
        y: the images to compare with, same shape.
        data_range: $R$, the span of the values (1 for $[0, 1]$, 255 for bytes).

    Returns:
        One value per image, $(B,)$, float32 (float64 for float64 input).

    Raises:
        TypeError: if ``x`` or ``y`` is not a floating-point tensor.
        ValueError: if they are not $(B, C, H, W)$ of one shape, or ``data_range`` is not
            positive.

    Shape:
        - x, y: $(B, C, H, W)$
        - output: $(B,)$

    Example:
        >>> import torch
        >>> x = torch.zeros(2, 1, 4, 4)
        >>> psnr(x, x + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1))
        tensor([20., 40.])
    """
    x, y = _pair(x, y)
    data_range = check_positive_float("data_range", data_range)
    dtype = _working_dtype(x)
    mse = (x.to(dtype) - y.to(dtype)).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian of side 11 and sigma 1.5 (its outer product is 2-D)."""
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - (SSIM_WINDOW - 1) / 2
    window = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    r"""Structural similarity of each image (Wang et al. 2004, eq. 13), as the authors' code.

    Local statistics under a Gaussian window $w$ ($11 \times 11$, $\sigma = 1.5$,
    normalised to sum 1), in every channel and at every position where the window fits
    inside the image (MATLAB's ``filter2(..., 'valid')``, no padding):

    $$\mu_x = w * x, \quad \sigma_x^2 = w * x^2 - \mu_x^2, \quad
      \sigma_{xy} = w * (xy) - \mu_x \mu_y,$$

    $$\operatorname{SSIM} = \frac{(2 \mu_x \mu_y + C_1)(2 \sigma_{xy} + C_2)}
      {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}, \qquad
      C_1 = (0.01 R)^2, \; C_2 = (0.03 R)^2,$$

    averaged over the $(H - 10)(W - 10)$ positions and the $C$ channels. The reference code
    also downsamples images larger than 256 pixels a side first; this does not. Libraries
    that pad the images and average over the border too give slightly different values.

    Args:
        x: images, e.g. reconstructions.
        y: the images to compare with, same shape.
        data_range: $R$, the span of the values (1 for $[0, 1]$).

    Returns:
        One value per image in $[-1, 1]$, $(B,)$: 1 for identical images. Computed in
        float32 (float64 for float64 input).

    Raises:
        TypeError: if ``x`` or ``y`` is not a floating-point tensor.
        ValueError: if they are not $(B, C, H, W)$ of one shape with $H, W \ge 11$, or
            ``data_range`` is not positive.

    Shape:
        - x, y: $(B, C, H, W)$, $H, W \ge 11$
        - output: $(B,)$

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x)
        tensor([1., 1.])
        >>> bool((ssim(x, x.flip(0)) < 0.5).all())
        True
    """
    x, y = _pair(x, y)
    data_range = check_positive_float("data_range", data_range)
    if min(x.shape[2:]) < SSIM_WINDOW:
        raise ValueError(
            f"x and y must have height and width >= {SSIM_WINDOW} (SSIM's window), "
            f"got shape {tuple(x.shape)}"
        )
    dtype = _working_dtype(x)
    x, y = x.to(dtype), y.to(dtype)
    window = _gaussian_window(dtype, x.device)
    # the five local moments of every channel at once: (B*C, 5, H, W), filtered separably
    stacked = rearrange(torch.stack([x, y, x * x, y * y, x * y], dim=2), "b c m h w -> (b c) m h w")
    filtered = F.conv2d(stacked, window.view(1, 1, -1, 1).expand(5, 1, -1, 1), groups=5)
    filtered = F.conv2d(filtered, window.view(1, 1, 1, -1).expand(5, 1, 1, -1), groups=5)
    mean_x, mean_y, moment_xx, moment_yy, moment_xy = filtered.unbind(dim=1)
    var_x = moment_xx - mean_x.square()
    var_y = moment_yy - mean_y.square()
    covariance = moment_xy - mean_x * mean_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2)
    )
    per_channel = index.flatten(1).mean(dim=1)
    return rearrange(per_channel, "(b c) -> b c", b=x.shape[0]).mean(dim=1)


@torch.no_grad()
def classifier_features(
    classifier: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 1000
) -> torch.Tensor:
    """``classifier.features`` of many images, batch by batch, float64 on the CPU.

    Args:
        classifier: a `Classifier` (any module with ``features``).
        images: uint8 images in $[0, 255]$ or floating ones in $[0, 1]$, $(N, C, S, S)$,
            on any device (moved to the classifier's batch by batch).
        batch_size: images per forward pass.

    Returns:
        $(N, D)$ float64 features.
    """
    device = module_device(classifier)
    parts = [
        classifier.features(batch.images).cpu().double()  # type: ignore[operator]
        for batch in TensorBatches(images, batch_size=batch_size, device=device)
    ]
    return torch.cat(parts)


def reconstruction_frechet_distance(
    classifier: torch.nn.Module,
    images: torch.Tensor,
    reconstructions: torch.Tensor,
    *,
    batch_size: int = 1000,
) -> float:
    r"""The Fréchet distance between images and their reconstructions, in classifier features.

    `frechet_distance` of ``classifier.features`` of the two sets: the "rFID" of image
    tokenizers, but in the features of genlatent's small classifier trained on the same
    dataset, not of Inception-v3 on ImageNet. The numbers rank models of one dataset
    against each other; they are not comparable with published rFID values (another
    network, another feature space, other images), and they are biased upwards for small
    $N$: compare at equal $N$.

    Args:
        classifier: a `Classifier` trained on the dataset (see `load_or_train_classifier`).
        images: the originals, uint8 or floating in $[0, 1]$.
        reconstructions: the model's reconstructions of them, in the same range.
        batch_size: images per forward pass.

    Returns:
        $d^2 \ge 0$.

    Raises:
        ValueError: if the two sets differ in shape or hold fewer than 2 images.

    Shape:
        - images, reconstructions: $(N, C, S, S)$, $N \ge 2$
    """
    check_same_shape("images", images, "reconstructions", reconstructions)
    if images.shape[0] < 2:
        raise ValueError(
            f"images must hold at least 2 images (a covariance needs two), got {images.shape[0]}"
        )
    return frechet_distance(
        classifier_features(classifier, images, batch_size=batch_size),
        classifier_features(classifier, reconstructions, batch_size=batch_size),
    )
