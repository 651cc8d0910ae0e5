"""Griffe extension for the docs build: read two docstring habits of genlatent as intended.

1. genlatent's docstrings title their doctest section ``Example:`` (singular). Griffe's
   Google parser knows only ``Examples:``; it would render ``Example:`` as an admonition
   whose ``>>>`` lines become nested block quotes. The title is read as ``Examples:`` so the
   section renders as highlighted, runnable code.
2. A few docstrings use Sphinx roles (``:class:`Batch```); they are read as inline code.
3. A public name in single backticks (`` `VAE` ``, `` `fit` ``) is a cross-reference: it
   becomes a link to the name's API page (double backticks stay plain code).

Nothing in the source changes: this only affects how the site renders the docstrings.
Loaded by mkdocstrings through ``extensions`` in mkdocs.yml; excluded from the built site.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

from griffe import Extension, Object

_EXAMPLE_TITLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


# A name in single backticks, not part of a double-backtick span or of a link already.
_BACKTICKED = re.compile(r"(?<![`\[\w])`([A-Za-z_]\w*)`(?![`\]\w])")
# The namespaces whose __all__ gets API pages (scripts/gen_api_pages.py), shortest first.
_NAMESPACES = (
    "genlatent", "genlatent.errors", "genlatent.functional", "genlatent.nn",
    "genlatent.losses", "genlatent.models", "genlatent.priors", "genlatent.metrics",
    "genlatent.data", "genlatent.train", "genlatent.plotting",
)  # fmt: skip


@cache
def public_names() -> dict[str, str]:
    """Each public name and the dotted path its API page answers to (its first export)."""
    found: dict[str, str] = {}
    for namespace in _NAMESPACES:
        module = importlib.import_module(namespace)
        for name in getattr(module, "__all__", ()):
            if not name.startswith("_"):
                found.setdefault(name, f"{namespace}.{name}")
    return found


def link_names(text: str, exclude: frozenset[str] = frozenset()) -> str:
    """Turn each `` `name` `` of a public name (less ``exclude``) into a link to its page."""
    names = public_names()

    def link(match: re.Match[str]) -> str:
        path = None if match.group(1) in exclude else names.get(match.group(1))
        return f"[`{match.group(1)}`][{path}]" if path else match.group(0)

    return _BACKTICKED.sub(link, text)


def normalize(text: str) -> str:
    """Return the docstring text with the habits rewritten."""
    text = _EXAMPLE_TITLE.sub("Examples:", text)
    return link_names(_SPHINX_ROLE.sub(r"`\1`", text))


class DocstringHabits(Extension):
    """Rewrite ``Example:`` titles, Sphinx roles and public names before parsing."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalize(obj.docstring.value)
