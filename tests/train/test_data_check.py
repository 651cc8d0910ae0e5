"""The run's data is checked once before the first step, and nothing is written when it fails."""

from __future__ import annotations

import pytest
import torch

from genlatent import (
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    VectorQuantizer,
    fit,
)

QUIET = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "device": "cpu", "show_progress": False}


def _vae() -> VAE:
    return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))


def test_float_images_in_0_255_are_refused_for_a_bernoulli_likelihood(tmp_path):
    images = torch.rand(32, 1, 4, 4) * 255  # forgot to divide by 255
    with pytest.raises(ValueError, match=r"train_data does not suit the model .*\[0, 1\]"):
        fit(_vae(), images, run_dir=tmp_path / "run", log=lambda line: None, **QUIET)
    assert not (tmp_path / "run" / "config.json").exists()
    # the same images scaled train
    fit(_vae(), images / 255, run_dir=tmp_path / "ok", log=lambda line: None, **QUIET)


@pytest.mark.parametrize("split", ["train_data", "test_data"])
def test_a_nan_pixel_is_named_by_dataset_and_example(split, tmp_path):
    images = torch.rand(32, 1, 4, 4)
    images[5, 0, 2, 3] = float("nan")
    clean = torch.rand(8, 1, 4, 4)
    train, test = (images, clean) if split == "train_data" else (clean, images)
    with pytest.raises(ValueError, match=rf"{split} example 5 holds NaN or infinity \(1 of"):
        fit(_vae(), train, test, run_dir=tmp_path / "run", log=lambda line: None,
            skip_nonfinite=True, **QUIET)  # fmt: skip
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_shape_the_conv_layers_cannot_take_is_named(tmp_path):
    model = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 1))
    with pytest.raises(ValueError, match=r"examples of shape \(1, 30, 30\).*divisible by 4"):
        fit(model, torch.rand(16, 1, 30, 30), run_dir=tmp_path / "run", log=lambda line: None,
            **QUIET)  # fmt: skip
    assert not (tmp_path / "run" / "config.json").exists()


def test_the_check_changes_no_state_and_no_random_draw(tmp_path):
    images = torch.rand(32, 1, 8, 8)

    def run(name: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(16, 4, ema=True), ConvDecoder(4, 8, 1))
        fit(model, images, run_dir=tmp_path / name, log=lambda line: None, **QUIET)
        return model.state_dict()

    first, second = run("a"), run("b")
    assert all(torch.equal(first[k], second[k]) for k in first)
