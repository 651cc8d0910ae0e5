"""Building blocks: MLP and conv encoders and decoders, the quantizer contract, quantizers."""

from genlatent.nn.conv import ConvDecoder, ConvEncoder, ResidualBlock
from genlatent.nn.mlp import GaussianParams, MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer
from genlatent.nn.quantizer import Quantizer, QuantizerOutput

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "GaussianParams",
    "MLPDecoder",
    "MLPEncoder",
    "Quantizer",
    "QuantizerOutput",
    "ResidualBlock",
    "VectorQuantizer",
]
