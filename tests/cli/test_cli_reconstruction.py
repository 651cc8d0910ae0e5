"""``genlatent eval`` reports PSNR, SSIM and the reconstruction Fréchet distance for every
model that reconstructs (tiny MNIST runs of the VAE and the VQ-VAE presets)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genlatent.cli import main
from genlatent.metrics import load_or_train_classifier, reconstruction_frechet_distance, ssim
from genlatent.train.build import load_datasets
from genlatent.train.runs import load_run

TINY = ["--dataset", "mnist", "--epochs", "1", "--train-limit", "256", "--test-limit", "64",
        "--batch-size", "64", "--no-progress", "--device", "cpu"]  # fmt: skip
MODELS = {
    "vae": ["--latent-dim", "4", "--hidden", "32"],
    "vqvae": ["--hidden-channels", "8", "--embedding-dim", "4", "--codebook-size", "16"],
    "tokenizer": [
        "--hidden-channels",
        "8",
        "--embedding-dim",
        "4",
        "--codebook-size",
        "16",
        "--disc-channels",
        "8",
        "--disc-start",
        "2",
    ],
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_eval_reports_reconstruction_metrics(model, mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENLATENT_DATA", str(tmp_path / "home"))
    run = tmp_path / model
    argv = ["train", model, *TINY, "--data-dir", str(mnist_dir), *MODELS[model]]
    assert main([*argv, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--samples", "32", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["num_examples"] == 64
    # the dataset PSNR is the closed form of the dataset MSE
    assert results["psnr"] == pytest.approx(10 * math.log10(1 / results["mse"]))
    assert results["reconstruction_frechet_distance"] > 0.0
    assert results["frechet_distance"] >= 0.0

    # the same numbers from the library's parts: the run's test images (the first 32 for
    # the Fréchet distance, in the cached classifier's features), the model's reconstructions
    loaded = load_run(run)
    train_set, test_set = load_datasets(loaded.config)
    assert (len(train_set), len(test_set)) == (256, 64)
    x = test_set.images.float() / 255
    with torch.no_grad():
        reconstructions = loaded.model.eval().reconstruct(x)
    assert results["ssim"] == pytest.approx(float(ssim(reconstructions, x).mean()), abs=1e-5)
    classifier = load_or_train_classifier(train_set, tmp_path / "home" / "classifiers")
    expected = reconstruction_frechet_distance(
        classifier, test_set.images[:32], reconstructions[:32].clamp(0, 1)
    )
    assert results["reconstruction_frechet_distance"] == pytest.approx(expected, rel=1e-6)

    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    table = dict(row.split(None, 1) for row in capsys.readouterr().out.splitlines())
    assert float(table["ssim"]) == pytest.approx(results["ssim"], abs=1e-4)
