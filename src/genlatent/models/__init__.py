"""VAE, VQ-VAE and tokenizer compositions and the presets of the reference experiments."""

from genlatent.models.cvae import ConditionalVAE
from genlatent.models.kl_autoencoder import KLAutoencoder, KLAutoencoderOutput
from genlatent.models.presets import (
    cifar10_vqvae,
    conditional_vae,
    conv_vae,
    mnist_vae,
    mnist_vqvae,
    preset,
    tokenizer_preset,
    vae_preset,
    vqvae_preset,
)
from genlatent.models.quantizers import QUANTIZERS, build_quantizer, register_quantizer
from genlatent.models.tokenizer import DiscriminatorLoss, Tokenizer, TokenizerLoss
from genlatent.models.vae import VAE, VAEOutput, VampPrior
from genlatent.models.vqvae import VQVAE, VQVAEOutput

__all__ = [
    "QUANTIZERS",
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "DiscriminatorLoss",
    "KLAutoencoder",
    "KLAutoencoderOutput",
    "Tokenizer",
    "TokenizerLoss",
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
    "tokenizer_preset",
    "vae_preset",
    "vqvae_preset",
]
