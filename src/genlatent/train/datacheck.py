"""The run's data, checked once before the first step: finite values, and what the model takes.

The trainer turns the value checks of `set_validate_args` off inside its epochs (it checks
each loss term itself), so data the model cannot take would otherwise train: float images
in $[0, 255]$ into a Bernoulli likelihood reach a loss of $10^{25}$ without a word. Here the
model's own checks run once, on the first examples, and any failure names the dataset.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from genlatent._device import seeded_generator
from genlatent._protocols import declared_keywords
from genlatent._validation import validate_args
from genlatent.data.batching import TensorBatches

__all__ = ["check_examples_finite", "check_model_takes"]

_PROBE = 8
"""How many training examples the model's own checks see."""


def check_examples_finite(name: str, images: torch.Tensor | None) -> None:
    """Refuse a dataset holding NaN or infinity, naming the first bad example.

    Raises:
        ValueError: naming ``name``, the first bad example's index and how many there are.

    Example:
        >>> images = torch.zeros(4, 1, 2, 2)
        >>> images[2, 0, 1, 1] = float("nan")
        >>> check_examples_finite("train_data", images)
        Traceback (most recent call last):
        ...
        ValueError: train_data example 2 holds NaN or infinity (1 of 4 examples do): ...
    """
    if images is None or not images.is_floating_point() or images.numel() == 0:
        return
    finite = torch.isfinite(images.flatten(1)).all(1)
    if bool(finite.all()):
        return
    bad = (~finite).nonzero().flatten()
    raise ValueError(
        f"{name} example {int(bad[0])} holds NaN or infinity ({bad.numel()} of "
        f"{images.shape[0]} examples do): fix or drop them before training"
    )


@torch.enable_grad()  # as in training: a loss may take gradients itself (VQGAN's adaptive weight)
def check_model_takes(
    loss_module: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    device: torch.device,
) -> None:
    """Run the model's loss once on the first training examples with its value checks on.

    On a copy of the model in eval mode and a fork of the global RNG, so nothing of the
    run changes (weights, buffers, a model's own generators or records, the run's draws):
    the model's own checks (a Bernoulli likelihood's $[0, 1]$ range, a shape its layers
    cannot take) fail here, before anything trains, naming the data. A model that cannot
    be copied is not probed.

    Raises:
        ValueError: ``train_data does not suit the model: ...`` with the model's reason.
    """
    try:
        probe_module = copy.deepcopy(loss_module).eval()
    except (TypeError, RuntimeError, copy.Error):  # e.g. a module holding a live handle
        return
    batches = TensorBatches(  # the first examples as the trainer's batches hold them
        images[:_PROBE], None if labels is None else labels[:_PROBE], batch_size=_PROBE,
        device=device,
    )  # fmt: skip
    batch = next(iter(batches))
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), validate_args(True):
            _check_reconstruction_shape(probe_module, batch.images, batch.labels)
            generator = seeded_generator(device, 0)
            probe_module(batch.images, labels=batch.labels, step=0, generator=generator)
    except (ValueError, TypeError, RuntimeError) as error:
        message = " ".join(str(error).split())
        shape = tuple(images.shape[1:])
        raise ValueError(
            f"train_data does not suit the model (its examples of shape {shape}, checked on "
            f"the first {batch.images.shape[0]}): {message}"
        ) from error


def _check_reconstruction_shape(
    loss_module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None
) -> None:
    """A model that reconstructs must give back the shape it was given (the clearer message
    for a size its layers cannot take)."""
    model = getattr(loss_module, "model", loss_module)
    reconstruct = getattr(model, "reconstruct", None)
    if not callable(reconstruct):
        return
    wanted = {"labels": labels} if labels is not None else {}
    given = {k: v for k, v in wanted.items() if k in declared_keywords(reconstruct)}
    shape = tuple(reconstruct(x, **given).shape)
    if shape != tuple(x.shape):
        raise ValueError(
            f"the model reconstructs {shape[1:]} from examples of {tuple(x.shape[1:])}; "
            "its layers need another size (a conv encoder of two stride-2 convolutions needs "
            "height and width divisible by 4)"
        )
