"""Building blocks: MLP and conv encoders and decoders, the quantizer contract, quantizers,
the PatchGAN discriminator."""

from genlatent.nn.conv import ConvDecoder, ConvEncoder, ResidualBlock
from genlatent.nn.discriminator import PatchDiscriminator
from genlatent.nn.fsq import FSQ
from genlatent.nn.lfq import LFQ
from genlatent.nn.mlp import GaussianParams, MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer
from genlatent.nn.quantizer import Quantizer, QuantizerOutput
from genlatent.nn.residual import ResidualVQ

__all__ = [
    "FSQ",
    "LFQ",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianParams",
    "MLPDecoder",
    "MLPEncoder",
    "PatchDiscriminator",
    "Quantizer",
    "QuantizerOutput",
    "ResidualBlock",
    "ResidualVQ",
    "VectorQuantizer",
]
