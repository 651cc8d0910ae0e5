"""Training objectives with explicit reductions: the ELBO and the VQ-VAE loss."""

from genlatent.losses.elbo import VAELoss, vae_loss
from genlatent.losses.vq import VQVAELoss, vqvae_loss

__all__ = ["VAELoss", "VQVAELoss", "vae_loss", "vqvae_loss"]
