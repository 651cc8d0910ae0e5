r"""The Fréchet distance between two sets of features (Heusel et al. 2017).

Here the features come from genlatent's own small classifier (`Classifier.features`),
not from Inception-v3: the numbers compare models trained and scored with genlatent,
and are **not** comparable with published FID values.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from genlatent._validation import check_tensor

__all__ = [
    "FeatureStatistics",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
]


class FeatureStatistics(NamedTuple):
    """The mean and covariance of a set of feature vectors, in float64."""

    mean: torch.Tensor
    r"""$\mu$, shape $(D,)$."""
    covariance: torch.Tensor
    r"""$\Sigma$ with the unbiased $1 / (N - 1)$ normalisation, shape $(D, D)$."""


def feature_statistics(features: torch.Tensor, *, name: str = "features") -> FeatureStatistics:
    r"""Mean and unbiased covariance of $N$ feature vectors, computed in float64.

    $$\mu = \frac{1}{N} \sum_n f_n, \qquad
      \Sigma = \frac{1}{N - 1} \sum_n (f_n - \mu)(f_n - \mu)^\top.$$

    Args:
        features: one feature vector per row, floating-point.
        name: the argument's name in error messages.

    Returns:
        `FeatureStatistics` in float64, on the features' device.

    Raises:
        TypeError: if ``features`` is not a floating-point tensor.
        ValueError: if it is not 2-D, has fewer than 2 rows, or holds NaN or infinity.

    Shape:
        - features: $(N, D)$
        - output: mean $(D,)$, covariance $(D, D)$

    Example:
        >>> import torch
        >>> stats = feature_statistics(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> stats.mean.tolist(), stats.covariance.tolist()
        ([1.0, 1.0], [[2.0, 0.0], [0.0, 0.0]])
    """
    features = check_tensor(name, features)
    if not features.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {features.dtype}")
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"{name} must have shape (N, D) with N >= 2 (a covariance needs two vectors), "
            f"got shape {tuple(features.shape)}"
        )
    features = features.detach().cpu().double()  # float64 on the CPU (no float64 on MPS)
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    mean = features.mean(dim=0)
    centred = features - mean
    covariance = centred.T @ centred / (features.shape[0] - 1)
    return FeatureStatistics(mean, covariance)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix, via ``eigh``.

    Eigenvalues that rounding made slightly negative are set to 0.
    """
    symmetric = (matrix + matrix.T) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric)
    roots = eigenvalues.clamp(min=0).sqrt()
    return (eigenvectors * roots) @ eigenvectors.T


