"""Pure tensor maths: likelihoods, KL, importance weights, vector quantization.

Everything here is a plain function of tensors: no parameters, no state, no device.
The modules in `genlatent.nn` and the losses in `genlatent.losses` call these.
"""

from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.functional.continuous_bernoulli import (
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_log_norm,
    continuous_bernoulli_logits,
    continuous_bernoulli_mean,
)
from genlatent.functional.fsq import fsq_bound, fsq_codes, fsq_codes_from_indices
from genlatent.functional.gaussian import gaussian_kl, gaussian_log_likelihood, reparameterize
from genlatent.functional.importance import (
    ImportanceWeights,
    gaussian_log_density_ratio,
    log_importance_weights,
    standard_normal_draws,
)
from genlatent.functional.lfq import (
    LFQEntropy,
    lfq_codes,
    lfq_codes_from_indices,
    lfq_entropy,
    lfq_indices,
)
from genlatent.functional.likelihood import (
    check_decoder_output,
    decoder_channels,
    fit_decoder_output,
    likelihood_mean,
    log_likelihood,
    parameters_for_mean,
)
from genlatent.functional.logistic import (
    discretized_logistic_mixture_log_likelihood,
    discretized_logistic_mixture_mean,
    split_logistic_mixture,
)
from genlatent.functional.mixture import gaussian_log_prob, gaussian_mixture_log_prob
from genlatent.functional.quantize import (
    VQLosses,
    code_counts,
    counts_perplexity,
    ema_codebook_update,
    nearest_code,
    straight_through,
    vq_losses,
)
from genlatent.functional.rotation import rotation_trick

__all__ = [
    "ImportanceWeights",
    "LFQEntropy",
    "VQLosses",
    "bernoulli_log_likelihood",
    "check_decoder_output",
    "code_counts",
    "continuous_bernoulli_log_likelihood",
    "continuous_bernoulli_log_norm",
    "continuous_bernoulli_logits",
    "continuous_bernoulli_mean",
    "counts_perplexity",
    "decoder_channels",
    "discretized_logistic_mixture_log_likelihood",
    "discretized_logistic_mixture_mean",
    "ema_codebook_update",
    "fit_decoder_output",
    "fsq_bound",
    "fsq_codes",
    "fsq_codes_from_indices",
    "gaussian_kl",
    "gaussian_log_density_ratio",
    "gaussian_log_likelihood",
    "gaussian_log_prob",
    "gaussian_mixture_log_prob",
    "lfq_codes",
    "lfq_codes_from_indices",
    "lfq_entropy",
    "lfq_indices",
    "likelihood_mean",
    "log_importance_weights",
    "log_likelihood",
    "nearest_code",
    "parameters_for_mean",
    "reparameterize",
    "rotation_trick",
    "split_logistic_mixture",
    "standard_normal_draws",
    "straight_through",
    "vq_losses",
]
