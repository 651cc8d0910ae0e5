"""The documentation site: an API page per public name, every page in the nav, a strict
build, and the examples of the narrative pages run."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API = DOCS / "api"
MKDOCS_YML = ROOT / "mkdocs.yml"
GEN_SCRIPT = ROOT / "scripts" / "gen_api_pages.py"

# Namespaces whose every public name must have an API page.
DOCUMENTED_NAMESPACES = (
    "genlatent", "genlatent.errors", "genlatent.functional", "genlatent.nn", "genlatent.losses",
    "genlatent.models", "genlatent.priors", "genlatent.metrics", "genlatent.data",
    "genlatent.train", "genlatent.plotting",
)  # fmt: skip
# Pages whose ```python blocks are complete examples, run by test_example_runs.
EXAMPLE_PAGES = (
    "index.md",
    "extending.md",
    *sorted(p.relative_to(DOCS).as_posix() for p in DOCS.glob("concepts/*.md")),
)
NO_TEST = "<!-- no-test -->"


def _public_names(namespace: str) -> list[str]:
    module = importlib.import_module(namespace)
    return [name for name in module.__all__ if name != "__version__"]


def _directives() -> set[str]:
    """Every object path named by a ``::: path`` line in the API pages."""
    found = set()
    for page in API.glob("*.md"):
        found.update(re.findall(r"^:::[ \t]+(\S+)", page.read_text(encoding="utf-8"), re.M))
    return found


@pytest.mark.parametrize("namespace", DOCUMENTED_NAMESPACES)
def test_every_public_name_has_an_api_page(namespace: str) -> None:
    directives = _directives()
    missing = [
        f"{namespace}.{name}"
        for name in _public_names(namespace)
        if not any(
            path.startswith("genlatent.") and path.endswith(f".{name}") for path in directives
        )
    ]
    assert not missing, (
        f"no API page documents {missing}: run `python scripts/gen_api_pages.py` "
        "(every page is docs/api/<name>.md holding `::: genlatent...<name>`)"
    )


def test_generated_api_pages_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_api_pages", GEN_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclass looks its module up there
    spec.loader.exec_module(script)
    entries, missing = script.collect()
    assert not missing, f"listed in __all__ but not importable: {missing}"
    stale = [
        str(path.relative_to(ROOT))
        for path, content in script.expected_files(entries).items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    stale += [str(path.relative_to(ROOT)) for path in script.stale_pages(entries)]
    assert not stale, f"out of date: {stale}; run `python scripts/gen_api_pages.py --prune`"


class _TolerantLoader(yaml.SafeLoader):
    """A safe loader that reads mkdocs.yml's ``!!python/name:`` and ``!ENV`` tags as None."""


_TolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
_TolerantLoader.add_multi_constructor("!", lambda *_: None)


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node] if node.endswith(".md") else []
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    return []


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load(MKDOCS_YML.read_text(encoding="utf-8"), Loader=_TolerantLoader)
    in_nav = _nav_pages(config["nav"])
    assert len(in_nav) == len(set(in_nav)), "a page is listed twice in the nav"
    broken = sorted(page for page in in_nav if not (DOCS / page).is_file())
    assert not broken, f"the nav of mkdocs.yml names missing pages: {broken}"
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    unreachable = sorted(pages - set(in_nav))
    assert not unreachable, (
        f"pages in docs/ not reachable from the nav of mkdocs.yml: {unreachable}"
    )


def test_mkdocs_build_strict(built_site: Path) -> None:
    assert (built_site / "index.html").is_file()
    _assert_renders_offline(built_site)


# a script or stylesheet from another host, in a page or pulled in by a stylesheet
_EXTERNAL = re.compile(
    r"<script[^>]*\bsrc=[\"']?(?:https?:)?//|<link[^>]*\bhref=[\"']?(?:https?:)?//[^>]*stylesheet"
    r"|<link[^>]*stylesheet[^>]*\bhref=[\"']?(?:https?:)?//|@import\s+url\([\"']?(?:https?:)?//"
    r"|url\([\"']?(?:https?:)?//[^)]*\.(?:woff2?|ttf|otf)",
    re.I,
)


