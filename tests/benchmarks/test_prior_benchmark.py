"""benchmarks/prior.py runs with ``--quick`` and writes JSON of the documented structure."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest
import torch

_REPO = Path(__file__).resolve().parents[2]


def _check_timing(entry: dict) -> None:
    assert all(math.isfinite(s) and s > 0 for s in entry["samples_s"])
    assert entry["min_s"] <= entry["median_s"] <= entry["max_s"]


def test_prior_benchmark_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_REPO))
    threads = torch.get_num_threads()
    module = importlib.import_module("benchmarks.prior")
    out = tmp_path / "prior.json"
    try:
        returned = module.main(["--quick", "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "prior"
    assert doc["quick"] is True
    assert doc["environment"]["threads"] == 1
    assert doc["sampling"] == json.loads(json.dumps(returned["sampling"]))
    for case in doc["sampling"]:
        _check_timing(case["cached"])
        _check_timing(case["uncached"])
        ratio = case["uncached"]["median_s"] / case["cached"]["median_s"]
        assert case["speedup_of_cache"] == pytest.approx(ratio)
    for name in ("TransformerPrior", "PixelCNNPrior"):
        _check_timing(doc["training_step"][name])
    parallel = doc["parallel_sampling"]
    reference = parallel["TransformerPrior (cached)"]["median_s"]
    for steps, speedup in parallel["speedup_over_cached_transformer"].items():
        entry = parallel[f"MaskGITPrior, {steps} steps"]
        _check_timing(entry)
        assert speedup == pytest.approx(reference / entry["median_s"])
