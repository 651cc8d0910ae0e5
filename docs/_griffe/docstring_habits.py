"""Griffe extension for the docs build: read two docstring habits of genlatent as intended.

1. genlatent's docstrings title their doctest section ``Example:`` (singular). Griffe's
   Google parser knows only ``Examples:``; it would render ``Example:`` as an admonition
   whose ``>>>`` lines become nested block quotes. The title is read as ``Examples:`` so the
   section renders as highlighted, runnable code.
2. A few docstrings use Sphinx roles (``:class:`Batch```); they are read as inline code.

Nothing in the source changes: this only affects how the site renders the docstrings.
Loaded by mkdocstrings through ``extensions`` in mkdocs.yml; excluded from the built site.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE_TITLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def normalize(text: str) -> str:
    """Return the docstring text with the two habits rewritten."""
    text = _EXAMPLE_TITLE.sub("Examples:", text)
    return _SPHINX_ROLE.sub(r"`\1`", text)


class DocstringHabits(Extension):
    """Rewrite ``Example:`` section titles and Sphinx roles before the docstring is parsed."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalize(obj.docstring.value)
