r"""A perceptual loss over the feature maps of any frozen network, as LPIPS computes it.

Two sources of features, and what each is worth:

- `PerceptualLoss.from_lpips`: the ``lpips`` package's network (Zhang et al. 2018; an
  ImageNet backbone with linear weights fitted to human judgements of similarity), the
  perceptual loss of VQGAN and its successors. Optional: ``pip install lpips``; its
  backbone weights are downloaded by torchvision on first use.
- Offline, with no download: the feature maps of a network trained in genlatent on the
  user's own data, e.g. ``ClassifierFeatureMaps`` of a classifier that `genlatent.metrics`
  trains (the network of its Fréchet distance, with another seed). Such features know the
  classes of that dataset and nothing else: they reward reconstructions the classifier cannot tell
  from the originals, which sharpens digits' strokes on MNIST, but they are not a model
  of human perception, and a loss and a metric that share one network reward each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from genlatent._validation import check_floating, check_reduction, check_same_shape
from genlatent.functional._reduce import reduce_batch
from genlatent.pretrained import PretrainedMixin

__all__ = ["PerceptualLoss"]

_EPS = 1e-10  # LPIPS's normalize_tensor


def _unit_channels(features: torch.Tensor) -> torch.Tensor:
    """Each position's channel vector divided by its Euclidean norm (plus 1e-10)."""
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + _EPS)


