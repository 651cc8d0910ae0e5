"""Tests for vqvae_loss."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.losses import vqvae_loss


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(0, 5))
def test_reductions(seed, batch):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, 4, 4, generator=g)
    rec = torch.rand(batch, 3, 4, 4, generator=g)
    q = torch.rand((), generator=g)
    none = vqvae_loss(x, rec, q, reduction="none")
    total = vqvae_loss(x, rec, q, reduction="sum")
    for field in ("loss", "reconstruction_loss", "quantizer_loss"):
        torch.testing.assert_close(getattr(total, field), getattr(none, field).sum())
    if batch:
        mean = vqvae_loss(x, rec, q)
        # the tutorial's F.mse_loss (mean over every element) plus the quantizer's loss
        torch.testing.assert_close(mean.loss, F.mse_loss(rec, x) + q)


def test_bad_arguments():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="quantizer_loss must be a scalar, got shape"):
        vqvae_loss(x, x, torch.zeros(2))
    with pytest.raises(ValueError, match="x and reconstruction must have the same shape"):
        vqvae_loss(x, x[:1], torch.zeros(()))
