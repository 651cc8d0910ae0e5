"""End-to-end tests of the reference trainer on the bundled digits (fast) and real MNIST."""

import dataclasses
import functools
import http.server
import json
import re
import threading
from typing import NamedTuple

import pytest
import torch
from PIL import Image

from genlatent.data import remote
from genlatent.train import NonFiniteLossError, RunDirectoryError, TrainConfig, train
from genlatent.train.checkpoint import load_checkpoint
from genlatent.train.loop import LossModule, StepSettings, train_epoch

QUIET = {"show_progress": False, "log": lambda line: None}
SMALL_VAE = TrainConfig(model="vae", dataset="digits", epochs=3, latent_dim=8, device="cpu")
SMALL_VQ = TrainConfig(
    model="vqvae",
    dataset="digits",
    epochs=3,
    hidden_channels=8,
    codebook_size=16,
    embedding_dim=4,
    device="cpu",
    train_limit=400,
    test_limit=100,
)


def test_run_directory_contents(tmp_path):
    summary = train(SMALL_VAE, tmp_path / "run", **QUIET)
    run = tmp_path / "run"
    assert summary.run_dir == run
    recorded = json.loads((run / "config.json").read_text())
    built = recorded.pop("built")  # the model as constructed, beside the settings
    assert recorded == SMALL_VAE.to_dict()
    assert built["class"] == "genlatent.VAE"
    assert built["arguments"]["encoder"]["arguments"]["latent_dim"] == 8
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    keys = ("train_loss", "train_kl", "test_loss", "test_reconstruction_loss", "images_per_second")
    for key in keys:
        assert all(key in r for r in records), key
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert all(r["train_examples"] == 1500 for r in records)
    for name in ("reconstructions.png", "samples.png"):
        with Image.open(run / name) as picture:
            assert picture.size[0] > 64
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best_loss"] == min(r["test_loss"] for r in records)
    assert best["data"] == {"example_shape": [1, 8, 8], "num_classes": 10}
    assert "scaler" in best


@pytest.mark.parametrize(
    "config",
    [
        SMALL_VAE,  # sampling noise (the trainer's noise generator)
        SMALL_VQ.replace(ema=True),
        # codes restarted after one unused step, and more codes than an epoch uses (checked
        # below): restarts draw from the global torch RNG in every step, so resume must
        # restore that RNG too
        SMALL_VQ.replace(
            ema=True, restart_dead_codes=1, codebook_size=256, epochs=2, train_limit=200
        ),
    ],
    ids=["vae", "vqvae-ema", "vqvae-ema-restarts"],
)
def test_resume_equals_uninterrupted(tmp_path, config):
    epochs = config.epochs
    train(config, tmp_path / "full", **QUIET)
    train(config.replace(epochs=1), tmp_path / "split", **QUIET)
    train(config, tmp_path / "split", resume=True, **QUIET)
    full, split = (
        load_checkpoint(tmp_path / name / "checkpoints" / "last.pt") for name in ("full", "split")
    )
    assert full.keys() == split.keys()
    # every tensor the checkpoint holds, bit for bit: weights, EMA buffers and dead-code
    # counters, optimizer moments, and the three RNG states it will resume from
    _assert_equal_tensors(full["model"], split["model"], "model")
    _assert_equal_tensors(full["optimizer"], split["optimizer"], "optimizer")
    for name in ("torch_rng", "noise_rng", "order_rng"):
        _assert_equal_tensors(full[name], split[name], name)
    records = [
        json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1))
    if (
        config.architecture.get("restart_dead_codes") == 1
    ):  # some code unused in each epoch, so in each step
        assert all(r["train_codes_used"] < 1 for r in records)


