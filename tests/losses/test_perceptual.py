"""PerceptualLoss against LPIPS's formula written out in the test, over a small frozen
network, the lpips package's model (a stand-in module installed with monkeypatch) and the
library's own classifier."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from genlatent.losses import PerceptualLoss
from genlatent.metrics import Classifier, ClassifierFeatureMaps


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(1, 3, 3, dtype=torch.float64)
        self.second = nn.Conv2d(3, 5, 3, stride=2, dtype=torch.float64)

    def forward(self, x):
        hidden = self.first(x).relu()
        return [hidden, self.second(hidden).tanh()]


def _reference(maps_x, maps_y, weights) -> np.ndarray:
    """sum_l mean_{h,w} sum_c w_lc (a/|a| - b/|b|)^2, position by position in numpy."""
    total = np.zeros(maps_x[0].shape[0])
    for a, b, w in zip(maps_x, maps_y, weights, strict=True):
        a, b = a.detach().numpy(), b.detach().numpy()
        batch, channels, height, width = a.shape
        w = np.broadcast_to(np.asarray(w, dtype=np.float64), (channels,))
        for n in range(batch):
            layer = 0.0
            for i in range(height):
                for j in range(width):
                    u = a[n, :, i, j] / (np.sqrt(np.sum(a[n, :, i, j] ** 2)) + 1e-10)
                    v = b[n, :, i, j] / (np.sqrt(np.sum(b[n, :, i, j] ** 2)) + 1e-10)
                    layer += float(np.sum(w * (u - v) ** 2))
            total[n] += layer / (height * width)
    return total


@pytest.mark.parametrize("weights", [None, [0.3, 2.0], "channels"])
def test_matches_the_lpips_formula(weights):
    torch.manual_seed(0)
    network = TwoLayers()
    if weights == "channels":
        weights = [torch.rand(3, dtype=torch.float64), torch.rand(5, dtype=torch.float64)]
    loss = PerceptualLoss(network, layer_weights=weights)
    x, y = torch.rand(3, 1, 9, 9, dtype=torch.float64), torch.rand(3, 1, 9, 9, dtype=torch.float64)
    expected = _reference(network(x), network(y), [1.0, 1.0] if weights is None else weights)
    got = loss(x, y, reduction="none")
    torch.testing.assert_close(got, torch.from_numpy(expected))
    torch.testing.assert_close(loss(x, y), got.mean())
    torch.testing.assert_close(loss(x, y, reduction="sum"), got.sum())
    torch.testing.assert_close(loss(y, x, reduction="none"), got)  # symmetric
    assert float(loss(x, x)) == 0.0


def test_the_network_is_frozen_and_gradients_reach_the_images():
    loss = PerceptualLoss(TwoLayers()).train()
    assert not loss.features.training
    assert not any(p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    loss(x, torch.rand(2, 1, 9, 9, dtype=torch.float64)).backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


def test_the_classifiers_feature_maps_are_its_relu_activations():
    torch.manual_seed(0)
    classifier = Classifier(1, 10, image_size=28)
    x = torch.rand(2, 1, 28, 28)
    maps = ClassifierFeatureMaps.from_classifier(classifier)(x)
    assert [tuple(m.shape) for m in maps] == [(2, 6, 28, 28), (2, 16, 10, 10), (2, 128, 1, 1)]
    body = classifier.body
    torch.testing.assert_close(maps[0], body[1](body[0](x)))
    torch.testing.assert_close(maps[2].flatten(1), classifier.features(x))
    loss = PerceptualLoss(ClassifierFeatureMaps.from_classifier(classifier))
    assert float(loss(x, x.flip(0))) > 0


class _FakeNet(nn.Module):
    """Stands for lpips' backbone: three feature maps of a 3-channel image."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(3, 4, 3), nn.Conv2d(4, 6, 3, stride=2), nn.Conv2d(6, 2, 3)]
        )

    def forward(self, x):
        outputs = []
        for conv in self.convs:
            x = conv(x).relu()
            outputs.append(x)
        return tuple(outputs)


