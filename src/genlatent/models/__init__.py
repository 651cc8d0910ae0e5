"""VAE and VQ-VAE compositions and the presets of the reference experiments."""

from genlatent.models.cvae import ConditionalVAE
from genlatent.models.presets import (
    cifar10_vqvae,
    conditional_vae,
    conv_vae,
    mnist_vae,
    mnist_vqvae,
)
from genlatent.models.vae import VAE, VAEOutput, VampPrior
from genlatent.models.vqvae import VQVAE, VQVAEOutput

__all__ = [
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "VAEOutput",
    "VQVAEOutput",
    "VampPrior",
    "cifar10_vqvae",
    "conditional_vae",
    "conv_vae",
    "mnist_vae",
    "mnist_vqvae",
]