class PerceptualLoss(nn.Module, PretrainedMixin):
    r"""LPIPS-style distance between images in the feature maps of a frozen network.

    With $f_l(x)$ the $l$-th feature map $(B, C_l, H_l, W_l)$ of ``features`` and
    $\hat f_l$ its channels normalised to unit length at every position (Zhang et al.
    2018, eq. 1):

    $$d(x, y) = \sum_l \frac{1}{H_l W_l} \sum_{h, w} \sum_c w_{lc}
      \big(\hat f_l(x)_{chw} - \hat f_l(y)_{chw}\big)^2,$$

    where $w_{lc}$ is a per-layer weight $w_l$ (the same for every channel) or a
    per-channel one (LPIPS's learned linear layer). The network is frozen (no parameter
    requires grad) and stays in eval mode whatever ``train()`` is called with; gradients
    flow to the images.

    Args:
        features: a module mapping images $(B, C, H, W)$ to a list or tuple of feature
            maps $(B, C_l, H_l, W_l)$, one per layer.
        layer_weights: one entry per layer: a float $w_l$, or a tensor $(C_l,)$ of
            per-channel weights; ``None`` weighs every layer 1.

    ``forward(x, y, *, reduction="mean")``: ``"none"`` returns $d$ per example $(B,)$,
    ``"sum"`` and ``"mean"`` reduce it over the batch.

    Raises:
        ValueError: on an unknown ``reduction``, a per-channel weight that is not 1-D, or
            in ``forward``, images of different shapes, feature maps that are not
            $(B, C_l, H_l, W_l)$, or a number of layers or channels that does not match
            ``layer_weights``.
        TypeError: if ``features`` is not a module or returns no list of tensors.

    Shape:
        - x, y: $(B, C, H, W)$
        - output: $(B,)$ for ``reduction="none"``, else a scalar

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class TwoLayers(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.first, self.second = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3, stride=2)
        ...     def forward(self, x):
        ...         hidden = self.first(x).relu()
        ...         return [hidden, self.second(hidden).relu()]
        >>> loss = PerceptualLoss(TwoLayers(), layer_weights=[1.0, 0.5])
        >>> x = torch.rand(2, 1, 16, 16)
        >>> float(loss(x, x))
        0.0
        >>> loss(x, torch.rand(2, 1, 16, 16), reduction="none").shape
        torch.Size([2])
    """

    def __init__(
        self,
        features: nn.Module,
        *,
        layer_weights: Sequence[float | torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(features, nn.Module):
            raise TypeError(
                f"features must be an nn.Module returning a list of feature maps, "
                f"got {type(features).__name__}"
            )
        self.features = features.eval().requires_grad_(False)
        self.num_layers: int | None = None
        self._scalar_weights: list[float | None] = []
        if layer_weights is not None:
            self.num_layers = len(layer_weights)
            for index, weight in enumerate(layer_weights):
                if isinstance(weight, torch.Tensor):
                    if weight.ndim != 1:
                        raise ValueError(
                            f"layer_weights[{index}] must be a float or a tensor (C_l,) of "
                            f"per-channel weights, got shape {tuple(weight.shape)}"
                        )
                    self.register_buffer(f"channel_weights_{index}", weight.detach().clone())
                    self._scalar_weights.append(None)
                else:
                    self._scalar_weights.append(float(weight))

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Set the mode of this module; the frozen ``features`` stay in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    def _layer_weight(self, index: int, channels: int) -> float | torch.Tensor:
        if self.num_layers is None:
            return 1.0
        scalar = self._scalar_weights[index]
        if scalar is not None:
            return scalar
        weight: torch.Tensor = getattr(self, f"channel_weights_{index}")
        if weight.shape[0] != channels:
            raise ValueError(
                f"layer_weights[{index}] must have one weight per channel of layer {index}, "
                f"{channels}, got {weight.shape[0]}"
            )
        return weight.view(1, -1, 1, 1)

    def _maps(self, name: str, images: torch.Tensor) -> list[torch.Tensor]:
        maps = self.features(images)
        if not isinstance(maps, (list, tuple)) or not all(
            isinstance(m, torch.Tensor) for m in maps
        ):
            raise TypeError(
                f"features must return a list or tuple of tensors, got {type(maps).__name__}"
            )
        if self.num_layers is not None and len(maps) != self.num_layers:
            raise ValueError(
                f"features must return one map per entry of layer_weights, "
                f"{self.num_layers}, got {len(maps)}"
            )
        for index, m in enumerate(maps):
            if m.ndim != 4 or m.shape[0] != images.shape[0]:
                raise ValueError(
                    f"feature map {index} of {name} must have shape (B, C_l, H_l, W_l) with "
                    f"B = {images.shape[0]}, got {tuple(m.shape)}"
                )
        return list(maps)

    def forward(self, x: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
        """The distance $d(x, y)$ of each pair of images, reduced by ``reduction``."""
        reduction = check_reduction(reduction)
        check_floating("x", x)
        check_floating("y", y)
        check_same_shape("x", x, "y", y)
        total: torch.Tensor | None = None
        for index, (a, b) in enumerate(zip(self._maps("x", x), self._maps("y", y), strict=True)):
            squared = (_unit_channels(a) - _unit_channels(b)).square()
            weighted = (squared * self._layer_weight(index, a.shape[1])).sum(dim=1)
            layer = weighted.mean(dim=(1, 2))
            total = layer if total is None else total + layer
        if total is None:
            raise ValueError("features must return at least one feature map, got none")
        return reduce_batch(total, reduction)

    @classmethod
    def from_lpips(cls, model: nn.Module | None = None, *, net: str = "alex") -> PerceptualLoss:
        """LPIPS (Zhang et al. 2018) as a `PerceptualLoss`, from the ``lpips`` package.

        Uses the model's scaling layer and backbone for the feature maps and its learned
        linear layers as per-channel weights, so the distance equals
        ``model(x, y, normalize=True)`` for images in $[0, 1]$ (they are mapped to
        $[-1, 1]$ first; single-channel images are repeated to three channels).

        Args:
            model: an ``lpips.LPIPS`` instance; ``None`` builds ``lpips.LPIPS(net=net)``.
            net: the backbone when ``model`` is ``None``: ``"alex"``, ``"vgg"`` or ``"squeeze"``.

        Raises:
            ImportError: if ``model`` is ``None`` and ``lpips`` is not installed.
        """
        if model is None:
            try:
                lpips: Any = importlib.import_module("lpips")
            except ImportError as error:
                raise ImportError(
                    "PerceptualLoss.from_lpips needs the lpips package (pip install lpips), "
                    "or pass features of your own to PerceptualLoss"
                ) from error
            model = lpips.LPIPS(net=net, verbose=False)
        weights = [lin.model[-1].weight.detach().flatten() for lin in model.lins]  # type: ignore[union-attr]
        return cls(_LPIPSFeatures(model), layer_weights=weights)


class _LPIPSFeatures(nn.Module):
    """The feature maps LPIPS compares: its backbone after its scaling layer, [0, 1] input."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.scaling_layer: Any = model.scaling_layer
        self.net: Any = model.net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return list(self.net(self.scaling_layer(2 * x - 1)))
