"""PSNR and SSIM against the definitions (SSIM window by window from Wang et al. 2004 in
numpy float64), their properties, and the reconstruction Fréchet distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.metrics import (
    Classifier,
    frechet_distance,
    psnr,
    reconstruction_frechet_distance,
    ssim,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Eqs. 13-16 of Wang et al. 2004, one 11x11 window at a time, float64."""
    offsets = np.arange(11) - 5.0
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    batch, channels, height, width = x.shape
    result = np.zeros(batch)
    for n in range(batch):
        values = []
        for c in range(channels):
            for i in range(height - 10):
                for j in range(width - 10):
                    a, b = x[n, c, i : i + 11, j : j + 11], y[n, c, i : i + 11, j : j + 11]
                    mu_a, mu_b = np.sum(window * a), np.sum(window * b)
                    var_a = np.sum(window * (a - mu_a) ** 2)
                    var_b = np.sum(window * (b - mu_b) ** 2)
                    cov = np.sum(window * (a - mu_a) * (b - mu_b))
                    values.append(
                        (2 * mu_a * mu_b + c1) * (2 * cov + c2)
                        / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
                    )  # fmt: skip
        result[n] = np.mean(values)
    return result


@settings(deadline=None, max_examples=12)
@given(
    seed=SEEDS,
    channels=st.integers(1, 3),
    height=st.integers(11, 14),
    width=st.integers(11, 14),
    noise=st.floats(0.01, 1.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_ssim_matches_the_papers_formula_window_by_window(
    seed, channels, height, width, noise, dtype
):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, channels, height, width, generator=g, dtype=torch.float64)
    y = (x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    expected = torch.from_numpy(_ssim_reference(x.numpy(), y.numpy(), 1.0))
    got = ssim(x.to(dtype), y.to(dtype))
    assert got.dtype == dtype
    assert got.shape == (2,)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-4)


def test_ssim_of_an_image_with_itself_is_one_and_ssim_is_symmetric():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 2, 16, 20, generator=g), torch.rand(3, 2, 16, 20, generator=g)
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert bool((ssim(x, y) < 0.5).all())


def test_ssim_and_psnr_read_the_data_range():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 1, 12, 12, generator=g), torch.rand(2, 1, 12, 12, generator=g)
    torch.testing.assert_close(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y))
    torch.testing.assert_close(psnr(255 * x, 255 * y, data_range=255.0), psnr(x, y))


@settings(deadline=None, max_examples=25)
@given(seed=SEEDS, data_range=st.floats(0.5, 255.0))
def test_psnr_is_the_closed_form_of_each_images_mse(seed, data_range):
    g = torch.Generator().manual_seed(seed)
    x = data_range * torch.rand(3, 2, 4, 5, generator=g, dtype=torch.float64)
    y = data_range * torch.rand(3, 2, 4, 5, generator=g, dtype=torch.float64)
    expected = [
        10 * math.log10(data_range**2 / float(np.mean((a - b) ** 2)))
        for a, b in zip(x.numpy(), y.numpy(), strict=True)
    ]
    torch.testing.assert_close(psnr(x, y, data_range=data_range),
                               torch.tensor(expected, dtype=torch.float64))  # fmt: skip
    assert torch.isinf(psnr(x, x)).all()


def test_reconstruction_frechet_distance_compares_the_classifiers_features():
    torch.manual_seed(0)
    classifier = Classifier(1, 10, image_size=12).eval()
    images = torch.rand(40, 1, 12, 12)
    noisy = (images + 0.3 * torch.randn(images.shape)).clamp(0, 1)
    with torch.no_grad():
        expected = frechet_distance(classifier.features(images), classifier.features(noisy))
    got = reconstruction_frechet_distance(classifier, images, noisy, batch_size=7)
    assert got == pytest.approx(expected, rel=1e-6)
    assert reconstruction_frechet_distance(classifier, images, images) == pytest.approx(
        0.0, abs=1e-9
    )
    as_bytes = (images * 255).round().to(torch.uint8)
    assert reconstruction_frechet_distance(classifier, as_bytes, as_bytes.float() / 255) == (
        pytest.approx(0.0, abs=1e-9)
    )


def test_bad_inputs_are_named():
    x = torch.rand(2, 1, 12, 12)
    with pytest.raises(ValueError, match=r"x and y must have height and width >= 11"):
        ssim(x[..., :10], x[..., :10])
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
        psnr(x[0], x[0])
    with pytest.raises(ValueError, match="x and y must have the same shape"):
        ssim(x, x[:1])
    with pytest.raises(TypeError, match="y must have a floating-point dtype"):
        psnr(x, x.to(torch.uint8))
    with pytest.raises(ValueError, match="data_range must be finite and > 0"):
        ssim(x, x, data_range=0.0)
    with pytest.raises(ValueError, match="images and reconstructions must have the same shape"):
        reconstruction_frechet_distance(Classifier(1, 10, image_size=12), x, x[:1])
    with pytest.raises(ValueError, match="images must hold at least 2 images"):
        reconstruction_frechet_distance(Classifier(1, 10, image_size=12), x[:1], x[:1])
