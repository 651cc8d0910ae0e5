"""Constructor arguments to JSON and back, for `genlatent.pretrained`'s ``config.json``.

A value is one of (the schema, format version 1):

- a JSON scalar: ``null``, ``true``/``false``, an int, a finite float, a string;
- an array: a Python tuple or list, rebuilt as a tuple;
- ``{"dict": {...}}``: a dict with str keys;
- ``{"dtype": "float32"}``: a ``torch.dtype``;
- ``{"type": "torch.nn.Tanh"}``: an ``nn.Module`` subclass (the class, not an instance);
- ``{"class": "genlatent.MLPEncoder", "arguments": {...}}``: a module that inherits
  `PretrainedMixin`, rebuilt by calling the class with the decoded arguments.

Classes are named by their shortest dotted path (``genlatent.VAE``, not
``genlatent.models.vae.VAE``). Only ``nn.Module`` subclasses are ever looked up, and only
`PretrainedMixin` subclasses are ever called; a module outside ``genlatent`` and ``torch``
is looked up only once it is imported (the config never imports user code). Nothing here
imports ``genlatent.nn`` or ``genlatent.models``: it is below them.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from typing import Any

import torch
from torch import nn

__all__ = ["construct", "decode_value", "dotted_name", "encode_value", "resolve_class"]

_TAGS = ("class", "type", "dtype", "dict")
_IMPORTABLE_ROOTS = ("genlatent", "torch")
_EXPECTED = (
    "a JSON value (None, bool, int, finite float, str, or a list, tuple or str-keyed dict "
    "of them), a torch.dtype, an nn.Module class, or a module that inherits "
    "genlatent.PretrainedMixin"
)


def dotted_name(cls: type, *, owner: str, argument: str) -> str:
    """The shortest dotted path under which ``cls`` can be found by name.

    ``genlatent.models.vae.VAE`` is also ``genlatent.VAE``: the shorter path survives a
    move of the class between private modules. Only modules already imported are read.

    Raises:
        TypeError: if ``cls`` is defined inside a function (no path finds it).
    """
    if "<locals>" in cls.__qualname__:
        raise TypeError(
            f"{owner} argument {argument!r}: {cls.__qualname__} is defined inside a "
            "function, so config.json cannot name it; define it at the top of a module"
        )
    parts = cls.__module__.split(".")
    for end in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:end]))
        if "." not in cls.__qualname__ and getattr(package, cls.__qualname__, None) is cls:
            return f"{'.'.join(parts[:end])}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    if inspect.isroutine(value):
        return f"the function {getattr(value, '__module__', None)}.{value.__qualname__}"
    if isinstance(value, nn.Module):
        return f"{type(value).__name__}, an nn.Module that does not inherit PretrainedMixin"
    if isinstance(value, float):
        return repr(value)
    return f"{type(value).__module__}.{type(value).__qualname__}"


def encode_value(value: object, *, owner: str, argument: str) -> Any:
    """One argument as JSON (see the module docstring), modules through their own arguments.

    Args:
        value: the argument.
        owner: the class whose constructor took it, for error messages.
        argument: its name (a dotted path inside nested modules), for error messages.

    Raises:
        TypeError: on anything the schema cannot hold, naming ``owner``, ``argument``,
            what was expected and what came.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (tuple, list)):
        return [
            encode_value(v, owner=owner, argument=f"{argument}[{i}]") for i, v in enumerate(value)
        ]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {
            "dict": {
                k: encode_value(v, owner=owner, argument=f"{argument}.{k}")
                for k, v in value.items()
            }
        }
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, type) and issubclass(value, nn.Module):
        return {"type": dotted_name(value, owner=owner, argument=argument)}
    encode = getattr(value, "_pretrained_config", None)
    if isinstance(value, nn.Module) and callable(encode):
        return encode()
    raise TypeError(
        f"{owner} argument {argument!r} must be {_EXPECTED} to be saved in config.json, "
        f"got {_describe(value)}"
    )


