"""Training objectives with explicit reductions: the ELBO, the IWAE bound, the VQ-VAE loss."""

from genlatent.losses.elbo import VAELoss, vae_loss
from genlatent.losses.iwae import iwae_loss
from genlatent.losses.vq import VQVAELoss, vqvae_loss

__all__ = ["VAELoss", "VQVAELoss", "iwae_loss", "vae_loss", "vqvae_loss"]
