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


class _TwoGroups(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    def optimizer_groups(self):
        return {
            "first": _protocols.OptimizerGroup(self.first.parameters()),
            "second": _protocols.OptimizerGroup(self.second.parameters(), lr_factor=0.5),
        }

    def loss(self, x: torch.Tensor, *, group: str = "first") -> torch.Tensor:
        return getattr(self, group)(x).sum()


def test_optimizer_groups_are_read_in_declared_order() -> None:
    model = _TwoGroups()
    groups = _protocols.optimizer_groups(model)
    assert groups is not None
    assert list(groups) == ["first", "second"]
    assert groups["second"].lr_factor == 0.5
    assert [id(p) for p in groups["first"].parameters] == [id(p) for p in model.first.parameters()]
    assert isinstance(model, genlatent.MultiOptimizerModel)
    assert _protocols.optimizer_groups(torch.nn.Linear(2, 2)) is None


def test_optimizer_groups_refuse_a_shared_parameter_and_a_loss_without_group() -> None:
    model = _TwoGroups()
    model.optimizer_groups = lambda: {  # type: ignore[method-assign]
        "a": _protocols.OptimizerGroup(model.first.parameters()),
        "b": _protocols.OptimizerGroup([model.first.weight]),
    }
    with pytest.raises(ValueError, match=r"is in both 'a' and 'b'"):
        _protocols.optimizer_groups(model)

    class NoGroup(_TwoGroups):
        def loss(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return x.sum()

    with pytest.raises(TypeError, match=r"its loss does not take group="):
        _protocols.optimizer_groups(NoGroup())
    model.optimizer_groups = lambda: [1]  # type: ignore[method-assign]
    with pytest.raises(TypeError, match=r"mapping of names to OptimizerGroup, got list"):
        _protocols.optimizer_groups(model)
    model.optimizer_groups = dict  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"at least one group"):
        _protocols.optimizer_groups(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr_factor": 0.0}, r"lr_factor must be a float > 0, got 0.0"),
        ({"betas": (0.5, 1.0)}, r"betas must be two floats in \[0, 1\), got \(0.5, 1.0\)"),
        ({"start_step": -1}, r"start_step must be an int >= 0, got -1"),
    ],
)
def test_optimizer_group_checks_its_settings(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        _protocols.OptimizerGroup(torch.nn.Linear(1, 1).parameters(), **kwargs)
    with pytest.raises(ValueError, match=r"non-empty iterable of nn.Parameter, got 0 item"):
        _protocols.OptimizerGroup([])
