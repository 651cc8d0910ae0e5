"""Training objectives with explicit reductions: the ELBO, the IWAE bound, the VQ-VAE loss,
and the adversarial and perceptual losses of image tokenizers."""

from genlatent.losses.adversarial import (
    adaptive_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
)
from genlatent.losses.elbo import VAELoss, vae_loss
from genlatent.losses.iwae import iwae_loss
from genlatent.losses.perceptual import PerceptualLoss
from genlatent.losses.vq import VQVAELoss, vqvae_loss

__all__ = [
    "PerceptualLoss",
    "VAELoss",
    "VQVAELoss",
    "adaptive_weight",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "iwae_loss",
    "non_saturating_discriminator_loss",
    "non_saturating_generator_loss",
    "vae_loss",
    "vqvae_loss",
]