def _assert_equal_tensors(want, got, where: str) -> None:
    """Nested dicts, lists and tensors equal, tensors bit for bit (same dtype and shape)."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), where
        assert want.dtype == got.dtype, where
        assert want.shape == got.shape, where
        assert torch.equal(want, got), where
    elif isinstance(want, dict):
        assert want.keys() == got.keys(), where
        for key in want:
            _assert_equal_tensors(want[key], got[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(want) == len(got), where
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            _assert_equal_tensors(a, b, f"{where}[{i}]")
    else:
        assert want == got, where


def test_refuses_existing_run_and_changed_config(tmp_path):
    config = SMALL_VAE.replace(epochs=1)
    train(config, tmp_path / "run", **QUIET)
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(
        RunDirectoryError,
        match=r"already holds a run with checkpoints; pass --resume .* to continue it, "
        r"--overwrite to replace it",
    ):
        train(config, tmp_path / "run", **QUIET)
    with pytest.raises(
        ValueError, match=r"cannot change on resume: lr 0\.5 \(the run has 0\.001\)"
    ):
        train(config.replace(lr=0.5), tmp_path / "run", resume=True, **QUIET)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before
    with pytest.raises(RunDirectoryError, match=r"is not a run directory: no config\.json"):
        train(None, tmp_path / "nothing", resume=True, **QUIET)


def test_vqvae_run_logs_codebook_usage(tmp_path):
    summary = train(SMALL_VQ.replace(epochs=1), tmp_path / "run", **QUIET)
    record = summary.last_metrics
    assert 0 < record["train_codes_used"] <= 1
    assert 1 <= record["train_usage_perplexity"] <= 16
    keys = ("train_codebook", "train_commitment", "train_quantizer_loss")
    keys += ("train_reconstruction_loss", "test_reconstruction_loss", "test_codebook")
    for key in keys:
        assert key in record, key


class _Parts(NamedTuple):
    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


class _NaNAt(torch.nn.Module):
    """A linear model whose ``loss`` makes ``term`` NaN at its ``step_to_fail``-th call."""

    def __init__(self, step_to_fail, term):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)
        self.calls, self.step_to_fail, self.term = 0, step_to_fail, term

    def loss(self, x):
        self.calls += 1
        loss = self.linear(x).square().mean()
        value = float("nan") if self.calls == self.step_to_fail else 1.0
        parts = {"reconstruction": loss.detach(), "kl": torch.tensor(1.0)}
        if self.term in parts:
            parts[self.term] = parts[self.term] * value
        return _Parts(loss * (value if self.term == "loss" else 1.0), **parts)


CPU = StepSettings(torch.device("cpu"))


def _tiny_setup(step_to_fail=10_000, term="loss"):
    torch.manual_seed(0)
    model = _NaNAt(step_to_fail, term)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.randn(4, 3),) for _ in range(5)]
    return model, optimizer, batches


def test_nonfinite_loss_stops_naming_epoch_step_and_term():
    model, optimizer, batches = _tiny_setup(3, "kl")
    with pytest.raises(NonFiniteLossError, match=r"epoch 7, step 3: kl is NaN or infinite"):
        train_epoch(LossModule(model), optimizer, batches, CPU, epoch=7)


def test_nonfinite_steps_can_be_skipped_and_counted():
    model, optimizer, batches = _tiny_setup(2, "loss")
    settings = StepSettings(torch.device("cpu"), skip_nonfinite=True)
    result = train_epoch(LossModule(model), optimizer, batches, settings, epoch=1)
    assert result.skipped_steps == 1
    assert result.examples == 16
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_progress_bar_shows_live_loss_and_throughput(capsys):
    model, optimizer, _ = _tiny_setup()  # never NaN within 40 steps
    batches = [(torch.rand(4, 3),) for _ in range(40)]
    module = LossModule(model)
    train_epoch(module, optimizer, batches, CPU, epoch=1, show_progress=True)
    err = capsys.readouterr().err
    assert "epoch 1" in err
    assert re.search(r"loss [-0-9.e]+, [0-9,]+ img/s", err), err
    train_epoch(module, optimizer, batches, CPU, epoch=2, show_progress=False)
    assert capsys.readouterr().err == ""


def test_mnist_two_epochs_reach_tutorial_elbo(tmp_path, mnist_dir):
    # The tutorial's own loop reaches about 119 nats after two epochs on this data.
    config = TrainConfig(model="vae", dataset="mnist", data_dir=str(mnist_dir), epochs=2)
    summary = train(config.replace(device="cpu"), tmp_path / "run", **QUIET)
    assert summary.last_metrics["test_loss"] < 122


def _small_mnist_vqvae(mnist_dir) -> TrainConfig:
    return TrainConfig(
        model="vqvae",
        dataset="mnist",
        data_dir=str(mnist_dir),
        epochs=2,
        hidden_channels=32,
        train_limit=6000,
        test_limit=1000,
        lr=1e-3,
        ema=True,
        device="cpu",
    )


def test_mnist_small_vqvae_learns_and_uses_codes(tmp_path, mnist_dir):
    # Without restarts this config collapses to about 2% of the codes, EMA or not
    # (test_mnist_small_vqvae_without_restarts_collapses); restarting dead codes is what
    # keeps them in use.
    config = _small_mnist_vqvae(mnist_dir).replace(restart_dead_codes=20)
    summary = train(config, tmp_path / "run", **QUIET)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[-1]["test_reconstruction_loss"] < records[0]["test_reconstruction_loss"]
    assert summary.last_metrics["train_codes_used"] > 0.25


@pytest.mark.parametrize("ema", [True, False], ids=["ema", "learnable"])
def test_mnist_small_vqvae_without_restarts_collapses(tmp_path, mnist_dir, ema):
    # The claim docs/results.md makes: the configuration above without dead-code restarts
    # ends using about 2% of its 512 codes, with the EMA codebook or the learnable one
    # (measured: 8 and 15 codes, 1.6% and 2.9%, in the last epoch).
    config = _small_mnist_vqvae(mnist_dir).replace(ema=ema, restart_dead_codes=None)
    summary = train(config, tmp_path / "run", **QUIET)
    assert summary.last_metrics["train_codes_used"] < 0.05  # fewer than 26 of 512 codes


def test_download_flag_fetches_verified_files_from_a_mirror(tmp_path, mnist_dir, monkeypatch):
    """``download=True`` fetches the official MNIST files, checked against their SHA-256."""
    handler = functools.partial(_QuietHandler, directory=str(mnist_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENLATENT_MIRRORS", f"http://127.0.0.1:{server.server_address[1]}/")
    # The shared files hold the official pixels re-gzipped, so their own SHA256SUMS stand in
    # for the published checksums (the download tests check a wrong checksum is refused).
    sums = dict(
        reversed(line.split()) for line in (mnist_dir / "SHA256SUMS").read_text().splitlines()
    )
    official = remote.REMOTE_DATASETS["mnist"]
    local = dataclasses.replace(
        official,
        files=tuple(dataclasses.replace(f, sha256=sums[f.filename]) for f in official.files),
    )
    monkeypatch.setattr(remote, "REMOTE_DATASETS", {**remote.REMOTE_DATASETS, "mnist": local})
    try:
        config = SMALL_VAE.replace(
            dataset="mnist",
            data_dir=str(tmp_path / "data"),
            epochs=1,
            train_limit=200,
            test_limit=200,
        )
        with pytest.raises(FileNotFoundError):  # not there, and not allowed to fetch
            train(config, tmp_path / "refused", **QUIET)
        summary = train(config.replace(download=True), tmp_path / "run", **QUIET)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    fetched = sorted(p.name for p in (tmp_path / "data").rglob("*.gz"))
    assert fetched == sorted(p.name for p in mnist_dir.glob("*.gz"))
    assert summary.last_metrics["train_examples"] == 200


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_runs_on_user_datasets_record_custom_and_need_them_again(tmp_path):
    from genlatent.data import load_digits
    from genlatent.train import evaluate_run

    train_set, test_set = load_digits(split="train"), load_digits(split="test")
    config = SMALL_VAE.replace(dataset="mnist", epochs=1)
    train(config, tmp_path / "run", datasets=(train_set, test_set), **QUIET)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["trainer"]["dataset"] == "custom"
    with pytest.raises(ValueError, match=r"data passed to fit\(\) or train\(datasets=\.\.\.\)"):
        evaluate_run(tmp_path / "run")
    assert evaluate_run(tmp_path / "run", test_set=test_set)["num_examples"] == len(test_set)
    train(
        config.replace(dataset="custom", epochs=2),
        tmp_path / "run",
        resume=True,
        datasets=(train_set, test_set),
        **QUIET,
    )
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
