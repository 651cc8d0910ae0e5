"""Pure tensor maths: Gaussian and Bernoulli likelihoods, KL, vector quantization.

Everything here is a plain function of tensors: no parameters, no state, no device.
The modules in `genlatent.nn` and the losses in `genlatent.losses` call these.
"""

from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.functional.gaussian import gaussian_kl, gaussian_log_likelihood, reparameterize
from genlatent.functional.likelihood import likelihood_mean, log_likelihood
from genlatent.functional.quantize import (
    VQLosses,
    code_counts,
    counts_perplexity,
    ema_codebook_update,
    nearest_code,
    straight_through,
    vq_losses,
)

__all__ = [
    "VQLosses",
    "bernoulli_log_likelihood",
    "code_counts",
    "counts_perplexity",
    "ema_codebook_update",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "likelihood_mean",
    "log_likelihood",
    "nearest_code",
    "reparameterize",
    "straight_through",
    "vq_losses",
]
