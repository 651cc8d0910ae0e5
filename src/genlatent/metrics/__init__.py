"""Evaluation: any model by protocol, the VAE's ELBO and IWAE bound, bits per dim, code usage,
reconstruction quality (PSNR, SSIM, reconstruction Fréchet distance) and sample quality
(Fréchet distance and class consistency from a classifier trained here)."""

from genlatent.metrics.classifier import (
    Classifier,
    ClassifierFeatureMaps,
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
from genlatent.metrics.reconstruction import (
    classifier_features,
    psnr,
    reconstruction_frechet_distance,
    ssim,
)
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
    "ClassifierFeatureMaps",
    "Evaluation",
    "FeatureStatistics",
    "VAEEvaluation",
    "active_units",
    "bits_per_dim",
    "class_consistency",
    "classifier_features",
    "code_usage",
    "evaluate_model",
    "evaluate_vae",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "iwae_bound",
    "load_or_train_classifier",
    "psnr",
    "reconstruction_frechet_distance",
    "ssim",
    "train_classifier",
    "unigram_bits_per_code",
]
