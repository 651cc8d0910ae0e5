"""Run the first ``python`` code block of a Markdown file (the README example) as a script.

Usage: ``python scripts/run_readme_example.py README.md``. Used by CI in a clean
environment where only the built wheel is installed, and by the test suite.
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
    path = Path(argv[1] if len(argv) > 1 else "README.md")
    code = first_python_block(path.read_text(encoding="utf-8"))
    exec(compile(code, f"{path}:example", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main(sys.argv)
