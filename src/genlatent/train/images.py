"""Image grids written with Pillow (the ``train`` extra)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from einops import rearrange

from genlatent._atomic import atomic_write
from genlatent._validation import check_floating, check_ndim, check_positive_int

__all__ = ["image_grid", "save_grid", "save_image_grid"]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def image_grid(images: torch.Tensor, *, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile a batch of images into one ``uint8`` image of shape ``(H', W', C)``.

    Values are clamped to $[0, 1]$ and scaled to $[0, 255]$. Missing cells of the last row
    are left black.

    Args:
        images: a batch in $[0, 1]$.
        nrow: images per row; defaults to $\\lceil\\sqrt{N}\\rceil$.
        padding: black pixels between cells.

    Raises:
        TypeError: if ``images`` is not a floating-point tensor or ``nrow`` not an int.
        ValueError: on a shape other than $(N, 1|3, H, W)$, an empty batch, ``nrow < 1``
            or a negative ``padding``.

    Shape:
        - images: $(N, C, H, W)$ with $C \\in \\{1, 3\\}$
        - output: $(R(H+p)+p, n(W+p)+p, C)$

    Example:
        >>> import torch
        >>> image_grid(torch.rand(6, 1, 4, 4), nrow=3, padding=1).shape
        torch.Size([11, 16, 1])
    """
    check_floating("images", images)
    check_ndim("images", images, (4,), "(N, C, H, W)")
    if nrow is not None:
        check_positive_int("nrow", nrow)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(images.shape)}")
    if n == 0:
        raise ValueError("images must hold at least one image, got an empty batch")
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = torch.zeros(rows * cols, c, h + padding, w + padding, dtype=torch.uint8)
    pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    canvas[:n, :, padding:, padding:] = pixels
    grid = rearrange(canvas, "(r n) c h w -> (r h) (n w) c", r=rows, n=cols)
    return torch.nn.functional.pad(grid, (0, 0, 0, padding, 0, padding))


def save_image_grid(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    nrow: int | None = None,
    padding: int = 2,
    scale: int = 1,
) -> Path:
    """Write `image_grid` of ``images`` to an image file at ``path`` (needs Pillow).

    The format follows the extension: ``.png`` (lossless), ``.jpg``/``.jpeg`` (JPEG).

    ``scale`` enlarges each pixel (nearest neighbour) so small images stay legible.
    """
    return save_grid(image_grid(images, nrow=nrow, padding=padding), path, scale=scale)


def save_grid(grid: torch.Tensor, path: str | os.PathLike[str], *, scale: int = 1) -> Path:
    """Write a ``uint8`` image $(H, W, C)$ (an `image_grid`) to ``path``, each pixel enlarged
    to ``scale`` x ``scale`` (nearest neighbour); the format follows the extension.

    Raises:
        ValueError: on an extension other than ``.png``, ``.jpg`` or ``.jpeg``.
        ImportError: without Pillow (the ``train`` extra).
    """
    image_format = _FORMATS.get(Path(path).suffix.lower())
    if image_format is None:
        raise ValueError(
            f"path must end in one of {', '.join(sorted(_FORMATS))} (the image format), "
            f"got {str(path)!r}"
        )
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("writing images needs Pillow: pip install 'genlatent[train]'") from error
    array = grid.squeeze(-1).numpy() if grid.shape[-1] == 1 else grid.numpy()
    picture = Image.fromarray(array)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
        )
    path = Path(path)
    with atomic_write(path) as handle:
        picture.save(handle, format=image_format)
    return path
