"""The model's start from the training data, called by `fit` once per new run:
`init_from_data` (the output bias) and `init_feature_maps` (a perceptual loss's network)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.data.remote import data_home
from genlatent.metrics.classifier import load_or_train_classifier
from genlatent.nn.lenet import ClassifierFeatureMaps

__all__ = ["PERCEPTUAL_SEED", "data_mean", "init_feature_maps", "init_from_data"]

PERCEPTUAL_SEED = 1
"""The seed of the classifier behind a run's perceptual features: not the seed 0 of the
classifier whose features ``genlatent eval``'s Fréchet distances compare, so that the loss
and the score are not one network."""

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


def init_feature_maps(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    in_memory: bool = True,
    log: Callable[[str], None] | None = None,
) -> int:
    """Learn every fresh `ClassifierFeatureMaps` of ``model`` from the labelled training data.

    Each one whose ``needs_data`` is set (built fresh, as `tokenizer_preset`'s perceptual
    loss) gets the body of the classifier trained on ``(images, labels)`` by
    `load_or_train_classifier` with seed `PERCEPTUAL_SEED` (floating images, in $[0, 1]$,
    are rounded to 8 bits for it), cached in genlatent's data folder
    (``$GENLATENT_DATA`` or ``~/.cache/genlatent``, ``classifiers/``) so that a second run on
    the same data reads it. `fit` calls this before a new run's first step (a resumed run
    has the weights in its checkpoint).

    Returns:
        How many feature networks were filled (0: the model has none waiting).

    Raises:
        ValueError: if one waits and the data has no labels, or is streamed
            (``in_memory=False``: the classifier trains on a dataset held in memory).
    """
    waiting = [
        module
        for module in model.modules()
        if isinstance(module, ClassifierFeatureMaps) and module.needs_data
    ]
    if not waiting:
        return 0
    if not in_memory:
        raise ValueError(
            "the model's perceptual features (ClassifierFeatureMaps) learn from a classifier "
            "of the training data held in memory, got a streamed dataset: train a Classifier "
            "on your data and pass ClassifierFeatureMaps.from_classifier(classifier)"
        )
    if labels is None:
        raise ValueError(
            "the model's perceptual features (ClassifierFeatureMaps) learn from a classifier "
            "of the training data, which needs labels, got train_data without labels"
        )
    device = next(waiting[0].parameters()).device
    folder = data_home() / "classifiers"
    if log is not None:
        log(f"perceptual features: a classifier of the {len(images)} training images ({folder})")
    if images.is_floating_point():  # the classifier's data is uint8, as the datasets' files
        images = images.clamp(0, 1).mul(255).round().to(torch.uint8)
    classifier = load_or_train_classifier(
        ImageDataset(images, labels), folder, seed=PERCEPTUAL_SEED, device=device
    )
    for module in waiting:
        module.load_classifier(classifier)
    return len(waiting)
