"""Hinge and non-saturating GAN losses against their definitions; the adaptive weight
against gradient norms computed independently (closed form and separate backward passes)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from genlatent.losses import (
    adaptive_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=25)


def _logits(seed: int, batch: int, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 1, 3, 2)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64),
            scale * torch.randn(shape, generator=g, dtype=torch.float64))  # fmt: skip


def _patch_mean(values: list[list[float]]) -> list[float]:
    return [sum(row) / len(row) for row in values]


@SETTINGS
@given(seed=SEEDS, batch=st.integers(1, 4))
def test_hinge_losses_match_their_definitions(seed, batch):
    real, fake = _logits(seed, batch)
    real_rows, fake_rows = real.flatten(1).tolist(), fake.flatten(1).tolist()
    expected_d = [
        0.5 * (sum(max(0.0, 1 - v) for v in r) / len(r) + sum(max(0.0, 1 + v) for v in f) / len(f))
        for r, f in zip(real_rows, fake_rows, strict=True)
    ]
    expected_g = [-m for m in _patch_mean(fake_rows)]
    d = hinge_discriminator_loss(real, fake, reduction="none")
    g = hinge_generator_loss(fake, reduction="none")
    torch.testing.assert_close(d, torch.tensor(expected_d, dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor(expected_g, dtype=torch.float64))
    torch.testing.assert_close(hinge_discriminator_loss(real, fake, reduction="sum"), d.sum())
    torch.testing.assert_close(hinge_generator_loss(fake), g.mean())


@SETTINGS
@given(seed=SEEDS, batch=st.integers(1, 4))
def test_non_saturating_losses_match_the_cross_entropy(seed, batch):
    real, fake = _logits(seed, batch)
    real_rows, fake_rows = real.flatten(1).tolist(), fake.flatten(1).tolist()

    def log_sigmoid(v: float) -> float:
        return -math.log1p(math.exp(-v))

    expected_d = [
        0.5 * (-sum(log_sigmoid(v) for v in r) / len(r)
               - sum(math.log1p(-math.exp(log_sigmoid(v))) for v in f) / len(f))
        for r, f in zip(real_rows, fake_rows, strict=True)
    ]  # fmt: skip
    expected_g = [-sum(log_sigmoid(v) for v in f) / len(f) for f in fake_rows]
    d = non_saturating_discriminator_loss(real, fake, reduction="none")
    g = non_saturating_generator_loss(fake, reduction="none")
    torch.testing.assert_close(d, torch.tensor(expected_d, dtype=torch.float64))
    torch.testing.assert_close(g, torch.tensor(expected_g, dtype=torch.float64))
    torch.testing.assert_close(non_saturating_discriminator_loss(real, fake), d.mean())
    torch.testing.assert_close(non_saturating_generator_loss(fake, reduction="sum"), g.sum())


def test_non_saturating_losses_stay_finite_for_large_logits():
    """-log sigmoid(-v) = v + log(1 + e^-v) -> v: exact where log(sigmoid) would give inf."""
    far = torch.tensor([[-300.0], [300.0]])
    g = non_saturating_generator_loss(far, reduction="none")
    torch.testing.assert_close(g, torch.tensor([300.0, 0.0]))
    d = non_saturating_discriminator_loss(far, -far, reduction="none")
    torch.testing.assert_close(d, torch.tensor([300.0, 0.0]))
    far.requires_grad_(True)
    non_saturating_generator_loss(far).backward()
    assert torch.isfinite(far.grad).all()


def test_hinge_discriminator_loss_is_zero_past_the_margins():
    assert float(hinge_discriminator_loss(torch.full((2, 4), 1.0), torch.full((2, 4), -1.5))) == 0


def _decoder_and_losses(seed: int):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(5, 4, generator=g, dtype=torch.float64)
    target = torch.randn(5, 3, generator=g, dtype=torch.float64)
    direction = torch.randn(5, 3, generator=g, dtype=torch.float64)
    last = nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        last.weight.copy_(torch.randn(3, 4, generator=g, dtype=torch.float64))
    return hidden, target, direction, last


@SETTINGS
@given(seed=SEEDS)
def test_adaptive_weight_is_the_ratio_of_gradient_norms_in_closed_form(seed):
    """For out = h W^T + b: grad_W of 0.5 |out - t|^2 is (out - t)^T h, of sum(a * out) is
    a^T h: the ratio of their Frobenius norms, with eps added to the denominator."""
    hidden, target, direction, last = _decoder_and_losses(seed)
    out = last(hidden)
    reconstruction = 0.5 * (out - target).square().sum()
    adversarial = (direction * out).sum()
    weight = adaptive_weight(reconstruction, adversarial, last.weight, eps=1e-4)
    with torch.no_grad():
        numerator = torch.linalg.matrix_norm((out - target).T @ hidden)
        denominator = torch.linalg.matrix_norm(direction.T @ hidden)
    torch.testing.assert_close(weight, numerator / (denominator + 1e-4))
    assert not weight.requires_grad


def test_adaptive_weight_matches_separate_backward_passes_at_a_decoders_last_layer():
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 6))
    critic = nn.Sequential(nn.Linear(6, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    z, x = torch.randn(3, 6), torch.randn(3, 6)

    def losses():
        out = decoder(z)
        return (out - x).abs().mean(), -critic(out).mean()

    norms = []
    for pick in (0, 1):
        decoder.zero_grad(set_to_none=True)
        losses()[pick].backward()
        norms.append(float(decoder[2].weight.grad.norm()))
    reconstruction, adversarial = losses()
    weight = adaptive_weight(reconstruction, adversarial, decoder[2].weight)
    assert float(weight) == pytest.approx(norms[0] / (norms[1] + 1e-4), rel=1e-5)
    (reconstruction + weight * adversarial).backward()  # the graphs are kept for this


def test_adaptive_weight_is_clipped_at_max_weight():
    hidden, target, _, last = _decoder_and_losses(0)
    out = last(hidden)
    reconstruction = 0.5 * (out - target).square().sum()
    flat = 0.0 * out.sum()  # a zero gradient: ratio |g| / eps, far above 3
    assert float(adaptive_weight(reconstruction, flat, last.weight, max_weight=3.0)) == 3.0


def test_errors_name_the_argument():
    weight = torch.ones(2, requires_grad=True)
    loss = weight.sum()
    with pytest.raises(ValueError, match="adversarial_loss must require grad"):
        adaptive_weight(loss, torch.tensor(1.0), weight)
    with pytest.raises(ValueError, match="reconstruction_loss must be a scalar loss"):
        adaptive_weight(weight * 2, loss, weight)
    with pytest.raises(ValueError, match="adversarial_loss must depend on last_layer_weight"):
        adaptive_weight(loss, torch.ones(2, requires_grad=True).sum(), weight)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        adaptive_weight(loss, loss, weight, eps=0.0)
    with pytest.raises(TypeError, match=r"last_layer_weight must be a torch\.Tensor"):
        adaptive_weight(loss, loss, [1.0])
    with pytest.raises(ValueError, match="real_logits and fake_logits must have the same shape"):
        hinge_discriminator_loss(torch.zeros(2, 1), torch.zeros(3, 1))
    with pytest.raises(TypeError, match="fake_logits must have a floating-point dtype"):
        hinge_generator_loss(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction must be one of"):
        non_saturating_generator_loss(torch.zeros(2), reduction="batch")
    with pytest.raises(ValueError, match=r"real_logits must have shape \(B, \*\)"):
        non_saturating_discriminator_loss(torch.tensor(0.0), torch.tensor(0.0))
