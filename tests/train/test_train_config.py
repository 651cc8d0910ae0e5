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
            r"model must be one of \('vae', 'vqvae', 'tokenizer'\), 'custom' or a spec .*, "
            r"got 'gan'",
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
            r"not apply to model 'custom': latent_dim \(vae only\), codebook_size \(vqvae, "
            r"tokenizer with --quantizer vq, lfq, rvq, simvq, bsq only\)",
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


def test_three_tables_each_option_in_the_one_that_defines_it():
    from genlatent.train import ObjectiveOptions, TrainerSettings

    config = TrainConfig(model="vqvae", epochs=3, beta=1.0, quantizer="fsq", levels="8,5,5")
    assert isinstance(config.trainer, TrainerSettings)
    assert isinstance(config.objective, ObjectiveOptions)
    assert (config.trainer.epochs, config.epochs) == (3, 3)
    assert config.architecture == {"quantizer": "fsq", "levels": (8, 5, 5)}  # as given
    recorded = config.to_dict()
    assert set(recorded) == {"model", "trainer", "objective", "architecture"}
    assert recorded["architecture"] == {"quantizer": "fsq", "levels": [8, 5, 5]}
    assert TrainConfig.from_dict(recorded) == config


def test_a_flat_record_of_genlatent_0_1_still_loads_with_the_options_that_applied():
    # the config.json of a 0.1 run: every field, the inapplicable ones at their defaults
    flat = {
        "model": "vqvae", "dataset": "digits", "data_dir": None, "download": False,
        "epochs": 2, "batch_size": 128, "lr": 2e-4, "seed": 0, "device": "cpu",
        "precision": "fp32", "grad_clip": None, "skip_nonfinite": False, "compile": False,
        "latent_dim": 200, "hidden": None, "activation": "leaky_relu", "likelihood": "bernoulli",
        "vamp_components": None, "beta": 1.0, "free_bits": 0.0, "warmup_steps": 0,
        "capacity": None, "gamma": None, "iwae_samples": 1, "binarize": False,
        "hidden_channels": 8, "codebook_size": 64, "embedding_dim": 4,
        "commitment_weight": 0.25, "ema": True, "restart_dead_codes": None, "quantizer": "vq",
        "levels": None, "num_quantizers": 4, "distance": "l2", "gradient": "straight_through",
        "init": "uniform", "train_limit": None, "test_limit": None,
    }  # fmt: skip
    config = TrainConfig.from_dict(flat)
    assert config.trainer.epochs == 2
    assert config.architecture["codebook_size"] == 64
    assert config.architecture["ema"] is True
    assert "latent_dim" not in config.architecture  # a VAE option: it did not apply
    assert "num_quantizers" not in config.architecture  # residual VQ only


def test_architecture_options_read_flat_are_deprecated():
    config = TrainConfig(model="vqvae", ema=True)
    with pytest.warns(DeprecationWarning, match=r"config.architecture.get\('ema'\)"):
        assert config.ema is True
    with pytest.warns(DeprecationWarning, match="TrainConfig.codebook_size is deprecated"):
        assert config.codebook_size == 512  # not given: the builder's default
    with pytest.raises(AttributeError, match="no field 'colour'"):
        _ = config.colour
