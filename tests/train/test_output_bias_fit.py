"""`fit` hands a new run's training mean to a model with ``init_output_bias``, never on resume."""

from typing import NamedTuple

import pytest
import torch
from torch import nn

from genlatent import fit
from genlatent.train.data_init import data_mean

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}


class Step(NamedTuple):
    loss: torch.Tensor


class Recorder(nn.Module):
    """A user's model with the capability: it keeps every mean it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.means: list[torch.Tensor] = []

    def init_output_bias(self, mean: torch.Tensor) -> None:
        self.means.append(mean.clone())

    def loss(self, x: torch.Tensor) -> Step:
        return Step((self.linear(x.flatten(1)) - x.flatten(1)).pow(2).mean())


def test_a_new_run_gets_the_training_mean_once_and_a_resumed_one_does_not(tmp_path):
    images = torch.randint(0, 256, (40, 1, 2, 2), dtype=torch.uint8)
    test = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8)
    model = Recorder()
    fit(model, images, test, run_dir=tmp_path, epochs=1, batch_size=8, lr=0.01, **QUIET)
    assert len(model.means) == 1
    expected = images.double().div(255).mean(dim=0).float()  # the training set's, not test's
    torch.testing.assert_close(model.means[0], expected)
    again = Recorder()
    fit(again, images, test, run_dir=tmp_path, epochs=2, batch_size=8, lr=0.01,
        resume=True, **QUIET)  # fmt: skip
    assert again.means == []


def test_the_vae_preset_trains_from_the_mean_pixel(tmp_path):
    from genlatent.models.presets import vae_preset

    images = torch.rand(30, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    model = vae_preset((1, 2, 2), latent_dim=2, hidden=(4,), activation="tanh")
    fit(model, images, run_dir=tmp_path, epochs=1, batch_size=30, lr=1e-9, **QUIET)
    # one step of lr 1e-9 moves the bias by about 1e-9: it is still the logits of the mean
    expected = torch.logit(images.mean(dim=0).flatten())
    torch.testing.assert_close(model.decoder.out.bias.detach(), expected, atol=1e-6, rtol=0)


def test_data_mean_scales_uint8_and_refuses_an_empty_set():
    images = torch.randint(0, 256, (10_000, 3), dtype=torch.uint8)  # more than one chunk
    torch.testing.assert_close(data_mean(images), images.double().mean(0).div(255).float())
    with pytest.raises(ValueError, match="train_data must hold at least one example"):
        data_mean(torch.zeros(0, 3))
