"""PatchDiscriminator: output shape and receptive field against convolution arithmetic."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from genlatent.nn import PatchDiscriminator


def _geometry(layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of each convolution in Isola et al.'s PatchGAN, padding 1."""
    return [(4, 2)] * layers + [(4, 1), (4, 1)]


def _output_side(side: int, layers: int) -> int:
    for kernel, stride in _geometry(layers):
        side = (side + 2 - kernel) // stride + 1
    return side


def _receptive_field(layers: int) -> int:
    """r = 1 + sum_l (k_l - 1) * prod_{i<l} s_i (Araujo et al. 2019, eq. 2)."""
    field, jump = 1, 1
    for kernel, stride in _geometry(layers):
        field += (kernel - 1) * jump
        jump *= stride
    return field


@settings(deadline=None, max_examples=15)
@given(
    layers=st.integers(1, 3),
    height=st.integers(24, 70),
    width=st.integers(24, 70),
    norm=st.sampled_from(["batch", "group", "none"]),
)
def test_output_shape_follows_convolution_arithmetic(layers, height, width, norm):
    discriminator = PatchDiscriminator(2, channels=4, layers=layers, norm=norm)
    logits = discriminator(torch.rand(3, 2, height, width))
    expected = (3, 1, _output_side(height, layers), _output_side(width, layers))
    assert tuple(logits.shape) == expected


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_each_logit_sees_a_patch_of_the_receptive_field(layers):
    """The gradient of one central logit is non-zero on exactly an r x r square of pixels."""
    torch.manual_seed(layers)
    discriminator = PatchDiscriminator(1, channels=2, layers=layers, norm="none",
                                       dtype=torch.float64)  # fmt: skip
    side = 2 * _receptive_field(layers) + 8
    x = torch.randn(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    logits = discriminator(x)
    centre = logits.shape[-1] // 2
    logits[0, 0, centre, centre].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(dim=0).nonzero().flatten()
    expected = _receptive_field(layers)
    assert int(rows[-1] - rows[0]) + 1 == expected == len(rows)
    assert int(cols[-1] - cols[0]) + 1 == expected == len(cols)
    assert discriminator.receptive_field == expected
    assert _receptive_field(3) == 70  # pix2pix's "70x70 PatchGAN"


def test_widths_double_up_to_eight_times_and_norms_replace_biases():
    discriminator = PatchDiscriminator(3, channels=8, layers=4, norm="group")
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 64, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 1, 1]
    assert [c.bias is not None for c in convs] == [True, False, False, False, False, True]
    norms = [m for m in discriminator.modules() if isinstance(m, nn.GroupNorm)]
    assert [n.num_channels for n in norms] == [16, 32, 64, 64]
    batch = PatchDiscriminator(3, channels=8, layers=2)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == 2
    plain = PatchDiscriminator(3, channels=8, layers=2, norm="none")
    assert all(c.bias is not None for c in plain.modules() if isinstance(c, nn.Conv2d))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in plain.modules())


def test_a_batch_of_one_and_a_training_step():
    discriminator = PatchDiscriminator(1, channels=4, layers=2, norm="group")
    before = [p.detach().clone() for p in discriminator.parameters()]
    optimizer = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    discriminator(torch.rand(1, 1, 16, 16)).mean().backward()
    optimizer.step()
    assert all(
        not torch.equal(b, p) for b, p in zip(before, discriminator.parameters(), strict=True)
    )


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match="norm must be one of"):
        PatchDiscriminator(1, norm="instance")
    with pytest.raises(ValueError, match="layers must be >= 1"):
        PatchDiscriminator(1, layers=0)
    with pytest.raises(TypeError, match="channels must be an int"):
        PatchDiscriminator(1, channels=2.0)
    discriminator = PatchDiscriminator(3, channels=4, layers=3)
    with pytest.raises(ValueError, match=r"x must have 3 channels"):
        discriminator(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"x must have height and width >= 24 for layers=3"):
        discriminator(torch.rand(2, 3, 23, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\)"):
        discriminator(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        discriminator(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
