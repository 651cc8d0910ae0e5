"""Priors over grids of code indices: a transformer and a gated PixelCNN (autoregressive),
and MaskGIT (masked, parallel).

Each is a model like any other (``loss(indices, labels=None)`` returns its named terms,
``sample(num, ...)`` draws grids), so it trains with the same trainer as the VQ-VAE whose
codes it models. The autoregressive priors have an exact likelihood (`log_prob`);
MaskGIT has none, and samples a grid in a few parallel steps.
"""

from genlatent.priors._base import PriorLoss
from genlatent.priors._sampling import filter_logits
from genlatent.priors.maskgit import MaskGITLoss, MaskGITPrior
from genlatent.priors.pixelcnn import PixelCNNPrior
from genlatent.priors.transformer import TransformerPrior

__all__ = [
    "MaskGITLoss",
    "MaskGITPrior",
    "PixelCNNPrior",
    "PriorLoss",
    "TransformerPrior",
    "filter_logits",
]
