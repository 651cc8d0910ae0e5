"""Build from user code named by a spec: ``"path/file.py:func"`` or ``"pkg.mod:func"``.

A run records a file spec by its absolute path and keeps a copy of the file in
``RUN_DIR/source/``, so the run can be rebuilt from any directory, and after the file or the
run directory moved: when the recorded file is gone, the copy is loaded, and the log says so.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from genlatent._options import parameter_options
from genlatent.errors import ModelSpecError

__all__ = ["ModelSpecError", "absolute_spec", "build_from_spec", "load_function", "save_source"]

SOURCE_DIR = "source"
"""The folder of a run directory that holds copies of the user's files its specs name."""


def is_file_spec(spec: str) -> bool:
    """Whether ``spec`` names a file (``path/file.py:func``) rather than a module."""
    target = spec.rpartition(":")[0]
    return target.endswith(".py") or "/" in target or "\\" in target


def absolute_spec(spec: str) -> str:
    """``spec`` with its file made absolute (a module spec is returned as it is).

    Example:
        >>> import os
        >>> absolute_spec("pkg.mod:build")
        'pkg.mod:build'
        >>> absolute_spec("m.py:build") == os.path.abspath("m.py") + ":build"
        True
    """
    if not is_file_spec(spec):
        return spec
    target, _, name = spec.rpartition(":")
    return f"{Path(target).expanduser().resolve()}:{name}"


def save_source(spec: str, run_dir: Path) -> Path | None:
    """Copy the file a spec names into ``run_dir/source/``; return the copy (None for a module)."""
    if not is_file_spec(spec):
        return None
    path = Path(spec.rpartition(":")[0])
    folder = run_dir / SOURCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    shutil.copyfile(path, copy)
    return copy


def _import_file(path: Path, spec: str, option: str) -> Any:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"_genlatent_user_{path.stem}_{digest}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ModelSpecError(f"{option} {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    loader_spec.loader.exec_module(module)
    return module


def load_function(
    spec: str,
    *,
    option: str = "--model",
    source_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Callable[..., Any]:
    """Import the function a spec names.

    Args:
        spec: ``"path/file.py:func"`` or ``"package.module:func"``.
        option: how to name the spec in messages.
        source_dir: a run's ``source/`` folder: when the file is gone, its copy there is
            loaded instead (``log`` hears of it).
        log: where the note about a copy goes.

    Raises:
        ModelSpecError: on a missing file, module or function.
    """
    target, _, name = spec.rpartition(":")
    if is_file_spec(spec):
        path = Path(target)
        copy = None if source_dir is None else source_dir / path.name
        if not path.is_file() and copy is not None and copy.is_file():
            if log is not None:
                log(f"{path} is gone: loading the copy saved with the run, {copy}")
            path = copy
        if not path.is_file():
            raise ModelSpecError(f"{option} {spec}: no file {path}")
        module = _import_file(path, spec, option)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise ModelSpecError(
                f"{option} {spec}: cannot import module {target!r}: {error}"
            ) from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelSpecError(f"{option} {spec}: {target} has no function {name!r}")
    return function


def parse_arguments(function: Callable[..., Any], pairs: list[str], spec: str) -> dict[str, Any]:
    """``name=value`` pairs as keyword arguments of ``function``, typed by its annotations.

    Raises:
        ModelSpecError: on a pair that is not ``name=value``, or a name the function does
            not take (naming those it does).
        ValueError: on a value of the wrong type.

    Example:
        >>> def build(image_shape, *, latent_dim: int = 8, hidden: tuple[int, ...] = (64,)):
        ...     ...
        >>> parse_arguments(build, ["latent_dim=16", "hidden=32,32"], "m.py:build")
        {'latent_dim': 16, 'hidden': (32, 32)}
    """
    options = parameter_options(function, skip=("image_shape", "num_classes"))
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals:
            raise ModelSpecError(f"--model-arg must be NAME=VALUE, got {pair!r}")
        if name not in options:
            takes = ", ".join(options) or "no arguments with defaults"
            raise ModelSpecError(
                f"--model-arg {name}: {spec} does not take {name!r} (it takes {takes})"
            )
        arguments[name] = options[name].parse(text)
    return arguments


def build_from_spec(
    spec: str,
    *,
    image_shape: tuple[int, ...],
    num_classes: int | None,
    arguments: Mapping[str, Any] | None = None,
    source_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """Import the function a spec names and call it to build the model.

    The function is called with the keyword arguments it declares among ``image_shape``
    (one example's shape, e.g. ``(1, 28, 28)``) and ``num_classes`` (``None`` for
    unlabelled data), and with ``arguments`` (the ``--model-arg`` values).

    Raises:
        ModelSpecError: on a missing file, module or function, an argument the function
            does not take, or a function that does not return an ``nn.Module`` with a
            ``loss`` method.
    """
    function = load_function(spec, source_dir=source_dir, log=log)
    offered = {"image_shape": tuple(image_shape), "num_classes": num_classes}
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    given = dict(arguments or {})
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        raise ModelSpecError(f"--model {spec}: the function does not take {', '.join(unknown)}")
    model = function(**{k: v for k, v in offered.items() if k in parameters}, **given)
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
