r"""The LeNet-style feature layers behind genlatent's classifier and its perceptual features.

`genlatent.metrics.Classifier` puts a class head on `lenet_body`; `ClassifierFeatureMaps`
is the same body alone, as the feature network of an offline `PerceptualLoss`. The body
sits here, below the models, so that a preset can build a perceptual loss before any data
is seen; its weights are learnt in `genlatent.metrics` (`train_classifier`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._validation import check_positive_int, check_tensor
from genlatent.pretrained import PretrainedMixin

__all__ = ["ClassifierFeatureMaps", "lenet_body", "relu_maps", "to_working_size", "working_size"]


def working_size(image_size: int) -> int:
    """The side the two conv-pool stages take: the next multiple of 4 that is at least 12."""
    return max(12, -(-image_size // 4) * 4)


def lenet_body(
    in_channels: int,
    image_size: int,
    hidden_features: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Sequential:
    """``conv 5x5 (6, padding 2) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU -> max-pool 2
    -> flatten -> linear (hidden_features) -> ReLU`` for images resized to `working_size`."""
    factory: dict[str, Any] = {"device": device, "dtype": dtype}
    side = (working_size(image_size) // 2 - 4) // 2  # after pad-2 conv, pool, valid conv, pool
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2, **factory),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, **factory),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * side * side, hidden_features, **factory),
        nn.ReLU(),
    )


def to_working_size(x: torch.Tensor, in_channels: int, image_size: int) -> torch.Tensor:
    """Check ``x`` is floating $(B, C, S, S)$ and resize it bilinearly to `working_size`.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: if it is not $(B, C, S, S)$ for these $C$ and $S$.
    """
    x = check_tensor("x", x)
    if not x.is_floating_point():
        raise TypeError(f"x must have a floating-point dtype (images in [0, 1]), got {x.dtype}")
    expected = (in_channels, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
        )
    side = working_size(image_size)
    if side != image_size:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x


def relu_maps(body: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every ReLU of ``body`` on ``x``; flat ones as $1 \\times 1$ maps."""
    maps = []
    for layer in body:
        x = layer(x)
        if isinstance(layer, nn.ReLU):
            maps.append(x if x.ndim == 4 else x[:, :, None, None])
    return maps


class ClassifierFeatureMaps(nn.Module, PretrainedMixin):
    r"""The feature maps of genlatent's classifier, as a module: features for `PerceptualLoss`.

    The offline perceptual loss: no download, features learnt from the user's own labelled
    data. They know that dataset's classes and nothing else, so they are no model of human
    perception; and a reconstruction trained against them is then scored by the same
    network's Fréchet distance, which favours it (report both with that caveat, or train
    the loss's classifier with another ``seed``, as ``genlatent train tokenizer
    --perceptual-weight`` does).

    The module is the body of a `Classifier` (`lenet_body`) without its class head, so its
    weights do not depend on the number of classes: `tokenizer_preset` builds it before any
    data is seen, and `fit` fills it from a classifier trained on the run's data. Its output
    is `Classifier.feature_maps`: ``[(B, 6, S', S'), (B, 16, S'/2 - 4, S'/2 - 4),
    (B, hidden_features, 1, 1)]`` with $S'$ the `working_size`.

    Args:
        in_channels: channels $C$ of the images.
        image_size: their height and width $S$.
        hidden_features: the width of the last map (the classifier's feature dimension).

    Example:
        >>> import torch
        >>> from genlatent.losses import PerceptualLoss
        >>> from genlatent.metrics import Classifier
        >>> maps = ClassifierFeatureMaps.from_classifier(Classifier())
        >>> loss = PerceptualLoss(maps)
        >>> x = torch.rand(4, 1, 28, 28)
        >>> loss(x, x, reduction="none").tolist()
        [0.0, 0.0, 0.0, 0.0]
        >>> maps.needs_data, ClassifierFeatureMaps().needs_data
        (False, True)
    """

    def __init__(
        self, in_channels: int = 1, *, image_size: int = 28, hidden_features: int = 128
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.image_size = check_positive_int("image_size", image_size)
        self.hidden_features = check_positive_int("hidden_features", hidden_features)
        self.body = lenet_body(in_channels, image_size, hidden_features)
        self.needs_data = True
        """Whether the weights are still the fresh ones: `fit` then learns them from the data."""

    @classmethod
    def from_classifier(cls, classifier: nn.Module) -> ClassifierFeatureMaps:
        """The feature maps of a trained `Classifier` (a copy of its body's weights)."""
        maps = cls(
            getattr(classifier, "in_channels", 1),
            image_size=getattr(classifier, "image_size", 28),
            hidden_features=getattr(classifier, "hidden_features", 128),
        )
        maps.load_classifier(classifier)
        return maps

    def load_classifier(self, classifier: nn.Module) -> None:
        """Copy the weights of ``classifier``'s body (a `Classifier` of these images).

        Raises:
            TypeError: if ``classifier`` has no ``body`` module.
            ValueError: if its body's weights do not fit this module's shapes.
        """
        body = getattr(classifier, "body", None)
        if not isinstance(body, nn.Module):
            raise TypeError(
                f"classifier must be a genlatent Classifier (with a body), got "
                f"{type(classifier).__name__}"
            )
        ours = {name: tuple(value.shape) for name, value in self.body.state_dict().items()}
        theirs = {name: tuple(value.shape) for name, value in body.state_dict().items()}
        if ours != theirs:
            raise ValueError(
                f"classifier must have the body of ClassifierFeatureMaps({self.in_channels}, "
                f"image_size={self.image_size}, hidden_features={self.hidden_features}): "
                f"weights {ours}, got {theirs}"
            )
        self.body.load_state_dict(body.state_dict())
        self.needs_data = False

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of ``x`` $(B, C, S, S)$, images in $[0, 1]$."""
        return relu_maps(self.body, to_working_size(x, self.in_channels, self.image_size))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, image_size={self.image_size}, "
            f"hidden_features={self.hidden_features}"
        )
