"""module_device: the one way every layer reads a module's device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from genlatent._device import module_device


def test_device_of_parameters_buffers_and_nothing() -> None:
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")

    class BuffersOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("counts", torch.zeros(3, device="meta"))

    assert module_device(BuffersOnly()) == torch.device("meta")
    with pytest.raises(
        ValueError, match=r"cannot tell the device of Identity: it has no parameter"
    ):
        module_device(torch.nn.Identity())


def test_parameters_come_before_buffers() -> None:
    module = torch.nn.BatchNorm1d(2, device="meta")
    module.register_buffer("extra", torch.zeros(1))  # on the CPU, after the meta parameters
    assert module_device(module) == torch.device("meta")


SRC = Path(__file__).resolve().parents[1] / "src" / "genlatent"


def test_float64_is_made_on_the_cpu_only() -> None:
    # MPS has no float64: a tensor turned float64 must be on (or moved to) the CPU first,
    # and one made float64 must not be made on another device
    casts = re.compile(r"\.double\(\)|\.to\(torch\.float64\)")
    made = re.compile(r"dtype=torch\.float64")
    offending = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            found = casts.search(code)
            cast = found and "cpu" not in code[: found.start()]  # moved before the cast
            elsewhere = made.search(code) and "device=" in code and "cpu" not in code
            if cast or elsewhere:
                offending.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offending == [], "float64 off the CPU:\n" + "\n".join(offending)
