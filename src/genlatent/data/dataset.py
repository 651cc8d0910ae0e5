"""The in-memory image dataset every reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genlatent._validation import check_tensor

__all__ = ["ImageDataset"]

_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images and labels held in memory as tensors, channel-first.

    Args:
        images: the pixels, ``torch.uint8`` in ``[0, 255]``.
        labels: one class index per image, ``torch.int64``.
        name: a short description such as ``"mnist-train"``.

    Raises:
        TypeError: if ``images`` or ``labels`` is not a tensor of the right dtype, or
            ``name`` is not a string.
        ValueError: if the shapes are wrong (channel-last images are refused, with the
            ``permute`` that fixes them) or the counts differ.

    Shape:
        - images: ``(N, C, H, W)``
        - labels: ``(N,)``

    Example:
        >>> import torch
        >>> from genlatent.data import ImageDataset
        >>> data = ImageDataset(
        ...     torch.zeros(5, 1, 28, 28, dtype=torch.uint8),
        ...     torch.arange(5),
        ...     name="toy",
        ... )
        >>> len(data), data.num_channels, data.image_shape
        (5, 1, (1, 28, 28))
        >>> data
        ImageDataset(name='toy', images=uint8(5, 1, 28, 28), labels=int64(5,))
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str = ""

    def __post_init__(self) -> None:
        images = check_tensor("images", self.images)
        labels = check_tensor("labels", self.labels)
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        if images.dtype != torch.uint8:
            raise TypeError(f"images must have dtype torch.uint8, got {images.dtype}")
        if labels.dtype != torch.int64:
            raise TypeError(f"labels must have dtype torch.int64, got {labels.dtype}")
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape (N, C, H, W) (4 dims), got shape {tuple(images.shape)}"
            )
        # (N, 32, 32, 3) is an RGB image saved channel-last, not 32 channels of 32x3
        if images.shape[1] > max(_CHANNELS) and images.shape[3] in _CHANNELS:
            n, h, w, c = images.shape
            raise ValueError(
                f"images must be channel-first (N, C, H, W), got shape {tuple(images.shape)}, "
                f"which looks channel-last (N, H, W, C) = ({n}, {h}, {w}, {c}): pass "
                "images.permute(0, 3, 1, 2)"
            )
        if labels.ndim != 1:
            raise ValueError(
                f"labels must have shape (N,) (1 dim), got shape {tuple(labels.shape)}"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels must hold the same number of items, "
                f"got {images.shape[0]} images and {labels.shape[0]} labels"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_channels(self) -> int:
        """The number of channels ``C``."""
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape ``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def __repr__(self) -> str:
        def describe(t: torch.Tensor) -> str:
            dims = ", ".join(map(str, t.shape)) + ("," if t.ndim == 1 else "")
            return f"{str(t.dtype).removeprefix('torch.')}({dims})"

        return (
            f"ImageDataset(name={self.name!r}, images={describe(self.images)}, "
            f"labels={describe(self.labels)})"
        )
