"""The 8x8 handwritten digits bundled with scikit-learn (no download needed)."""

from __future__ import annotations

import torch

from genlatent.data.dataset import ImageDataset

__all__ = ["load_digits"]

#: The last this-many of the 1,797 images form the test split.
DIGITS_TEST_SIZE = 297
_SPLITS = ("train", "test", "all")


def load_digits(split: str = "train") -> ImageDataset:
    """Load scikit-learn's 1,797 digits as 8x8 grey images scaled to ``0..255``.

    The source pixels are counts ``v`` in ``0..16``; they become

    $$p = \\operatorname{round}\\left(\\frac{255\\, v}{16}\\right),$$

    rounding halves to even (only ``v = 8`` is a half: 127.5 becomes 128). The split is
    deterministic and follows the file's order: the first 1,500 images are ``"train"``,
    the last :data:`DIGITS_TEST_SIZE` (297) are ``"test"``; ``"all"`` returns all 1,797.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        An :class:`ImageDataset` named ``"digits-<split>"``.

    Raises:
        ValueError: if ``split`` is unknown.
        ImportError: if scikit-learn is not installed (``pip install genlatent[demo]``).

    Shape:
        - images: ``(N, 1, 8, 8)`` uint8.
        - labels: ``(N,)`` int64 in 0..9.

    Example:
        >>> from genlatent.data import load_digits
        >>> train = load_digits("train")
        >>> train
        ImageDataset(name='digits-train', images=uint8(1500, 1, 8, 8), labels=int64(1500,))
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn: pip install genlatent[demo]") from exc
    bunch = sklearn_load_digits()
    pixels = torch.as_tensor(bunch.images, dtype=torch.float64)
    images = (pixels * (255.0 / 16.0)).round().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    n_train = images.shape[0] - DIGITS_TEST_SIZE
    if split == "train":
        images, labels = images[:n_train], labels[:n_train]
    elif split == "test":
        images, labels = images[n_train:], labels[n_train:]
    return ImageDataset(images.contiguous(), labels.contiguous(), name=f"digits-{split}")
