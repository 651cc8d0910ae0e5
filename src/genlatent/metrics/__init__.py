"""Evaluation: any model by protocol, the VAE's ELBO and IWAE bound, bits per dim, code usage."""

from genlatent.metrics.evaluate import Evaluation, VAEEvaluation, evaluate_model, evaluate_vae
from genlatent.metrics.iwae import iwae_bound
from genlatent.metrics.stats import bits_per_dim, code_usage

__all__ = [
    "Evaluation",
    "VAEEvaluation",
    "bits_per_dim",
    "code_usage",
    "evaluate_model",
    "evaluate_vae",
    "iwae_bound",
]
