"""The pictures of a run, drawn by capability: reconstructions and samples."""

from __future__ import annotations

import torch
from torch import nn

from genlatent._device import module_device, seeded_generator
from genlatent._protocols import declared_keywords
from genlatent.train.images import image_grid, save_grid
from genlatent.train.rundir import RunDirectory

__all__ = ["sample_images", "write_pictures"]

PER_CLASS = 8
"""Samples per class of a class-conditional sampler asked for no number: a row each."""


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def _scale(example_shape: tuple[int, ...]) -> int:
    return max(1, 64 // example_shape[-1])


def sample_images(
    model: nn.Module,
    num: int,
    *,
    example_shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """``model.sample(num, generator=...)`` (with ``labels=`` where it takes them) as images.

    The samples are reshaped to ``example_shape`` when they hold as many values (a model
    of flat data) and clamped to $[0, 1]$.

    Raises:
        TypeError: if the model has no ``sample`` method.
    """
    sample = getattr(model, "sample", None)
    if not callable(sample):
        raise TypeError(
            f"{type(model).__name__} cannot sample: it has no sample(num, *, generator) method"
        )
    kwargs: dict[str, object] = {"generator": generator}
    if labels is not None and "labels" in declared_keywords(sample):
        kwargs["labels"] = labels
    images = sample(num, **kwargs)
    if tuple(images.shape[1:]) != tuple(example_shape):
        images = images.reshape(images.shape[0], *example_shape)
    return images.float().clamp(0, 1)


def takes_labels(model: nn.Module) -> bool:
    """Whether the model's ``sample`` is class-conditional (declares ``labels``)."""
    sample = getattr(model, "sample", None)
    return callable(sample) and "labels" in declared_keywords(sample)


def class_labels(
    model: nn.Module, num_classes: int | None, device: torch.device
) -> torch.Tensor | None:
    """``[0]*8 + [1]*8 + ...`` for a model whose ``sample`` takes ``labels``, else ``None``."""
    if num_classes is None or not takes_labels(model):
        return None
    return torch.arange(num_classes, device=device).repeat_interleave(PER_CLASS)


@torch.no_grad()
def write_pictures(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    run: RunDirectory,
    *,
    seed: int,
    num_classes: int | None = None,
) -> dict[str, torch.Tensor]:
    """``reconstructions.png`` (inputs above reconstructions) and ``samples.png``, if it can.

    Pictures need image-shaped examples $(C, H, W)$ with 1 or 3 channels; a model without
    ``reconstruct`` or ``sample`` gets no such picture. A class-conditional model's samples
    show one row per class.

    Returns:
        Each picture written, by name (``"reconstructions"``, ``"samples"``): the `image_grid`,
        ``uint8`` of shape $(H, W, C)$, that the file shows at a larger scale.
    """
    pictures: dict[str, torch.Tensor] = {}
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        return pictures
    was_training = model.training
    model.eval()
    device = module_device(model)
    shape = tuple(int(n) for n in images.shape[1:])
    x = _as_float(images[:32]).to(device)
    y = None if labels is None else labels[:32].to(device)
    reconstruct = getattr(model, "reconstruct", None)
    if callable(reconstruct):
        takes_labels = y is not None and "labels" in declared_keywords(reconstruct)
        out = reconstruct(x, labels=y) if takes_labels else reconstruct(x)
        out = out.reshape(x.shape).float().clamp(0, 1)
        rows = [t for pair in zip(x.split(8), out.split(8), strict=True) for t in pair]
        pictures["reconstructions"] = image_grid(torch.cat(rows), nrow=8)
        save_grid(pictures["reconstructions"], run.reconstructions_path, scale=_scale(shape))
    if callable(getattr(model, "sample", None)):
        generator = seeded_generator(device, seed)
        wanted = class_labels(model, num_classes, device)
        num = 64 if wanted is None else wanted.numel()
        samples = sample_images(model, num, example_shape=shape, generator=generator, labels=wanted)
        pictures["samples"] = image_grid(samples, nrow=8)
        save_grid(pictures["samples"], run.samples_path, scale=_scale(shape))
    model.train(was_training)
    return pictures
