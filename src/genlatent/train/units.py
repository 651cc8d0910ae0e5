"""What each number a run prints is measured in: one table for the epoch line and `eval`."""

from __future__ import annotations

__all__ = ["COUNTS", "METRIC_UNITS", "unit_of"]

METRIC_UNITS: dict[str, str] = {
    "mse": "per pixel",
    "psnr": "dB",
    "ssim": "",
    "fraction_used": "of the codes",
    "codes_used": "of the codes",
    "perplexity": "codes",
    "usage_perplexity": "codes",
    "bits_per_code": "bits/code",
    "prior_test_bits_per_code": "bits/code",
    "unigram_test_bits_per_code": "bits/code",
    "bits_per_masked_code": "bits/masked code",
    "prior_test_masked_bits_per_code_at_25": "bits/masked code",
    "prior_test_masked_bits_per_code_at_50": "bits/masked code",
    "prior_test_masked_bits_per_code_at_75": "bits/masked code",
    "iwae_nll": "nats/image",
    "frechet_distance": "classifier features",
    "frechet_distance_floor": "classifier features",
    "reconstruction_frechet_distance": "classifier features",
    "images_per_second": "img/s",
    "epoch_seconds": "s",
    "sampling_seconds": "s",
    "guidance_scale": "",
}
"""Units of the metrics whose unit does not depend on the model."""

COUNTS = ("epoch", "samples", "num_examples", "active_units", "steps")
"""Entries that are counts: printed without decimals and without a unit."""


def unit_of(name: str, loss_unit: str | None) -> str:
    """The unit of the number called ``name``; any other name is one of the model's loss
    terms, in ``loss_unit`` (empty when the model names none).

    Example:
        >>> unit_of("psnr", "nats/image"), unit_of("kl", "nats/image"), unit_of("loss", None)
        ('dB', 'nats/image', '')
    """
    if name in COUNTS:
        return ""
    return METRIC_UNITS.get(name, loss_unit or "")
