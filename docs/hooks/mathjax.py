"""mkdocs hook: serve MathJax from the built site itself, so the maths renders offline.

MathJax 3.2.2 comes from the ``django-static-mathjax`` wheel of the ``docs`` extra (the
release's ``es5`` files as package data, no dependencies). After the build, the
``tex-mml-chtml`` component and its woff fonts are copied to ``site/javascripts/mathjax/``,
where ``mkdocs.yml``'s ``extra_javascript`` loads them; MathJax finds its fonts relative
to its own script.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

TARGET = Path("javascripts") / "mathjax"
PARTS = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2")


def _source() -> Path:
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError as error:  # pragma: no cover - the docs extra installs it
        raise ImportError(
            "building the docs needs MathJax: pip install 'genlatent[docs]'"
        ) from error
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def on_post_build(config: Any, **_: Any) -> None:
    source, target = _source(), Path(config["site_dir"]) / TARGET
    for part in PARTS:
        origin = source / part
        if origin.is_dir():
            shutil.copytree(origin, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / part)
    shutil.copy2(source.parent / "LICENSE", target / "LICENSE")
