"""Run the first ``python`` code block of a Markdown file (the README example) as a script,
or with ``--all`` every ``python`` block of the page in order, in one namespace (a page a
newcomer follows top to bottom, as Getting started).

Usage: ``python scripts/run_readme_example.py [--all] README.md``. Used by CI in a clean
environment where only the built wheel (with the page's install line) is installed, and by
the test suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def first_python_block(markdown: str) -> str:
    """Return the first fenced ``python`` block of ``markdown``."""
    match = FENCE.search(markdown)
    if match is None:
        raise ValueError("no ```python block found")
    return match.group(1)


def main(argv: list[str]) -> None:
    every = "--all" in argv
    paths = [arg for arg in argv[1:] if arg != "--all"]
    path = Path(paths[0] if paths else "README.md")
    text = path.read_text(encoding="utf-8")
    blocks = [match.group(1) for match in FENCE.finditer(text)] if every else []
    blocks = blocks or [first_python_block(text)]
    namespace = {"__name__": "__main__"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{path}:python block {number}", "exec"), namespace)


if __name__ == "__main__":
    main(sys.argv)
