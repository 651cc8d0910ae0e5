"""Evaluation: test ELBO, the IWAE bound, bits per dim, VQ-VAE reconstruction and code usage."""

from genlatent.metrics.evaluate import VAEEvaluation, VQVAEEvaluation, evaluate_vae, evaluate_vqvae
from genlatent.metrics.iwae import iwae_bound
from genlatent.metrics.stats import bits_per_dim, perplexity_from_counts

__all__ = [
    "VAEEvaluation",
    "VQVAEEvaluation",
    "bits_per_dim",
    "evaluate_vae",
    "evaluate_vqvae",
    "iwae_bound",
    "perplexity_from_counts",
]
