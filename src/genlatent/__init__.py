"""genlatent: latent-variable generative models (VAEs and VQ-VAEs) for PyTorch.

The layers, each importing only those before it:

- `genlatent.functional`: pure maths (reparameterization, KL, likelihoods, quantization)
- `genlatent.nn`: encoders, decoders, the quantizers and the `PatchDiscriminator`
- `genlatent.losses`: the ELBO, the VQ-VAE objective, adversarial and perceptual losses
- `genlatent.models`: `VAE`, `ConditionalVAE`, `VQVAE`, the image `Tokenizer` and its
  continuous `KLAutoencoder`, and the reference presets
- `genlatent.train`: `fit` (any model that follows the protocol), `load_run`, `train`,
  and the `Tracker`s a run reports to (TensorBoard, W&B, your own)

Every module saves as portable weights (``config.json`` + ``model.safetensors``) with
``save_pretrained``; `from_pretrained` rebuilds whichever model a folder holds, and
`PretrainedMixin` gives a user's own module the same two methods.

`set_validate_args` switches the checks that read tensor values (NaN, target ranges).
Every error of genlatent's own derives from `GenlatentError` (see `genlatent.errors`).
"""

from genlatent._protocols import Model, MultiOptimizerModel, OptimizerGroup
from genlatent._validation import get_validate_args, set_validate_args
from genlatent._version import __version__
from genlatent.errors import GenlatentError
from genlatent.functional import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
)
from genlatent.losses import PerceptualLoss, VAELoss, VQVAELoss, vae_loss, vqvae_loss
from genlatent.models import (
    VAE,
    VQVAE,
    ConditionalVAE,
    KLAutoencoder,
    Tokenizer,
    VAEOutput,
    VQVAEOutput,
    cifar10_vqvae,
    mnist_vae,
    mnist_vqvae,
)
from genlatent.nn import (
    FSQ,
    LFQ,
    ConvDecoder,
    ConvEncoder,
    GaussianParams,
    GroupedQuantizer,
    MLPDecoder,
    MLPEncoder,
    PatchDiscriminator,
    Quantizer,
    QuantizerOutput,
    ResidualBlock,
    ResidualQuantizer,
    ResidualVQ,
    SimVQ,
    VectorQuantizer,
)
from genlatent.pretrained import PretrainedMixin, from_pretrained
from genlatent.priors import MaskGITPrior, PixelCNNPrior, TransformerPrior
from genlatent.train import Tracker, fit, load_run

__all__ = [
    "FSQ",
    "LFQ",
    "VAE",
    "VQVAE",
    "ConditionalVAE",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianParams",
    "GenlatentError",
    "GroupedQuantizer",
    "KLAutoencoder",
    "MLPDecoder",
    "MLPEncoder",
    "MaskGITPrior",
    "Model",
    "MultiOptimizerModel",
    "OptimizerGroup",
    "PatchDiscriminator",
    "PerceptualLoss",
    "PixelCNNPrior",
    "PretrainedMixin",
    "Quantizer",
    "QuantizerOutput",
    "ResidualBlock",
    "ResidualQuantizer",
    "ResidualVQ",
    "SimVQ",
    "Tokenizer",
    "Tracker",
    "TransformerPrior",
    "VAELoss",
    "VAEOutput",
    "VQVAELoss",
    "VQVAEOutput",
    "VectorQuantizer",
    "__version__",
    "bernoulli_log_likelihood",
    "cifar10_vqvae",
    "fit",
    "from_pretrained",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "get_validate_args",
    "load_run",
    "mnist_vae",
    "mnist_vqvae",
    "reparameterize",
    "set_validate_args",
    "vae_loss",
    "vqvae_loss",
]
