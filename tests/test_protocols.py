"""The protocols on the ground floor, their public names, and the deprecated old module."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

import genlatent
import genlatent.nn
from genlatent import _protocols


def test_protocols_are_public_where_they_were() -> None:
    assert genlatent.nn.Quantizer is _protocols.Quantizer
    assert genlatent.nn.QuantizerOutput is _protocols.QuantizerOutput
    assert genlatent.Quantizer is _protocols.Quantizer
    assert genlatent.Model is _protocols.Model


def test_model_protocol_is_found_by_method() -> None:
    class Mine(torch.nn.Module):
        def loss(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    assert isinstance(Mine(), genlatent.Model)
    assert not isinstance(torch.nn.Linear(2, 2), genlatent.Model)


def test_old_protocol_module_still_works_and_warns() -> None:
    sys.modules.pop("genlatent.models.protocol", None)
    with pytest.warns(DeprecationWarning, match=r"genlatent\.models\.protocol is deprecated"):
        old = importlib.import_module("genlatent.models.protocol")
    assert old.loss_parts is _protocols.loss_parts
    assert old.declared_keywords is _protocols.declared_keywords
    assert old.LossParts is _protocols.LossParts
    assert old.Model is _protocols.Model
    sys.modules.pop("genlatent.models.protocol", None)
