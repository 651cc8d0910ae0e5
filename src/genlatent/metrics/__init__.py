"""Evaluation: any model by protocol, the VAE's ELBO and IWAE bound, bits per dim, code usage,
and sample quality (Fréchet distance and class consistency from a classifier trained here)."""

from genlatent.metrics.classifier import (
    Classifier,
    class_consistency,
    load_or_train_classifier,
    train_classifier,
)
from genlatent.metrics.evaluate import Evaluation, VAEEvaluation, evaluate_model, evaluate_vae
from genlatent.metrics.frechet import (
    FeatureStatistics,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
)
from genlatent.metrics.iwae import iwae_bound
from genlatent.metrics.stats import (
    ACTIVE_UNIT_THRESHOLD,
    active_units,
    bits_per_dim,
    code_usage,
    unigram_bits_per_code,
)

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "Classifier",
    "Evaluation",
    "FeatureStatistics",
    "VAEEvaluation",
    "active_units",
    "bits_per_dim",
    "class_consistency",
    "code_usage",
    "evaluate_model",
    "evaluate_vae",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "iwae_bound",
    "load_or_train_classifier",
    "train_classifier",
    "unigram_bits_per_code",
]
