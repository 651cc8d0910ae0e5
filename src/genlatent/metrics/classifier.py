"""A small LeNet-style classifier for scoring samples: class consistency and its features.

Generated images are scored by a classifier trained here on the real training set:
`class_consistency` (does a class-conditional model draw the class it was asked for?)
and, through `Classifier.features`, the Fréchet distance of `frechet_distance`. The
classifier is small enough to train in seconds per MNIST epoch on a CPU; its features
are not Inception's, so these scores are comparable only with other genlatent scores.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._checkpoint import atomic_save, load_checkpoint
from genlatent._validation import check_positive_int, check_tensor
from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.nn.lenet import (
    ClassifierFeatureMaps,
    lenet_body,
    relu_maps,
    to_working_size,
    working_size,
)

__all__ = [
    "Classifier",
    "ClassifierFeatureMaps",
    "class_consistency",
    "load_or_train_classifier",
    "train_classifier",
]

# Bump when the architecture or the training recipe changes: cached weights keyed on an
# older version are then retrained instead of loaded.
_CACHE_VERSION = 1


class Classifier(nn.Module):
    r"""A LeNet-style convolutional classifier (LeCun et al. 1998) for small images.

    LeNet-5's geometry: ``conv 5x5 (6, padding 2) -> ReLU -> max-pool 2 -> conv 5x5 (16)
    -> ReLU -> max-pool 2 -> linear (hidden_features) -> ReLU -> linear (num_classes)``,
    with ReLUs and max-pooling. About 0.4 M multiply-adds per $28 \times 28$ image: one
    MNIST epoch takes about 20 s on one busy CPU core, and two epochs reach about 98 %
    test accuracy.

    Args:
        in_channels: channels $C$ of the images.
        num_classes: number of classes.
        image_size: height and width $S$ of the (square) images. Images whose size is not a
            multiple of 4 of at least 12 (the two conv-pool stages need it) are resized
            bilinearly to the next such size first: 8x8 digits to 12x12, 30x30 to 32x32.
        hidden_features: width of the penultimate layer: the dimension of `features`.
        device: where to create the parameters.
        dtype: their dtype.

    Raises:
        TypeError: on a non-int size.
        ValueError: on a size below 1.

    Shape:
        - input: $(B, C, S, S)$ floating images in $[0, 1]$.
        - output of ``forward``: logits $(B, \text{num\_classes})$.

    Example:
        >>> import torch
        >>> classifier = Classifier()
        >>> images = torch.rand(5, 1, 28, 28)
        >>> classifier(images).shape, classifier.features(images).shape
        (torch.Size([5, 10]), torch.Size([5, 128]))
        >>> classifier.predict(images).dtype
        torch.int64
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        *,
        image_size: int = 28,
        hidden_features: int = 128,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.image_size = check_positive_int("image_size", image_size)
        self.hidden_features = check_positive_int("hidden_features", hidden_features)
        self.working_size = working_size(image_size)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.body = lenet_body(in_channels, image_size, hidden_features, **factory)
        self.head = nn.Linear(hidden_features, num_classes, **factory)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return to_working_size(x, self.in_channels, self.image_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer's activations $(B, \\text{hidden\\_features})$.

        These are the features `frechet_distance` compares.
        """
        return self.body(self._prepare(x))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each ReLU, as maps for `PerceptualLoss`.

        ``[(B, 6, S', S'), (B, 16, S'/2 - 4, S'/2 - 4), (B, hidden_features, 1, 1)]`` with
        $S'$ the working size (28 for MNIST): the two convolutions' before pooling, then
        `features` as a $1 \\times 1$ map.
        """
        return relu_maps(self.body, self._prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The class logits $(B, \\text{num\\_classes})$."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most likely class of each image, int64 $(B,)$ (no gradient)."""
        return self(x).argmax(dim=1)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"image_size={self.image_size}, hidden_features={self.hidden_features}"
        )


def train_classifier(
    dataset: ImageDataset,
    *,
    epochs: int = 2,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Classifier:
    """Train a `Classifier` on ``dataset`` with Adam and cross-entropy; return it in eval mode.

    The initial weights (drawn on the CPU, under ``torch.random.fork_rng``, so the global
    random state is restored) and the shuffling come from ``seed`` alone: one seed on one
    machine gives one classifier. The number of classes is ``max(labels) + 1``.

    Args:
        dataset: uint8 images $(N, C, S, S)$ and int64 labels, e.g. `load_mnist`'s
            training split.
        epochs: passes over the data.
        batch_size: images per step.
        learning_rate: Adam's step size.
        seed: the seed of the initialisation and of the shuffling.
        device: where to train (the data is moved there once).

    Returns:
        The trained classifier, in eval mode, on ``device``.

    Raises:
        TypeError: if ``dataset`` is not an `ImageDataset`, or on a non-int size.
        ValueError: on ``epochs`` or ``batch_size`` below 1, an empty dataset, or
            images that are not square with a side that is a multiple of 4, at least 12.

    Example:
        >>> import torch
        >>> from genlatent.data import ImageDataset
        >>> data = ImageDataset(torch.zeros(8, 1, 12, 12, dtype=torch.uint8), torch.arange(8) % 2)
        >>> train_classifier(data, epochs=1).num_classes
        2
    """
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if len(dataset) == 0:
        raise ValueError("dataset must hold at least one image, got 0")
    channels, height, width = dataset.image_shape
    if height != width:
        raise ValueError(f"dataset images must be square, got {height}x{width}")
    num_classes = int(dataset.labels.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # initialised on the CPU: the same weights whatever the device, no accelerator RNG used
        classifier = Classifier(channels, num_classes, image_size=height).to(device)
    batches = TensorBatches(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        device=device,
    )
    optimizer = torch.optim.Adam(classifier.parameters(), lr=learning_rate)
    classifier.train()
    for _ in range(epochs):
        for images, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            # an ImageDataset always has labels
            F.cross_entropy(classifier(images), cast("torch.Tensor", labels)).backward()
            optimizer.step()
    return classifier.eval()


def _as_float_images(name: str, images: torch.Tensor) -> torch.Tensor:
    images = check_tensor(name, images)
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    if not images.is_floating_point():
        raise TypeError(f"{name} must be uint8 or floating-point images, got {images.dtype}")
    return images


@torch.no_grad()
def class_consistency(
    classifier: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 1000,
) -> float:
    r"""The fraction of images that the classifier assigns to the class asked for.

    $$\frac{1}{N} \sum_{n} \mathbb{1}\big[\arg\max_c \, f(x_n)_c = y_n\big],$$

    for samples $x_n$ drawn from a class-conditional model given $y_n$. On real test
    images with their true labels this is the classifier's accuracy, the ceiling a
    model can be expected to reach.

    Args:
        classifier: a trained `Classifier` (or any module with ``predict``).
        images: uint8 images in $[0, 255]$ or floating ones in $[0, 1]$.
        labels: the requested class of each image.
        batch_size: images per forward pass.

    Returns:
        A fraction in $[0, 1]$.

    Raises:
        TypeError: if ``images`` or ``labels`` is not a tensor of a suitable dtype.
        ValueError: if there are no images or the counts differ.

    Shape:
        - images: $(N, C, S, S)$
        - labels: $(N,)$

    Example:
        >>> import torch
        >>> classifier = Classifier().eval()
        >>> images = torch.rand(6, 1, 28, 28)
        >>> class_consistency(classifier, images, classifier.predict(images))
        1.0
    """
    images = _as_float_images("images", images)
    labels = check_tensor("labels", labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    check_positive_int("batch_size", batch_size)
    if labels.ndim != 1 or images.ndim < 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must have shape (N,) with N = images.shape[0], got images "
            f"{tuple(images.shape)} and labels {tuple(labels.shape)}"
        )
    if labels.shape[0] == 0:
        raise ValueError("images must hold at least one image, got 0")
    correct = 0
    for start in range(0, labels.shape[0], batch_size):
        predicted = classifier.predict(images[start : start + batch_size])
        correct += int((predicted == labels[start : start + batch_size].to(predicted)).sum())
    return correct / labels.shape[0]


def _dataset_digest(dataset: ImageDataset, settings: dict[str, Any]) -> str:
    """SHA-256 of the images, the labels and the training settings."""
    digest = hashlib.sha256()
    digest.update(repr(sorted(settings.items())).encode())
    for tensor in (dataset.images, dataset.labels):
        digest.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The bytes of a tensor's elements in row-major order, without numpy."""
    tensor = tensor.detach().cpu().contiguous()
    # a copy of the tensor's own memory (bytes(storage) would go element by element)
    return ctypes.string_at(tensor.data_ptr(), tensor.numel() * tensor.element_size())


def load_or_train_classifier(
    dataset: ImageDataset,
    cache_dir: str | os.PathLike[str],
    *,
    epochs: int = 2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Classifier:
    """Load the classifier trained on ``dataset`` from ``cache_dir``, or train and save it.

    The file is ``classifier-<digest>.pt`` where the digest is a SHA-256 of the images,
    the labels, ``epochs``, ``seed`` and the architecture's version: another dataset or
    recipe gets another file, never stale weights. Weights are written atomically and read
    with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
    data. Neither path changes the global random state (`train_classifier` works under
    a fork of it, and so does building a cached one), so a run that needs a classifier
    draws the same numbers whether or not it was cached.

    Args:
        dataset: the training data, as for `train_classifier`.
        cache_dir: the folder of cached weights (created if needed).
        epochs: as for `train_classifier`.
        seed: as for `train_classifier`.
        device: where the returned classifier lives (and trains, if it must).

    Returns:
        The classifier, in eval mode.

    Raises:
        CheckpointError: if the cached file exists but is corrupt or unsafe (delete it to
            retrain).
        TypeError, ValueError: as `train_classifier`.
    """
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    settings = {"epochs": epochs, "seed": seed, "version": _CACHE_VERSION}
    path = Path(cache_dir) / f"classifier-{_dataset_digest(dataset, settings)[:32]}.pt"
    if path.is_file():
        state = load_checkpoint(path, map_location="cpu")
        channels, size, _ = dataset.image_shape
        # built under a fork of the random state, which its initialisation would advance:
        # a cached classifier must leave a training run's draws as a fresh one does
        with torch.random.fork_rng(devices=[]):
            classifier = Classifier(channels, int(state["num_classes"]), image_size=size)
        classifier.load_state_dict(state["weights"])
        return classifier.to(device).eval()
    classifier = train_classifier(dataset, epochs=epochs, seed=seed, device=device)
    weights = {name: value.detach().cpu() for name, value in classifier.state_dict().items()}
    atomic_save({"num_classes": classifier.num_classes, "weights": weights}, path)
    return classifier
