"""Building blocks: MLP and conv encoders and decoders, the quantizer contract, quantizers,
the PatchGAN discriminator."""

from genlatent.nn.conv import ConvDecoder, ConvEncoder, ResidualBlock
from genlatent.nn.discriminator import PatchDiscriminator
from genlatent.nn.fsq import FSQ
from genlatent.nn.grouped import GroupedQuantizer
from genlatent.nn.lfq import LFQ
from genlatent.nn.mlp import GaussianParams, MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer
from genlatent.nn.quantizer import Quantizer, QuantizerOutput
from genlatent.nn.residual import ResidualVQ
from genlatent.nn.residual_quantizer import ResidualQuantizer
from genlatent.nn.simvq import SimVQ

__all__ = [
    "FSQ",
    "LFQ",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianParams",
    "GroupedQuantizer",
    "MLPDecoder",
    "MLPEncoder",
    "PatchDiscriminator",
    "Quantizer",
    "QuantizerOutput",
    "ResidualBlock",
    "ResidualQuantizer",
    "ResidualVQ",
    "SimVQ",
    "VectorQuantizer",
]
