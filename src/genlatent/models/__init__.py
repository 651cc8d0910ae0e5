"""VAE and VQ-VAE compositions and the presets of the reference experiments."""

from genlatent.models.cvae import ConditionalVAE
from genlatent.models.presets import (
    cifar10_vqvae,
    conditional_vae,
    conv_vae,
    mnist_vae,
    mnist_vqvae,
    preset,
    vae_preset,
    vqvae_preset,
)
from genlatent.models.quantizers import QUANTIZERS, build_quantizer, register_quantizer
from genlatent.models.vae import VAE, VAEOutput, VampPrior
from genlatent.models.vqvae import VQVAE, VQVAEOutput

__all__ = [
    "QUANTIZERS",
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "VAEOutput",
    "VQVAEOutput",
    "VampPrior",
    "build_quantizer",
    "cifar10_vqvae",
    "conditional_vae",
    "conv_vae",
    "mnist_vae",
    "mnist_vqvae",
    "preset",
    "register_quantizer",
    "vae_preset",
    "vqvae_preset",
]
