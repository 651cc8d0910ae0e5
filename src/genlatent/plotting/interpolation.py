"""Decode a straight line between the posterior means of two images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from genlatent._protocols import GaussianLatentModel
from genlatent._validation import (
    check_floating,
    check_ndim,
    check_positive_int,
    require_methods,
)
from genlatent.functional.likelihood import likelihood_mean
from genlatent.plotting._figure import new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["interpolation_figure", "latent_interpolation", "plot_interpolation"]


def _one_image(name: str, x: torch.Tensor) -> torch.Tensor:
    check_floating(name, x)
    check_ndim(name, x, (3, 4), "(C, H, W) or (1, C, H, W)")
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(
                f"{name} must be one image, (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}"
            )
        x = x[0]
    return x


def _data_mean(model: nn.Module, output: torch.Tensor) -> torch.Tensor:
    likelihood = getattr(model, "likelihood", None)
    return output if likelihood is None else likelihood_mean(output, likelihood)


@torch.no_grad()
def latent_interpolation(
    model: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10
) -> torch.Tensor:
    r"""Decode evenly spaced points between the posterior means of two images.

    $$z_t = (1 - t)\,\mu(x_a) + t\,\mu(x_b), \qquad t = 0, \tfrac{1}{S-1}, \dots, 1,$$

    decoded like `VAE.reconstruct`: probabilities (the sigmoid of the logits) for a
    Bernoulli likelihood, the Gaussian mean otherwise. So the first and last images are the
    reconstructions of ``x_a`` and ``x_b``. Runs in eval mode without gradients and puts
    the model's mode back afterwards.

    Args:
        model: a `VAE`, or any module with ``encode(x) -> (mean, log_var)`` and
            ``decode(z)``.
        x_a: the start image, on the model's device.
        x_b: the end image.
        steps: $S \ge 2$, the number of decoded points, ends included.

    Returns:
        The decoded images.

    Raises:
        TypeError: if ``model`` has no ``encode`` or ``decode`` method, an image is not
            floating point, or ``steps`` is not an int.
        ValueError: if an image is not one $(C, H, W)$ image, the two shapes differ, or
            ``steps`` < 2.

    Shape:
        - x_a, x_b: $(C, H, W)$ or $(1, C, H, W)$
        - output: $(S, C, H, W)$

    Example:
        >>> import torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder
        >>> vae = VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))
        >>> latent_interpolation(vae, torch.rand(1, 4, 4), torch.rand(1, 4, 4), steps=5).shape
        torch.Size([5, 1, 4, 4])
    """
    x_a = _one_image("x_a", x_a)
    x_b = _one_image("x_b", x_b)
    if x_a.shape != x_b.shape:
        raise ValueError(
            f"x_a and x_b must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}"
        )
    check_positive_int("steps", steps)
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both ends are included), got {steps}")
    require_methods(model, ("encode", "decode"), "latent_interpolation")
    latent = cast(GaussianLatentModel, model)  # by capability, checked just above
    was_training = model.training
    model.eval()
    try:
        mean, _ = latent.encode(torch.stack([x_a, x_b]))
        t = torch.linspace(0, 1, steps, device=mean.device, dtype=mean.dtype).unsqueeze(1)
        z = torch.lerp(mean[:1], mean[1:], t)
        return _data_mean(model, latent.decode(z))
    finally:
        model.train(was_training)


def plot_interpolation(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw decoded interpolation points side by side in one row, labelled by $t$.

    Args:
        images: $S$ images in $[0, 1]$ (values outside are clipped), greyscale or RGB,
            such as the output of `latent_interpolation`.
        path: where the PNG goes.
        title: the figure title; defaults to "Latent interpolation (S steps)".

    Returns:
        ``path`` as a `Path`.

    Raises:
        TypeError: if ``images`` is not floating point.
        ValueError: if ``images`` is not $(S, C, H, W)$ with $S \\ge 1$ and $C \\in \\{1, 3\\}$.
        ImportError: if matplotlib is not installed.

    Shape:
        - images: $(S, C, H, W)$

    Example:
        >>> import tempfile, pathlib, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_interpolation(torch.rand(6, 1, 8, 8), pathlib.Path(folder) / "i.png").name
        'i.png'
    """
    return save_png(interpolation_figure(images, title=title), path)


def interpolation_figure(images: torch.Tensor, *, title: str | None = None) -> Figure:
    """The figure `plot_interpolation` writes: the images in one strip, ticks labelled by $t$.

    The strip is one image (``axes[0].images[0]``) holding the $S$ images left to right,
    clipped to $[0, 1]$, separated by white columns; the $S$ tick labels are
    $t = i / (S - 1)$.

    Args:
        images: $S$ images in $[0, 1]$ (values outside are clipped), greyscale or RGB.
        title: the figure title; defaults to "Latent interpolation (S steps)".

    Returns:
        A `matplotlib.figure.Figure` with one axes, drawn by Agg (no pyplot state).

    Raises:
        TypeError: if ``images`` is not floating point.
        ValueError: if ``images`` is not $(S, C, H, W)$ with $S \\ge 1$ and $C \\in \\{1, 3\\}$.
        ImportError: if matplotlib is not installed.

    Shape:
        - images: $(S, C, H, W)$

    Example:
        >>> import torch
        >>> figure = interpolation_figure(torch.rand(3, 1, 8, 8))
        >>> [label.get_text() for label in figure.axes[0].get_xticklabels()]
        ['0.00', '0.50', '1.00']
    """
    check_floating("images", images)
    check_ndim("images", images, (4,), "(S, C, H, W)")
    steps, channels, height, width = images.shape
    if steps == 0 or channels not in (1, 3):
        raise ValueError(
            f"images must hold at least one image with 1 or 3 channels, "
            f"got shape {tuple(images.shape)}"
        )
    pad = max(1, width // 14)
    pixels = images.detach().float().cpu().clamp(0, 1)
    strip = torch.ones(channels, height, steps * (width + pad) - pad)
    for i in range(steps):
        strip[:, :, i * (width + pad) : i * (width + pad) + width] = pixels[i]

    figure = new_figure(max(4.0, 1.1 * steps), 2.0)
    ax = figure.subplots()
    if channels == 1:
        ax.imshow(strip[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest")
    centres = [i * (width + pad) + (width - 1) / 2 for i in range(steps)]
    ax.set_xticks(centres)
    ax.set_xticklabels([f"{i / max(steps - 1, 1):.2f}" for i in range(steps)], fontsize="small")
    ax.set_yticks([])
    ax.set_xlabel("t")
    ax.set_title(title or f"Latent interpolation ({steps} steps)")
    return figure