def frechet_distance_from_statistics(
    mean_a: torch.Tensor,
    covariance_a: torch.Tensor,
    mean_b: torch.Tensor,
    covariance_b: torch.Tensor,
) -> float:
    r"""The Fréchet (2-Wasserstein) distance between $\mathcal{N}(\mu_a, \Sigma_a)$ and
    $\mathcal{N}(\mu_b, \Sigma_b)$, squared, as in FID (Heusel et al. 2017, eq. 6).

    $$d^2 = \lVert \mu_a - \mu_b \rVert^2
      + \operatorname{tr}\Big(\Sigma_a + \Sigma_b
      - 2\,\big(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}\big)^{1/2}\Big).$$

    The usual $\operatorname{tr}\big((\Sigma_a \Sigma_b)^{1/2}\big)$ equals the trace
    written here, since $\Sigma_a \Sigma_b$ and $\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}$
    have the same eigenvalues. The product $\Sigma_a \Sigma_b$ is not symmetric, and a
    general matrix square root of it (``scipy.linalg.sqrtm``) can return complex values
    or fail when a covariance is singular (fewer samples than dimensions, dead
    features). Here instead each covariance gets its symmetric square root from its
    eigendecomposition (``torch.linalg.eigh``; eigenvalues that rounding made negative
    are clamped to 0), and since
    $\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2} = (\Sigma_a^{1/2} \Sigma_b^{1/2})
    (\Sigma_a^{1/2} \Sigma_b^{1/2})^\top$, the trace of its square root is the sum of
    the singular values of $\Sigma_a^{1/2} \Sigma_b^{1/2}$ (its nuclear norm). Taking
    singular values of that product, rather than square roots of the eigenvalues of
    $\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}$, keeps a rounding error $\delta$ in a
    zero eigenvalue an error of order $\delta$ instead of $\sqrt{\delta}$.
    Computed in float64.

    Args:
        mean_a: $\mu_a$.
        covariance_a: $\Sigma_a$, symmetric positive semi-definite.
        mean_b: $\mu_b$.
        covariance_b: $\Sigma_b$, symmetric positive semi-definite.

    Returns:
        $d^2 \ge 0$ as a float (rounding error below 0 is returned as 0).

    Raises:
        TypeError: if an argument is not a tensor.
        ValueError: if the shapes are not $(D,)$ and $(D, D)$ for one $D$.

    Shape:
        - mean_a, mean_b: $(D,)$
        - covariance_a, covariance_b: $(D, D)$

    Example:
        >>> import torch
        >>> eye = torch.eye(2)
        >>> frechet_distance_from_statistics(torch.zeros(2), eye, torch.ones(2), 4 * eye)
        4.0
    """
    arguments = {
        "mean_a": mean_a,
        "covariance_a": covariance_a,
        "mean_b": mean_b,
        "covariance_b": covariance_b,
    }
    for name, value in arguments.items():
        check_tensor(name, value)
    dim = mean_a.shape[0] if mean_a.ndim == 1 else -1
    for name, value in arguments.items():
        expected = (dim,) if name.startswith("mean") else (dim, dim)
        if dim < 0 or tuple(value.shape) != expected:
            raise ValueError(
                f"{name} must have shape {'(D,)' if len(expected) == 1 else '(D, D)'} with "
                f"D = mean_a's length, got {tuple(value.shape)} (mean_a {tuple(mean_a.shape)})"
            )
    # in float64 on the CPU, wherever the statistics were made (no float64 on MPS)
    mean_a, mean_b = mean_a.cpu().double(), mean_b.cpu().double()
    covariance_a, covariance_b = covariance_a.cpu().double(), covariance_b.cpu().double()
    # tr sqrt(S_a^1/2 S_b S_a^1/2): the nuclear norm of S_a^1/2 S_b^1/2
    trace_root = torch.linalg.svdvals(_psd_sqrt(covariance_a) @ _psd_sqrt(covariance_b)).sum()
    distance = (
        (mean_a - mean_b).square().sum()
        + torch.trace(covariance_a)
        + torch.trace(covariance_b)
        - 2 * trace_root
    )
    return max(float(distance), 0.0)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    r"""The Fréchet distance between Gaussians fitted to two sets of features.

    Fits $\mathcal{N}(\mu, \Sigma)$ to each set (`feature_statistics`, float64, unbiased
    covariance) and returns $d^2$ of `frechet_distance_from_statistics`. With features
    from `Classifier.features` this is an FID-like score for generated images (lower is
    closer to the reference set). It uses genlatent's small MNIST classifier, **not**
    Inception-v3, so its values are not comparable with published FID numbers; and like
    FID it is biased upwards for small $N$: compare models at equal sample sizes.

    Args:
        features_a: $N_a$ feature vectors, e.g. of real images.
        features_b: $N_b$ feature vectors of the same dimension, e.g. of samples.

    Returns:
        The squared distance $d^2 \ge 0$, a float; 0 for identical sets.

    Raises:
        TypeError: if a set is not a floating-point tensor.
        ValueError: if a set is not $(N, D)$ with $N \ge 2$ or is not finite, or the two
            $D$ differ.

    Shape:
        - features_a: $(N_a, D)$
        - features_b: $(N_b, D)$

    Example:
        >>> import torch
        >>> a = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
        >>> round(frechet_distance(a, a), 6)
        0.0
        >>> round(frechet_distance(a, a + 2.0), 6)  # a shift by (2, 2, 2): |shift|^2
        12.0
    """
    stats_a = feature_statistics(features_a, name="features_a")
    stats_b = feature_statistics(features_b, name="features_b")
    if stats_a.mean.shape != stats_b.mean.shape:
        raise ValueError(
            "features_a and features_b must have the same feature dimension D, "
            f"got {tuple(features_a.shape)} and {tuple(features_b.shape)}"
        )
    return frechet_distance_from_statistics(
        stats_a.mean, stats_a.covariance, stats_b.mean, stats_b.covariance
    )
