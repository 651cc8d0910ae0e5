"""The model's start from the training data: `init_from_data`, called by `fit` once per run."""

from __future__ import annotations

import torch
from torch import nn

from genlatent.data.batching import TensorBatches

__all__ = ["data_mean", "init_from_data"]

_CHUNK = 4096
"""Examples converted to floating point at a time by `data_mean`."""


def data_mean(images: torch.Tensor) -> torch.Tensor:
    r"""The mean example $\frac{1}{N}\sum_n x_n$, one example's shape, in float32.

    uint8 images are scaled to $[0, 1]$ as the trainer's batches scale them; the sum runs
    in float64 on the CPU, ``_CHUNK`` examples at a time (no float copy of the whole set).

    Raises:
        ValueError: if ``images`` holds no example.

    Example:
        >>> data_mean(torch.tensor([[0, 255], [255, 255]], dtype=torch.uint8))
        tensor([0.5000, 1.0000])
    """
    if images.shape[0] == 0:
        raise ValueError("train_data must hold at least one example to take its mean, got none")
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for batch in TensorBatches(images, batch_size=_CHUNK, device="cpu", dtype=torch.float64):
        total += batch.images.sum(dim=0)
    return (total / images.shape[0]).float()


def init_from_data(model: nn.Module, images: torch.Tensor) -> bool:
    """Call ``model.init_output_bias(mean)`` with the training data's mean, if it has one.

    The capability of the model protocol that `fit` uses before the first step of a new
    run (never on resume, whose checkpoint holds the trained bias). Dynamically binarized
    data has the grey images' mean, the expectation of its draws.

    Returns:
        Whether the model has the capability (and was called).
    """
    init = getattr(model, "init_output_bias", None)
    if not callable(init):
        return False
    init(data_mean(images))
    return True
