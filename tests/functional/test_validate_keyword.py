"""Value checks chosen per call (``validate=``), never by flipping the process-wide switch."""

from __future__ import annotations

import pytest
import torch

import genlatent
from genlatent import _validation
from genlatent.functional import log_likelihood
from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.metrics import iwae_bound


def test_validate_overrides_the_switch_for_one_call() -> None:
    x, logits = torch.full((2, 3), 2.0), torch.zeros(2, 3)  # targets outside [0, 1]
    assert genlatent.get_validate_args()
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        bernoulli_log_likelihood(x, logits)
    bernoulli_log_likelihood(x, logits, validate=False)  # skipped for this call only
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        log_likelihood(x, logits, "bernoulli")
    log_likelihood(x, logits, "bernoulli", validate=False)
    genlatent.set_validate_args(False)
    try:
        with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
            log_likelihood(x, logits, "bernoulli", validate=True)
    finally:
        genlatent.set_validate_args(True)


def test_library_code_never_flips_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    def flip(value: bool) -> None:
        raise AssertionError("set_validate_args called from library code")

    monkeypatch.setattr(_validation, "set_validate_args", flip)
    vae = genlatent.VAE(genlatent.MLPEncoder(6, 8, 2), genlatent.MLPDecoder(2, 8, 6))
    x = torch.rand(3, 6)
    with torch.no_grad():
        # several chunks: the later ones skip the value checks by argument
        bound = iwae_bound(vae, x, num_samples=6, chunk_size=2)
        samples = log_likelihood(x, torch.zeros(4, 3, 6), "gaussian")
    assert bound.shape == (3,)
    assert samples.shape == (4, 3)
