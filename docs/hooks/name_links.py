"""mkdocs hook: public names in single backticks on the narrative pages link to their API
pages, as they do in docstrings (``docs/_griffe/docstring_habits.py`` owns the rule).

Fenced code is left alone, and so are names that are also a word of their own on these
pages (``train`` is an extra and a command before it is `genlatent.train.train`).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

HABITS = Path(__file__).resolve().parents[1] / "_griffe" / "docstring_habits.py"
NOT_LINKED = frozenset({"train"})
_FENCE = re.compile(r"^(```|~~~)")


def _habits() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docstring_habits", HABITS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def link_page(markdown: str, link_names: Any) -> str:
    """``markdown`` with ``link_names`` applied to every line outside fenced code."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        out.append(line if fenced or _FENCE.match(line.lstrip()) else link_names(line))
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri.startswith("api/"):
        return markdown  # directives only; the docstrings are linked by griffe
    habits = _habits()
    return link_page(markdown, lambda line: habits.link_names(line, exclude=NOT_LINKED))
