"""Per-example averages: one accumulator and one dtype rule for every device."""

from __future__ import annotations

import pytest
import torch

from genlatent._sums import ExampleSums, accumulator_dtype


def test_float64_on_the_cpu_only() -> None:
    assert accumulator_dtype("cpu") == torch.float64
    for device in ("cuda", "mps", "meta"):  # MPS has no float64 at all
        assert accumulator_dtype(device) == torch.float32


def test_sums_stay_on_a_device_without_float64() -> None:
    sums = ExampleSums("meta")  # stands for MPS: a float64 total here would be the bug
    sums.add({"loss": torch.ones((), device="meta")}, examples=2)
    names, packed = sums.packed()
    assert names == ["loss"]
    assert packed.dtype == torch.float32
    assert packed.device.type == "meta"


def test_means_weight_batches_by_their_size() -> None:
    sums = ExampleSums("cpu")
    sums.add({"loss": torch.tensor(1.0), "kl": torch.tensor(3.0)}, examples=3)
    sums.add_sums({"loss": torch.tensor(5.0), "kl": torch.tensor(1.0)}, 1)
    assert sums.examples == 4
    assert sums.means() == pytest.approx({"loss": 2.0, "kl": 2.5})
    assert list(sums.means()) == ["loss", "kl"]  # first added first
