"""Autoregressive priors over grids of code indices: a transformer and a gated PixelCNN.

Each is a model like any other (``loss(indices, labels=None)`` returns a `PriorLoss`,
``sample(num, ...)`` draws grids), with an exact likelihood (`log_prob`), so it trains
with the same trainer as the VQ-VAE whose codes it models.
"""

from genlatent.priors._base import PriorLoss
from genlatent.priors._sampling import filter_logits
from genlatent.priors.pixelcnn import PixelCNNPrior
from genlatent.priors.transformer import TransformerPrior

__all__ = ["PixelCNNPrior", "PriorLoss", "TransformerPrior", "filter_logits"]