def _assert_renders_offline(site: Path) -> None:
    """Every page's scripts, stylesheets and fonts come from the site itself."""
    pages = sorted(site.rglob("*.html")) + sorted(site.rglob("*.css"))
    offenders = [
        f"{path.relative_to(site)}: {match.group(0)[:80]}"
        for path in pages
        for match in _EXTERNAL.finditer(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == [], offenders[:10]
    # the maths renderer is served from the site, fonts included
    mathjax = site / "javascripts" / "mathjax"
    assert (mathjax / "tex-mml-chtml.js").stat().st_size > 100_000
    assert any((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="javascripts/mathjax/tex-mml-chtml.js"' in index


def _examples() -> list[tuple[str, str]]:
    """``(id, code)`` for each ```python block of the example pages not marked no-test."""
    examples = []
    fence = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
    for name in EXAMPLE_PAGES:
        text = (DOCS / name).read_text(encoding="utf-8")
        for match in fence.finditer(text):
            before = text[: match.start()].rstrip().splitlines()
            if before and before[-1].strip() == NO_TEST:
                continue
            line = text.count("\n", 0, match.start()) + 1
            examples.append((f"{name}:{line}", match.group(1)))
    return examples


_EXAMPLES = _examples()


@pytest.mark.parametrize(("where", "code"), _EXAMPLES, ids=[where for where, _ in _EXAMPLES])
def test_example_runs(where: str, code: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_example_{where}"}
    exec(compile(code, where, "exec"), namespace)


def test_examples_are_found() -> None:
    ids = [where for where, _ in _EXAMPLES]
    assert any(where.startswith("index.md") for where in ids)
    assert any(where.startswith("concepts/vae.md") for where in ids)
    assert any(where.startswith("concepts/vq.md") for where in ids)


def test_home_links_every_concept_tutorial_and_guide() -> None:
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w/-]+\.md)(?:#[\w-]+)?\)", home))
    pages = {
        p.relative_to(DOCS).as_posix()
        for folder in ("concepts", "tutorials", "guides")
        for p in (DOCS / folder).glob("*.md")
    }
    assert pages, "no concept, tutorial or guide pages found"
    assert sorted(pages - linked) == [], "Home does not link these pages"
    assert "getting-started.md" in linked


def test_the_docs_say_which_version_they_describe() -> None:
    import genlatent

    release = re.match(r"\d+\.\d+\.\d+", genlatent.__version__)
    assert release, genlatent.__version__
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    assert f"genlatent {release.group(0)}" in home
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"**{release.group(0)}**" in changelog.split("\n### ", 1)[0], (
        "the Unreleased section names the version it will be released as"
    )


def test_public_names_in_docstrings_become_links() -> None:
    spec = importlib.util.spec_from_file_location(
        "docstring_habits", DOCS / "_griffe" / "docstring_habits.py"
    )
    assert spec is not None
    assert spec.loader is not None
    habits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(habits)
    text = "Train with `fit`, see :class:`VAE`; ``fit`` and `x` stay code, [`VAE`][a.b] stays."
    assert habits.normalize(text) == (
        "Train with [`fit`][genlatent.fit], see [`VAE`][genlatent.VAE]; ``fit`` and `x` "
        "stay code, [`VAE`][a.b] stays."
    )
    # every link target is a name with an API page
    directives = _directives()
    for name, path in habits.public_names().items():
        assert any(d.endswith(f".{name}") for d in directives), (name, path)


def test_public_names_on_the_pages_become_links_outside_code() -> None:
    spec = importlib.util.spec_from_file_location("name_links", DOCS / "hooks" / "name_links.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    habits = hook._habits()
    page = "Use `fit` and the `train` extra.\n```python\nfit(model)  # `fit`\n```\nThen `VAE`."
    linked = hook.link_page(page, lambda line: habits.link_names(line, exclude=hook.NOT_LINKED))
    assert linked == (
        "Use [`fit`][genlatent.fit] and the `train` extra.\n```python\nfit(model)  # `fit`\n```\n"
        "Then [`VAE`][genlatent.VAE]."
    )
