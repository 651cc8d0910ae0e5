"""Tests for TrainConfig."""

import pytest

from genlatent.train import TrainConfig


def test_reference_defaults_per_model():
    vae = TrainConfig(model="vae", dataset="mnist")
    assert (vae.lr, vae.batch_size, vae.epochs) == (1e-3, 100, 30)
    vq = TrainConfig(model="vqvae", dataset="cifar10")
    assert (vq.lr, vq.batch_size, vq.epochs) == (2e-4, 128, 50)
    assert TrainConfig(model="vae", epochs=2).epochs == 2
    for model in ("custom", "models.py:build", "package.module:build"):
        custom = TrainConfig(model=model)
        assert (custom.lr, custom.batch_size, custom.epochs) == (1e-3, 128, 10), model


def test_round_trip_and_replace():
    config = TrainConfig(model="vqvae", ema=True, restart_dead_codes=10)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.replace(epochs=3).epochs == 3
    with pytest.raises(ValueError, match=r"unknown config keys \['colour'\]"):
        TrainConfig.from_dict({**config.to_dict(), "colour": "red"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"model": "gan"},
            r"model must be one of \('vae', 'vqvae'\), 'custom' or a spec .*, got 'gan'",
        ),
        ({"dataset": "imagenet"}, "dataset must be one of"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"lr": -1.0}, "lr must be finite and > 0, got -1.0"),
        ({"lr": float("inf")}, "lr must be finite and > 0, got inf"),
        ({"grad_clip": 0}, "grad_clip must be finite and > 0"),
        ({"seed": -1}, "seed must be a non-negative int, got -1"),
        (
            {"model": "vqvae", "commitment_weight": -0.1},
            "commitment_weight must be finite and >= 0, got -0.1",
        ),
        (
            {"model": "vqvae", "restart_dead_codes": 0},
            "restart_dead_codes must be >= 1 or None, got 0",
        ),
        ({"model": "vae", "ema": True}, r"options that do not apply to model 'vae': ema \(vqvae"),
        (
            {"model": "custom", "latent_dim": 8, "codebook_size": 16},
            r"not apply to model 'custom': latent_dim \(vae only\), codebook_size \(vqvae with "
            r"--quantizer vq, lfq, rvq only\)",
        ),
        ({"device": ""}, "device must be a device string"),
    ],
)
def test_invalid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 2.5}, "batch_size must be an int, got float"),
        (
            {"model": "vqvae", "restart_dead_codes": 1.5},
            "restart_dead_codes must be an int or None, got float",
        ),
        ({"lr": "fast"}, "lr must be a float, got str"),
    ],
)
def test_values_of_the_wrong_type(kwargs, match):
    with pytest.raises(TypeError, match=match):
        TrainConfig(**kwargs)


def test_frozen():
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lr = 1.0
