"""Each benchmark runs with ``--quick`` and writes JSON of the documented structure."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Benchmarks import as ``benchmarks.*`` from the repository root; one torch thread
    keeps the smoke runs fast on a busy machine, and the thread count is restored."""
    monkeypatch.syspath_prepend(str(_REPO))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _run(name: str, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    module: ModuleType = importlib.import_module(f"benchmarks.{name}")
    out = tmp_path / f"{name}.json"
    returned = module.main(["--quick", "--threads", "1", "--out", str(out), *extra])
    written = json.loads(out.read_text())
    assert written["benchmark"] == name
    assert written["quick"] is True
    assert written["environment"]["threads"] == 1
    assert written["environment"]["torch"] == torch.__version__
    return returned, written


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check_timing(entry: dict[str, Any]) -> None:
    assert _positive(entry["median_s"])
    assert entry["min_s"] <= entry["median_s"] <= entry["max_s"]
    assert all(_positive(s) for s in entry["samples_s"])


def test_vae_trainer_quick(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENLATENT_MNIST", str(mnist_dir))
    _, doc = _run("vae_trainer", tmp_path, "--no-pythae")
    assert _positive(doc["matmul"]["gflops"])
    assert doc["batch_size"] == 100
    assert doc["flops_per_image"] == 6_496_000
    assert set(doc["results"]) == {"genlatent", "tutorial"}
    for entry in doc["results"].values():
        _check_timing(entry)
        assert _positive(entry["images_per_s"])
        assert _positive(entry["fraction_of_peak"])
    assert doc["results"]["tutorial"]["speedup_vs_tutorial"] == 1.0


def test_quantizer_quick(tmp_path: Path) -> None:
    # the peak-memory subprocesses are left out here (a torch import each); rss_growth,
    # which they run, is tested below
    _, doc = _run("quantizer", tmp_path, "--no-memory")
    [case] = doc["cases"]
    assert case["codebook_size"] == 512
    for name in ("genlatent", "minimal"):
        _check_timing(case[name])
        assert "peak_memory_bytes" not in case[name]
    assert case["genlatent"]["speedup_of_genlatent"] == 1.0


def test_rss_growth_sees_a_fresh_allocation() -> None:
    from benchmarks._common import rss_growth

    size = 64 * 2**20
    kept: list[torch.Tensor] = []
    growth = rss_growth(lambda: kept.append(torch.ones(size // 4)))  # touches every page
    assert growth >= 0.9 * size
    assert rss_growth(lambda: None) < size / 4


def test_import_time_quick(tmp_path: Path) -> None:
    _, doc = _run("import_time", tmp_path)
    [seconds] = doc["importtime_s"]["samples_s"]
    assert 0 < seconds < 10


def test_vqvae_step_quick(tmp_path: Path) -> None:
    _, doc = _run("vqvae_step", tmp_path)
    assert _positive(doc["peak_gflops"])
    results = doc["results"]
    for name in ("reference NCHW", "reference channels_last", "reduced NCHW", "matmul peak"):
        _check_timing(results[name])
        assert _positive(results[name]["flops"])
        assert _positive(results[name]["gflops"])
    assert _positive(results["reference channels_last speedup"])
    # a step at 16 hidden channels does more work than one at 8
    assert results["reference NCHW"]["flops"] > results["reduced NCHW"]["flops"]


def test_scaling_quick(tmp_path: Path) -> None:
    _, doc = _run("scaling", tmp_path, "--no-memory")
    assert set(doc["sweeps"]) == {"batch_size", "codebook_size", "grid"}
    for sweep in doc["sweeps"].values():
        assert math.isfinite(sweep["slope"])
        for point in sweep["points"]:
            _check_timing(point)
            assert point["rows"] == point["batch_size"] * point["grid"][0] * point["grid"][1]
            assert _positive(point["ns_per_row"])
    codebook_sizes = [p["codebook_size"] for p in doc["sweeps"]["codebook_size"]["points"]]
    assert codebook_sizes[0] == 1
    assert max(codebook_sizes) > 4096  # past one chunk: the chunked search ran


def test_iwae_quick(tmp_path: Path) -> None:
    _, doc = _run("iwae", tmp_path)
    evaluation = doc["evaluation"]
    # the same noise gives the same bound as the plain estimator (float32 rounding only)
    assert evaluation["max_abs_difference_nats"] < 1e-3
    for name in ("genlatent iwae_bound", "plain reimplementation", "decoder alone"):
        assert evaluation[name]["median_s"] > 0
    assert set(doc["training_step"]) >= {"k", "batch", "genlatent", "plain"}


def test_discriminator_share_quick(tmp_path: Path) -> None:
    _, doc = _run("discriminator_share", tmp_path)
    results = doc["results"]
    plain, through_fit = "tokenizer step, written plainly", "tokenizer step, fit's loop"
    names = ("generator (pixel loss)", "generator (+ adversarial)", "discriminator", plain,
             through_fit)  # fmt: skip
    assert set(results) == set(names)
    for name in names:
        _check_timing(results[name])
    generator = results["generator (+ adversarial)"]["median_s"]
    discriminator = results["discriminator"]["median_s"]
    assert doc["discriminator_share"] == discriminator / (generator + discriminator)
    assert 0 < doc["discriminator_share"] < 1
    assert doc["adversarial_generator_overhead"] == (
        generator / results["generator (pixel loss)"]["median_s"]
    )
    assert doc["fit_step_overhead"] == (
        results[through_fit]["median_s"] / results[plain]["median_s"]
    )


def test_iwae_eval_quick(tmp_path: Path) -> None:
    _, doc = _run("iwae_eval", tmp_path)
    assert doc["decoder_rows"] == doc["k"] * doc["images"]
    for name in ("genlatent eval path (evaluate_run)", "decoder alone (the limit)"):
        assert doc[name]["median_s"] > 0
    assert doc["decoder alone (the limit)"]["time_over_decoder"] == 1.0


def test_data_quick(tmp_path: Path) -> None:
    # the training runs' memory subprocesses are left out (two training runs)
    _, doc = _run("data", tmp_path, "--no-memory", "--workers", "0")
    assert (doc["images"], doc["size"], doc["batch_size"]) == (128, 128, 64)
    assert "memory" not in doc
    for name in ("genlatent_workers0", "genlatent_float_workers0"):
        entry = doc["results"][name]
        _check_timing(entry)
        # images per second is the folder's size over the median pass
        assert entry["images_per_s"] == pytest.approx(128 / entry["median_s"])