class _FakeLPIPS(nn.Module):
    """The structure of lpips.LPIPS (scaling_layer, net, lins[k].model) with its forward
    written from Zhang et al. 2018, eq. 1: the reference the adapter must reproduce."""

    def __init__(self, net: str = "alex", verbose: bool = True) -> None:
        super().__init__()
        self.net_name = net
        self.register_buffer("shift", torch.tensor([-0.03, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.45])[None, :, None, None])
        self.scaling_layer = lambda x: (x - self.shift) / self.scale
        self.net = _FakeNet()
        self.lins = nn.ModuleList()
        for channels in (4, 6, 2):
            lin = nn.Module()
            lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))
            nn.init.uniform_(lin.model[1].weight, 0.0, 1.0)
            self.lins.append(lin)

    def forward(self, in0, in1, normalize=False):
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        outs0 = self.net(self.scaling_layer(in0))
        outs1 = self.net(self.scaling_layer(in1))
        total = 0
        for k, (a, b) in enumerate(zip(outs0, outs1, strict=True)):
            a = a / (torch.sqrt(torch.sum(a**2, dim=1, keepdim=True)) + 1e-10)
            b = b / (torch.sqrt(torch.sum(b**2, dim=1, keepdim=True)) + 1e-10)
            total = total + self.lins[k].model((a - b) ** 2).mean([2, 3], keepdim=True)
        return total


def test_from_lpips_reproduces_the_lpips_model(monkeypatch):
    torch.manual_seed(0)
    fake = types.ModuleType("lpips")
    fake.LPIPS = _FakeLPIPS
    monkeypatch.setitem(sys.modules, "lpips", fake)
    loss = PerceptualLoss.from_lpips(net="vgg")
    assert loss.features.net is not None
    reference = _FakeLPIPS()
    reference.load_state_dict(
        {"shift": reference.shift, "scale": reference.scale}
        | {k: v for k, v in loss.features.state_dict().items() if k.startswith("net.")}
        | {
            f"lins.{k}.model.1.weight": getattr(loss, f"channel_weights_{k}").view(1, -1, 1, 1)
            for k in range(3)
        }
    )
    reference.eval()
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = reference(x, y, normalize=True).flatten()
    torch.testing.assert_close(loss(x, y, reduction="none"), expected)
    gray = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        expected_gray = reference(gray.expand(-1, 3, -1, -1), y, normalize=True).flatten()
    torch.testing.assert_close(loss(gray.expand(-1, 3, -1, -1), y, reduction="none"), expected_gray)
    assert float(loss(gray, gray)) == 0.0  # one channel is repeated to three


def test_from_lpips_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips raises ImportError
    with pytest.raises(ImportError, match=r"needs the lpips package \(pip install lpips\)"):
        PerceptualLoss.from_lpips()


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match=r"features must be an nn\.Module"):
        PerceptualLoss(lambda x: [x])
    with pytest.raises(ValueError, match=r"layer_weights\[1\] must be a float or a tensor"):
        PerceptualLoss(TwoLayers(), layer_weights=[1.0, torch.ones(2, 5)])
    x = torch.rand(2, 1, 9, 9, dtype=torch.float64)
    with pytest.raises(ValueError, match="features must return one map per entry"):
        PerceptualLoss(TwoLayers(), layer_weights=[1.0])(x, x)
    with pytest.raises(ValueError, match=r"layer_weights\[0\] must have one weight per channel"):
        PerceptualLoss(TwoLayers(), layer_weights=[torch.ones(4), 1.0])(x, x)
    with pytest.raises(ValueError, match="x and y must have the same shape"):
        PerceptualLoss(TwoLayers())(x, x[:1])
    with pytest.raises(ValueError, match="reduction must be one of"):
        PerceptualLoss(TwoLayers())(x, x, reduction="avg")
    with pytest.raises(TypeError, match="features must return a list or tuple of tensors"):
        PerceptualLoss(nn.Identity())(x, x)
