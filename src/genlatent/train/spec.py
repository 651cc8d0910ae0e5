"""Build a model from user code named by a spec: ``"path/file.py:func"`` or ``"pkg.mod:func"``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["build_from_spec"]


class ModelSpecError(ValueError):
    """A ``--model`` spec names no file, module or function, or builds no usable model."""


def _load_function(spec: str) -> Callable[..., Any]:
    target, _, name = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ModelSpecError(f"--model {spec}: no file {path}")
        module_name = f"_genlatent_user_{path.stem}_{abs(hash(path.resolve())):x}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ModelSpecError(f"--model {spec}: {path} cannot be imported as Python")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise ModelSpecError(
                f"--model {spec}: cannot import module {target!r}: {error}"
            ) from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelSpecError(f"--model {spec}: {target} has no function {name!r}")
    return function


def build_from_spec(
    spec: str, *, image_shape: tuple[int, ...], num_classes: int | None
) -> nn.Module:
    """Import the function a spec names and call it to build the model.

    The function is called with the keyword arguments it declares among ``image_shape``
    (one example's shape, e.g. ``(1, 28, 28)``) and ``num_classes`` (``None`` for
    unlabelled data); one that declares neither is called with no arguments.

    Raises:
        ModelSpecError: on a missing file, module or function, or a function that does not
            return an ``nn.Module`` with a ``loss`` method.
    """
    function = _load_function(spec)
    offered = {"image_shape": tuple(image_shape), "num_classes": num_classes}
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    model = function(**{k: v for k, v in offered.items() if k in parameters})
    if not isinstance(model, nn.Module):
        raise ModelSpecError(
            f"--model {spec}: the function returned {type(model).__name__}, not an nn.Module"
        )
    if not callable(getattr(model, "loss", None)):
        raise ModelSpecError(
            f"--model {spec}: {type(model).__name__} does not follow the model protocol: it has "
            "no loss(x) method (see docs/extending.md)"
        )
    return model
