"""The Fréchet distance against closed forms and an independent matrix square root."""

from __future__ import annotations

import math

import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(deadline=None, max_examples=30)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@SETTINGS
@given(
    seed=SEEDS,
    dim=st.integers(1, 8),
    zeros=st.integers(0, 8),
    scale=st.floats(0.01, 100.0),
)
def test_diagonal_gaussians_match_the_closed_form(seed, dim, zeros, scale):
    """For diagonal covariances d^2 = |mu_a - mu_b|^2 + sum_i (sigma_a,i - sigma_b,i)^2,
    also when some variances are exactly zero (singular covariances)."""
    g = _gen(seed)
    mean_a = scale * torch.randn(dim, generator=g, dtype=torch.float64)
    mean_b = scale * torch.randn(dim, generator=g, dtype=torch.float64)
    std_a = scale * torch.rand(dim, generator=g, dtype=torch.float64)
    std_b = scale * torch.rand(dim, generator=g, dtype=torch.float64)
    std_a[: min(zeros, dim)] = 0.0
    std_b[: min(zeros, dim) // 2] = 0.0
    got = frechet_distance_from_statistics(
        mean_a, torch.diag(std_a**2), mean_b, torch.diag(std_b**2)
    )
    expected = float((mean_a - mean_b).square().sum() + (std_a - std_b).square().sum())
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9 * scale**2)


@SETTINGS
@given(seed=SEEDS, dim=st.integers(1, 6))
def test_general_covariances_match_scipy_sqrtm(seed, dim):
    """Reference: tr(S_a + S_b - 2 sqrtm(S_a S_b)) with scipy's general square root, on
    well-conditioned covariances where that square root is reliable."""
    g = _gen(seed)
    factor_a = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    factor_b = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    cov_a = factor_a @ factor_a.T + 0.5 * torch.eye(dim, dtype=torch.float64)
    cov_b = factor_b @ factor_b.T + 0.5 * torch.eye(dim, dtype=torch.float64)
    mean_a = torch.randn(dim, generator=g, dtype=torch.float64)
    mean_b = torch.randn(dim, generator=g, dtype=torch.float64)
    root = scipy.linalg.sqrtm((cov_a @ cov_b).numpy())
    expected = float(
        (mean_a - mean_b).square().sum()
        + torch.trace(cov_a)
        + torch.trace(cov_b)
        - 2 * float(root.real.trace())
    )
    got = frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-7)


@SETTINGS
@given(seed=SEEDS, num=st.integers(2, 40), dim=st.integers(1, 30))
def test_identical_sets_are_at_distance_zero(seed, num, dim):
    """Also with fewer vectors than dimensions, where the covariance is singular."""
    features = 5 * torch.randn(num, dim, generator=_gen(seed))
    scale = float(features.double().var(dim=0).sum()) + 1.0
    assert 0.0 <= frechet_distance(features, features) <= 1e-9 * scale


@SETTINGS
@given(seed=SEEDS, num_a=st.integers(2, 30), num_b=st.integers(2, 30), dim=st.integers(1, 12))
def test_symmetric_and_non_negative(seed, num_a, num_b, dim):
    g = _gen(seed)
    a = torch.randn(num_a, dim, generator=g)
    b = 2 * torch.randn(num_b, dim, generator=g) + 1
    forward, backward = frechet_distance(a, b), frechet_distance(b, a)
    assert forward >= 0.0
    assert math.isfinite(forward)
    assert forward == pytest.approx(backward, rel=1e-8, abs=1e-9)


@SETTINGS
@given(seed=SEEDS, num=st.integers(2, 30), dim=st.integers(1, 12), factor=st.floats(0.0, 3.0))
def test_shift_and_scale_of_one_set(seed, num, dim, factor):
    """b = a + v gives |v|^2; b = s a gives (1 - s)^2 (|mu|^2 + tr Sigma), exactly."""
    g = _gen(seed)
    a = torch.randn(num, dim, generator=g, dtype=torch.float64) + 0.5
    shift = torch.randn(dim, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), abs=1e-8)
    stats = feature_statistics(a)
    expected = (1 - factor) ** 2 * float(stats.mean.square().sum() + torch.trace(stats.covariance))
    assert frechet_distance(a, factor * a) == pytest.approx(expected, rel=1e-7, abs=1e-8)


def test_statistics_are_float64_and_unbiased():
    features = torch.tensor([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    stats = feature_statistics(features)
    assert stats.mean.dtype == stats.covariance.dtype == torch.float64
    torch.testing.assert_close(stats.covariance, torch.cov(features.double().T))
    torch.testing.assert_close(stats.mean, features.double().mean(0))


@pytest.mark.parametrize(
    ("a", "b", "exception", "match"),
    [
        (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2), TypeError,
         "features_a must have a floating-point dtype, got torch.int64"),
        ([[0.0]], torch.zeros(4, 2), TypeError, "features_a must be a torch.Tensor, got list"),
        (torch.zeros(4, 2), torch.zeros(1, 2), ValueError,
         r"features_b must have shape \(N, D\) with N >= 2 .*got shape \(1, 2\)"),
        (torch.zeros(8), torch.zeros(4, 2), ValueError, r"features_a must have shape \(N, D\)"),
        (torch.zeros(4, 2), torch.zeros(4, 3), ValueError,
         r"features_a and features_b must have the same feature dimension D, got \(4, 2\) and "
         r"\(4, 3\)"),
        (torch.tensor([[0.0], [math.nan]]), torch.zeros(4, 1), ValueError,
         "features_a must be finite"),
    ],
)  # fmt: skip
def test_frechet_errors(a, b, exception, match):
    with pytest.raises(exception, match=match):
        frechet_distance(a, b)


def test_statistics_shape_errors():
    eye = torch.eye(3)
    with pytest.raises(ValueError, match=r"covariance_b must have shape \(D, D\) .*got \(2, 2\)"):
        frechet_distance_from_statistics(torch.zeros(3), eye, torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match=r"mean_a must have shape \(D,\) .*got \(3, 3\)"):
        frechet_distance_from_statistics(eye, eye, torch.zeros(3), eye)
    with pytest.raises(TypeError, match=r"mean_b must be a torch\.Tensor, got float"):
        frechet_distance_from_statistics(torch.zeros(3), eye, 0.0, eye)
