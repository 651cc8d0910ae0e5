"""Building blocks: MLP and convolutional encoders and decoders, the vector quantizer."""

from genlatent.nn.conv import ConvDecoder, ConvEncoder, ResidualBlock
from genlatent.nn.mlp import GaussianParams, MLPDecoder, MLPEncoder
from genlatent.nn.quantize import QuantizerOutput, VectorQuantizer

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "GaussianParams",
    "MLPDecoder",
    "MLPEncoder",
    "QuantizerOutput",
    "ResidualBlock",
    "VectorQuantizer",
]
