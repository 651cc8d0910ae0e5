"""Train-time augmentation of image folders: random crop and horizontal flip, each draw a
pure function of ``(seed, epoch, item index)``.

A draw that depends on nothing else gives the same images whichever ``DataLoader`` worker
reads the item, however many workers there are, and after a resume in the middle of an
epoch: there is no random state to save.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from genlatent._validation import check_positive_float

__all__ = ["AUGMENTATIONS", "Augment", "AugmentDraw"]

AUGMENTATIONS = ("flip", "crop")
"""The augmentations `Augment` knows, as ``--augment`` names them."""


@dataclass(frozen=True)
class AugmentDraw:
    """What one item gets this epoch: the crop window's top-left corner in the resized
    image and whether the window is mirrored left to right."""

    top: int
    left: int
    flip: bool


@dataclass(frozen=True)
class Augment:
    """Random crop and horizontal flip for `ImageFolder`'s training images.

    Without augmentation an image's shorter side is resized to ``size`` and its centre
    ``size`` x ``size`` window is kept. With ``crop`` the shorter side is resized to
    $S = \\max(\\text{size}, \\operatorname{round}(\\text{crop scale} \\cdot \\text{size}))$
    instead (as LlamaGen and taming-transformers resize a little larger) and the window
    is anywhere in the resized $H \\times W$ image: top $\\sim U\\{0, \\dots, H -
    \\text{size}\\}$, left $\\sim U\\{0, \\dots, W - \\text{size}\\}$. With ``flip`` the
    window is mirrored (columns reversed) with probability 1/2.

    Each item's draws come from ``random.Random(f"{seed}:{epoch}:{index}")`` (string seeds
    are hashed with SHA-512, the same in every process), so they depend on the seed, the
    epoch (see `ImageFolder.set_epoch`) and the item's index in the folder only.

    Args:
        flip: mirror half of the images.
        crop: take a random window instead of the centre one.
        crop_scale: the resize before a random crop, as a multiple of the side (>= 1).
        seed: seeds the draws.

    Raises:
        ValueError: if neither ``flip`` nor ``crop`` is asked for, or ``crop_scale < 1``.

    Example:
        >>> augment = Augment(crop=True, flip=True, seed=3)
        >>> augment.resized_side(64)
        72
        >>> augment.draw(epoch=0, index=5, height=72, width=96, size=64) == augment.draw(
        ...     epoch=0, index=5, height=72, width=96, size=64)
        True
    """

    flip: bool = True
    crop: bool = True
    crop_scale: float = 1.125
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.flip or self.crop):
            raise ValueError("Augment needs flip=True or crop=True, got neither")
        check_positive_float("crop_scale", self.crop_scale)
        if self.crop_scale < 1:
            raise ValueError(f"crop_scale must be >= 1, got {self.crop_scale!r}")

    @classmethod
    def from_names(cls, names: str | Iterable[str], *, seed: int = 0) -> Augment:
        """The augmentation ``--augment`` names: ``"flip"``, ``"crop"`` or ``"flip,crop"``.

        Raises:
            ValueError: on a name other than those of `AUGMENTATIONS`.

        Example:
            >>> Augment.from_names("crop,flip", seed=1)
            Augment(flip=True, crop=True, crop_scale=1.125, seed=1)
        """
        chosen = names.split(",") if isinstance(names, str) else list(names)
        chosen = [name.strip() for name in chosen if name.strip()]
        unknown = [name for name in chosen if name not in AUGMENTATIONS]
        if unknown or not chosen:
            raise ValueError(
                f"augment takes {' and/or '.join(AUGMENTATIONS)} separated by commas, "
                f"got {','.join(chosen) or 'nothing'!r}"
            )
        return cls(flip="flip" in chosen, crop="crop" in chosen, seed=seed)

    def resized_side(self, size: int) -> int:
        """The shorter side an image is resized to before the window is taken."""
        return max(size, round(self.crop_scale * size)) if self.crop else size

    def draw(self, *, epoch: int, index: int, height: int, width: int, size: int) -> AugmentDraw:
        """The window (of ``size`` in a resized ``height`` x ``width`` image) and the flip
        of item ``index`` at ``epoch``."""
        rng = random.Random(f"{self.seed}:{epoch}:{index}")
        if self.crop:
            top, left = rng.randint(0, height - size), rng.randint(0, width - size)
        else:
            top, left = round((height - size) / 2), round((width - size) / 2)
        flip = self.flip and rng.random() < 0.5
        return AugmentDraw(top, left, flip)
