"""The tutorials' scripts (``examples/*.py``) run in their small configuration and do what
their pages (``docs/tutorials/*.md``) say: losses fall, shapes hold, files appear, and the
importance-weighted bound is tighter than the ELBO."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import pickle
import re
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from genlatent import VQVAE, VectorQuantizer
from genlatent.metrics import Evaluation, VAEEvaluation

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TUTORIALS = ROOT / "docs" / "tutorials"
# Every script in examples/ and the test below that runs it.
TESTED = {
    "custom_conv_vae.py": "test_custom_conv_vae",
    "cifar10_vqvae.py": "test_cifar10_vqvae",
    "own_images.py": "test_own_images",
    "evaluate_iwae.py": "test_evaluate_iwae",
    "custom_loop.py": "test_custom_loop",
    "lightning_vae.py": "test_lightning_vae",
    "conditional_vae.py": "test_conditional_vae",
}
NO_TEST = "<!-- no-test -->"
# -log p(x) of 64 pixels under Bernoulli(1/2), what an untrained decoder's zero logits give
DIGITS_CHANCE_NATS = 64 * math.log(2)


def _example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (registered, as dataclasses need)."""
    module_name = f"genlatent_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_example_is_tested_and_shown_in_a_tutorial() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(TESTED), f"examples/ holds {scripts}; update TESTED"
    defined = {name for name in globals() if name.startswith("test_")}
    assert set(TESTED.values()) <= defined
    included = set()
    for page in TUTORIALS.glob("*.md"):
        included.update(re.findall(r'--8<-- "examples/([\w.]+?)(?::\w+)?"', page.read_text()))
    missing = sorted(set(scripts) - included)
    assert not missing, f"no page in docs/tutorials/ includes {missing}"


def _page_examples() -> list[tuple[str, str]]:
    """``(where, code)`` for each ```python block of the tutorials that is not an included
    script (those run below) and not marked ``<!-- no-test -->`` (downloads)."""
    found = []
    fence = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
    for page in sorted(TUTORIALS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in fence.finditer(text):
            before = text[: match.start()].rstrip().splitlines()
            if "--8<--" in match.group(1) or (before and before[-1].strip() == NO_TEST):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.name}:{line}", match.group(1)))
    return found


_PAGE_EXAMPLES = _page_examples()


@pytest.mark.parametrize(
    ("where", "code"), _PAGE_EXAMPLES, ids=[where for where, _ in _PAGE_EXAMPLES]
)
def test_page_example_runs(where: str, code: str) -> None:
    exec(compile(code, where, "exec"), {"__name__": f"tutorial_{where}"})


def test_page_examples_are_found() -> None:
    pages = {where.split(":")[0] for where, _ in _PAGE_EXAMPLES}
    assert {"own-images.md", "cifar10-vqvae.md"} <= pages


def test_custom_conv_vae() -> None:
    example = _example("custom_conv_vae")
    result = example.main(["--small"])
    losses = result.train_losses
    assert len(losses) == 3
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]  # training lowered the negative ELBO
    assert result.test.num_examples == 297  # the digits' test split
    assert result.test.negative_elbo < DIGITS_CHANCE_NATS
    model = result.model.eval()
    x = torch.rand(5, 1, 8, 8)
    mean, log_var = model.encode(x)
    assert mean.shape == log_var.shape == (5, 8)  # (B, latent_dim) from the Gaussian head
    assert model(x).decoder_output.shape == x.shape
    samples = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 8, 8)
    assert bool(((samples >= 0) & (samples <= 1)).all())
    with pytest.raises(ValueError, match="divisible by 4"):
        example.build_conv_vae((1, 10, 10))


def _cifar10_batch(generator: np.random.Generator, count: int) -> bytes:
    # As the official files: a pickled dict, b"data" a (N, 3072) uint8 array of R, G, B
    # planes, b"labels" a list of ints.
    data = generator.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8)
    labels = [int(label) for label in generator.integers(0, 10, count)]
    payload = {b"batch_label": b"tiny", b"labels": labels, b"data": data, b"filenames": []}
    return pickle.dumps(payload, protocol=2)


