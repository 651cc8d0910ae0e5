"""Pure tensor maths: Gaussian and Bernoulli likelihoods, KL, vector quantization.

Everything here is a plain function of tensors: no parameters, no state, no device.
The modules in `genlatent.nn` and the losses in `genlatent.losses` call these.
"""

from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.functional.gaussian import gaussian_kl, gaussian_log_likelihood, reparameterize

__all__ = [
    "bernoulli_log_likelihood",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "reparameterize",
]
