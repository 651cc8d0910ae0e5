"""Options described once, where they are defined: a dataclass's fields or a builder's parameters.

An `Option` is read from the definition itself: its name, its default, its type (from the
annotation: ``int``, ``float``, ``str``, ``bool``, ``X | None``, ``tuple[int, ...]`` written
as ``8,5,5``, or a ``Literal`` of choices) and its help (the field's docstring, or the
``Args:`` entry of the builder's docstring). The trainer's settings, the objective's options,
the presets' architecture and the quantizers' options are all read this way, so the command
line's flags, their help, their types and what each applies to are never written twice.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Option", "dataclass_options", "parameter_options", "parse_value"]

_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One option: how to read it from text, its default, its help and who takes it."""

    name: str
    """The Python name, e.g. ``codebook_size`` (the flag is ``--codebook-size``)."""
    kind: type
    """``int``, ``float``, ``str``, ``bool`` or ``tuple`` (of ints, written ``8,5,5``)."""
    default: Any
    """The default value, or `inspect.Parameter.empty` where the option has none."""
    help: str
    """One paragraph of help, from the docstring that defines the option."""
    choices: tuple[Any, ...] | None = None
    """The allowed values of a ``Literal`` annotation."""
    optional: bool = False
    """Whether ``None`` is allowed (an ``X | None`` annotation)."""

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--codebook-size``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """The value written as ``text`` on a command line (see `parse_value`)."""
        return parse_value(self, text)


def parse_value(option: Option, text: str) -> Any:
    """Read ``text`` as a value of ``option``.

    Raises:
        ValueError: naming the option, what it takes and what came.

    Example:
        >>> parse_value(Option("levels", tuple, (8, 5), "FSQ levels"), "8,5,5")
        (8, 5, 5)
    """
    if option.optional and text.strip().lower() == "none":
        return None
    try:
        if option.kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value: Any = lowered in ("true", "1", "yes")
        elif option.kind is tuple:
            value = tuple(int(part) for part in text.split(","))
        else:
            value = option.kind(text)
    except ValueError:
        expected = "ints separated by commas" if option.kind is tuple else option.kind.__name__
        raise ValueError(f"{option.name} takes {expected}, got {text!r}") from None
    if option.choices is not None and value not in option.choices:
        raise ValueError(f"{option.name} must be one of {option.choices}, got {value!r}")
    return value


def _kind(annotation: Any) -> tuple[type, tuple[Any, ...] | None, bool]:
    """``(kind, choices, optional)`` of a resolved annotation."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else str
        origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), choices, optional
    if origin is tuple or annotation is tuple:
        return tuple, None, optional
    if annotation in (int, float, str, bool):
        return annotation, None, optional
    return str, None, optional


def _first_paragraph(text: str | None) -> str:
    return " ".join(textwrap.dedent(text or "").strip().split("\n\n")[0].split())


def _field_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of a class, read from its source (as griffe does)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source shipped: options keep no help
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = _first_paragraph(after.value.value)
    return docs


def dataclass_options(cls: type) -> dict[str, Option]:
    """The fields of a dataclass as options, helped by their docstrings.

    Example:
        >>> from genlatent.train.config import TrainerSettings
        >>> dataclass_options(TrainerSettings)["batch_size"].help
        'Examples per batch (an optimizer step takes --grad-accumulation batches).'
    """
    hints = typing.get_type_hints(cls)
    docs = _field_docstrings(cls)
    options = {}
    for field in dataclasses.fields(cls):
        kind, choices, optional = _kind(hints[field.name])
        choices = field.metadata.get("choices", choices)
        options[field.name] = Option(
            field.name, kind, field.default, docs.get(field.name, ""), choices, optional
        )
    return options


def _args_section(doc: str | None) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring, one paragraph each."""
    entries: dict[str, list[str]] = {}
    current = None
    inside = False
    for line in textwrap.dedent(doc or "").splitlines():
        stripped = line.strip()
        if stripped == "Args:":
            inside = True
            continue
        if not inside:
            continue
        if stripped and not line.startswith(" "):
            break  # the next section
        head, colon, rest = stripped.partition(": ")
        if (
            colon
            and head.replace("_", "").isalnum()
            and line.startswith("    ")
            and not (line.startswith("        "))
        ):
            current = head
            entries[current] = [rest]
        elif current is not None and stripped:
            entries[current].append(stripped)
    return {name: " ".join(words) for name, words in entries.items()}


def parameter_options(
    function: Callable[..., Any], *, skip: tuple[str, ...] = ()
) -> dict[str, Option]:
    """The keyword parameters of ``function`` as options, helped by its ``Args:`` section.

    Parameters without a default, ``*args``/``**kwargs`` and the names in ``skip`` are left
    out.

    Example:
        >>> def build(image_shape, *, width: int = 64):
        ...     '''A model.
        ...
        ...     Args:
        ...         width: channels of every layer.
        ...     '''
        >>> option = parameter_options(build)["width"]
        >>> option.kind, option.default, option.help
        (<class 'int'>, 64, 'channels of every layer.')
    """
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
    except (TypeError, ValueError, NameError):
        return {}
    docs = _args_section(inspect.getdoc(function))
    options = {}
    for name, parameter in signature.parameters.items():
        if (
            name in skip
            or parameter.default is _NO_DEFAULT
            or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ):
            continue
        annotation = hints.get(name, type(parameter.default))
        kind, choices, optional = _kind(annotation)
        optional = optional or parameter.default is None
        options[name] = Option(name, kind, parameter.default, docs.get(name, ""), choices, optional)
    return options