def _write_cifar10(root: Path, per_batch: int) -> Path:
    """A tiny ``cifar-10-python.tar.gz`` in the official layout: 5 train batches and a test one."""
    generator = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name in names:
            blob = _cifar10_batch(generator, per_batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return root


def test_cifar10_vqvae(tmp_path: Path) -> None:
    data_dir = _write_cifar10(tmp_path / "data", per_batch=8)  # 40 train, 8 test images
    run_dir = tmp_path / "run"
    result = _example("cifar10_vqvae").main(
        ["--data-dir", str(data_dir), "--out", str(run_dir), "--small"]
    )
    for name in ("config.json", "metrics.jsonl", "reconstructions.png", "samples.png"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert json.loads((run_dir / "config.json").read_text())["trainer"]["dataset"] == "cifar10"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert lines[0]["train_examples"] == 32  # train_limit
    model = result.summary.model
    assert isinstance(model, VQVAE)
    assert model.quantizer.codebook_size == 32
    test = result.test
    assert isinstance(test, Evaluation)
    assert test.num_examples == 8
    assert int(test.counts.sum()) == 8 * 8 * 8  # 8 images, an 8x8 grid of codes each
    assert 0 < test.fraction_used <= 1
    # the same weights on the same test images as the trainer's last evaluation
    assert test.mse == pytest.approx(lines[-1]["test_reconstruction_loss"], rel=1e-4)
    for name in ("loss", "reconstruction_loss", "quantizer_loss", "codebook", "commitment"):
        assert test.terms[name] == pytest.approx(lines[-1][f"test_{name}"], rel=1e-4), name


def _write_image_folder(root: Path, per_class: int) -> Path:
    """Two classes of 20x20 RGB stripes, saved as PNG files in one sub-folder each."""
    for name, horizontal in (("stripes-h", True), ("stripes-v", False)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            ramp = (torch.arange(20) + i) % 4 < 2
            mask = ramp[:, None].expand(20, 20) if horizontal else ramp[None, :].expand(20, 20)
            value = mask.to(torch.uint8) * 255
            pixels = torch.stack([value, value // 2, 255 - value], dim=-1)  # (H, W, 3)
            Image.fromarray(pixels.numpy()).save(root / name / f"{i:02d}.png")
    return root


def test_own_images(tmp_path: Path) -> None:
    folder = _write_image_folder(tmp_path / "images", per_class=12)
    example = _example("own_images")
    run_dir = tmp_path / "run"
    result = example.main(
        ["--images", str(folder), "--size", "16", "--out", str(run_dir), "--small"]
    )
    assert result.classes == ["stripes-h", "stripes-v"]
    assert len(result.train_set) + len(result.test_set) == 24
    assert len(result.test_set) == 2  # 10% of 24, rounded
    assert result.train_set.images.dtype == torch.uint8
    assert result.train_set.image_shape == (3, 16, 16)
    assert set(result.train_set.labels.tolist()) == {0, 1}
    assert (run_dir / "samples.png").is_file()
    assert (run_dir / "reconstructions.png").is_file()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert isinstance(result.test, VAEEvaluation)
    assert result.test.num_examples == 2
    assert result.test.values_per_example == 3 * 16 * 16

    grey = example.main(
        ["--images", str(folder), "--size", "16", "--grey", "--model", "vqvae", "--small",
         "--out", str(tmp_path / "run-vq")]
    )  # fmt: skip
    assert grey.train_set.image_shape == (1, 16, 16)
    assert isinstance(grey.test, Evaluation)
    assert int(grey.test.counts.sum()) == 2 * 4 * 4  # 2 test images, a 4x4 grid of codes

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        example.load_image_folder(tmp_path / "empty", size=16)


def test_evaluate_iwae(tmp_path: Path) -> None:
    result = _example("evaluate_iwae").main(["--small", "--out", str(tmp_path / "run")])
    evaluation = result.evaluation
    assert evaluation.iwae_samples == 64
    assert evaluation.num_examples == 100  # test_limit
    assert evaluation.negative_elbo < DIGITS_CHANCE_NATS  # it learned something
    # -L_64 is a tighter upper bound on -log p(x) than the negative ELBO
    assert evaluation.iwae_nll is not None
    assert evaluation.iwae_nll <= evaluation.negative_elbo
    assert evaluation.iwae_bits_per_dim == pytest.approx(evaluation.iwae_nll / (64 * math.log(2)))
    by_k = result.nll_by_k
    assert list(by_k) == [1, 10, 64]
    # the bound tightens as k grows: E[-L_k] is non-increasing in k; two 100-image means
    # of -L_k also carry Monte Carlo noise, hence the 0.05-nat allowance for close k
    assert by_k[1] > by_k[10]
    assert by_k[64] <= by_k[10] + 0.05


def test_custom_loop() -> None:
    result = _example("custom_loop").main(["--small"])
    assert result.vae_test_losses[-1] < result.vae_test_losses[0] < DIGITS_CHANCE_NATS
    run = result.vqvae
    assert run.test_mse[-1] < run.test_mse[0]
    assert run.perplexities[-1] > 5  # dead-code restarts keep many codes in use
    assert isinstance(run.quantizer, VectorQuantizer)
    assert run.quantizer.ema
    parameters = {id(p) for p in run.quantizer.parameters()}
    assert id(run.quantizer.codebook) not in parameters  # EMA: a buffer, not learned


@pytest.mark.filterwarnings(
    # Lightning 2.6 itself calls a pytree API that torch 2.13 deprecates; not ours to fix.
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
def test_lightning_vae(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # Lightning writes under the working directory
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # seed_everything sets it; undone afterwards
    metrics = _example("lightning_vae").main(["--small"])
    assert set(metrics) >= {"train_loss", "train_kl", "val_loss"}
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["val_loss"] < DIGITS_CHANCE_NATS - 5  # well below an untrained decoder


def test_conditional_vae(tmp_path: Path) -> None:
    example = _example("conditional_vae")
    run_dir = tmp_path / "run"
    last = example.main(["--out", str(run_dir), "--epochs", "3"])
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert last == lines[-1]
    # every field of the model's loss is logged by its name, train and test
    for key in ("loss", "reconstruction", "kl"):
        assert f"train_{key}" in last, key
        assert f"test_{key}" in last, key
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert last["test_loss"] < DIGITS_CHANCE_NATS
    assert last["train_examples"] == 1500  # the digits' training split, labels passed
    # samples: one row of 8 per class (10 digits), 8x8 cells scaled 8x with 2-pixel padding
    with Image.open(run_dir / "samples.png") as picture:
        assert picture.size == ((8 * 10 + 2) * 8, (10 * 10 + 2) * 8)
    assert (run_dir / "reconstructions.png").is_file()
    resumed = example.main(["--out", str(run_dir), "--epochs", "4", "--resume"])
    assert resumed["epoch"] == 4
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 4
