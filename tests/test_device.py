"""module_device: the one way every layer reads a module's device."""

from __future__ import annotations

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