def _module(module_name: str) -> object:
    """The module ``module_name`` if imported, or importable from genlatent or torch; else None."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    if module_name.split(".")[0] not in _IMPORTABLE_ROOTS:
        return None
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None


def resolve_class(name: object) -> type[nn.Module]:
    """The ``nn.Module`` class a dotted ``name`` from a config names.

    Reads the longest module prefix of ``name`` that is imported (or, inside genlatent and
    torch, importable), then the rest as attributes. Never calls what it finds.

    Raises:
        ValueError: if ``name`` is not a dotted string, or names nothing (a module outside
            genlatent and torch must be imported first).
        TypeError: if what it names is not an ``nn.Module`` class.
    """
    if not isinstance(name, str) or "." not in name:
        raise ValueError(
            f"a class in config.json must be a dotted name such as 'genlatent.VAE', got {name!r}"
        )
    parts = name.split(".")
    found: object = None
    for end in range(len(parts) - 1, 0, -1):
        found = _module(".".join(parts[:end]))
        if found is not None:
            for attribute in parts[end:]:
                found = getattr(found, attribute, None)
            break
    if found is None:
        hint = ""
        if parts[0] not in _IMPORTABLE_ROOTS:
            hint = (
                ": if it is defined in your code, import its module first (a config "
                "imports only genlatent and torch modules by itself, so that reading one "
                "never runs other code)"
            )
        raise ValueError(f"config.json names {name!r}, which was not found{hint}")
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise TypeError(
            f"config.json names {name!r}, which is not an nn.Module class: refused (a "
            f"config may only name nn.Module classes), got {_describe(found)}"
        )
    return found


def decode_value(value: Any, *, mixin: type) -> Any:
    """One argument from JSON; ``{"class": ...}`` objects are built (``mixin`` subclasses only).

    Raises:
        ValueError: on an object with no known tag, or an unknown dtype or class.
        TypeError: on a class that is not an ``nn.Module`` (and, to be called, ``mixin``).
    """
    if isinstance(value, list):
        return tuple(decode_value(v, mixin=mixin) for v in value)
    if not isinstance(value, dict):
        return value
    tags = [tag for tag in _TAGS if tag in value]
    if len(tags) != 1:
        raise ValueError(
            f"an object in config.json must have one of the keys {_TAGS}, got keys {sorted(value)}"
        )
    tag = tags[0]
    if tag == "dict":
        return {k: decode_value(v, mixin=mixin) for k, v in value["dict"].items()}
    if tag == "dtype":
        dtype = getattr(torch, str(value["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"config.json names an unknown torch dtype {value['dtype']!r}")
        return dtype
    if tag == "type":
        return resolve_class(value["type"])
    cls = buildable(resolve_class(value["class"]), mixin, "config.json")
    arguments = config_arguments(value, f"{value['class']!r} in config.json")
    return construct(cls, {k: decode_value(v, mixin=mixin) for k, v in arguments.items()})


def buildable(cls: type[nn.Module], mixin: type, where: str) -> type[nn.Module]:
    """``cls`` if a config may build it (a ``mixin`` subclass), else a `TypeError`."""
    if not issubclass(cls, mixin):
        raise TypeError(
            f"{where} names {cls.__module__}.{cls.__qualname__}, which does not inherit "
            "genlatent.PretrainedMixin: refused (a config may only build PretrainedMixin modules)"
        )
    return cls


def config_arguments(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``arguments`` object of a config entry (``{}`` if absent), checked to be one."""
    arguments = entry.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ValueError(f"the arguments of {where} must be an object, got {arguments!r}")
    return arguments


def construct(cls: type, arguments: dict[str, Any]) -> Any:
    """Call ``cls`` with ``arguments`` by name (``*args`` from a tuple, extras as ``**kwargs``).

    Raises:
        ValueError: on an argument that ``cls`` does not take.
    """
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    remaining = dict(arguments)
    parameters = list(inspect.signature(cls).parameters.values())
    takes_extra = any(p.kind is p.VAR_KEYWORD for p in parameters)
    has_varargs = bool(
        remaining.get(next((p.name for p in parameters if p.kind is p.VAR_POSITIONAL), ""))
    )
    for parameter in parameters:
        if parameter.name not in remaining or parameter.kind is parameter.VAR_KEYWORD:
            continue
        given = remaining.pop(parameter.name)
        if parameter.kind is parameter.VAR_POSITIONAL:
            positional.extend(given)
        elif parameter.kind is parameter.POSITIONAL_ONLY or (
            has_varargs and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        ):
            positional.append(given)
        else:
            keywords[parameter.name] = given
    if remaining and not takes_extra:
        raise ValueError(
            f"config.json gives {cls.__qualname__} the arguments {sorted(remaining)}, "
            "which its constructor does not take"
        )
    return cls(*positional, **keywords, **remaining)
