"""The pages name only what exists and speak to users, not to the project's own process.

- every dotted ``genlatent.`` name on a page imports (a module) or resolves (an attribute);
- every ``--option`` on a page is one the CLI or a script of this repository defines, and
  on a ``genlatent COMMAND`` line one that this command takes;
- no page, docstring or ``--help`` text carries words of our process: issue numbers,
  "done-when", commit hashes, the development tree's ``../shared`` folder.

Each checker is a plain function of text, so the tests below also plant a stale name, a
stale option and a process word and watch the checker catch them.
"""

from __future__ import annotations

import argparse
import importlib
import re
import warnings
from functools import cache
from pathlib import Path

import pytest

from genlatent.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
# Every page a user reads: the README and the site (less the generated API stubs, which
# hold one directive each; their text is the docstrings, read from the source below).
PAGES = sorted(
    ["README.md"]
    + [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "docs").rglob("*.md")
        if "api" not in p.relative_to(ROOT / "docs").parts[:1]
    ]
)
# Pages whose subject is names that are gone: they may name them.
HISTORY = {"docs/changelog.md", "docs/guides/migration.md"}
# Docstrings render into the API pages, the examples into the tutorials.
SOURCE = sorted([*(ROOT / "src" / "genlatent").rglob("*.py"), *(ROOT / "examples").glob("*.py")])
# Options of tools that are not ours, named on the pages.
OTHER_TOOLS = {"--strict", "--nproc_per_node", "--logdir"}

DOTTED = re.compile(r"(?<![\w/.@-])genlatent(?:\.[A-Za-z_]\w*)+")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
COMMAND = re.compile(r"\bgenlatent\s+(train|eval|sample|plot|export)\b(.*)")
PROCESS_WORDS = re.compile(
    r"\bissues?\s+#?\d+\b|\bdone[- ]when\b|\bcommit\s+[0-9a-f]{7,40}\b|\.\./shared\b", re.I
)


# ---------------------------------------------------------------------------- checkers


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            with warnings.catch_warnings():  # a deprecated module still exists
                warnings.simplefilter("ignore", DeprecationWarning)
                obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def stale_names(text: str) -> list[str]:
    """The dotted ``genlatent.`` names in ``text`` that do not resolve."""
    return sorted({name for name in DOTTED.findall(text) if not _resolves(name)})


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


@cache
def known_options() -> frozenset[str]:
    """Every option of the CLI (any command), of this repository's scripts and of the
    other tools the pages run."""
    found = set(OTHER_TOOLS)
    parser = build_parser()
    found |= _options(parser)
    for sub in _subparsers(parser).values():
        found |= _options(sub)
    for folder in ("benchmarks", "examples", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            found.update(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", text))
    return frozenset(found)


def stale_options(text: str) -> list[str]:
    """Options in ``text`` that nothing defines, and options on a ``genlatent COMMAND``
    line (a shell line; ``\\`` continuations joined) that the command does not take."""
    found = {opt for opt in OPTION.findall(text) if opt not in known_options()}
    parser = build_parser()
    commands = _subparsers(parser)
    lines = text.replace("\\\n", " ").splitlines()
    for part in (part for line in lines for part in re.split(r"&&|;|\|", line)):
        match = COMMAND.search(part)
        if match:
            words = match.group(2).split("`")[0].split("#")[0]  # up to a span's or comment's end
            takes = _options(parser) | _options(commands[match.group(1)])
            found |= {f"{opt} (genlatent {match.group(1)})" for opt in OPTION.findall(words)
                      if opt not in takes}  # fmt: skip
    return sorted(found)


def process_words(text: str) -> list[str]:
    """Words of the project's own process in ``text``."""
    return sorted({match.group(0) for match in PROCESS_WORDS.finditer(text)})


def _help_texts(parser: argparse.ArgumentParser) -> list[str]:
    return [parser.format_help()] + [
        text for sub in _subparsers(parser).values() for text in _help_texts(sub)
    ]


def _read(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- the pages


@pytest.mark.parametrize("page", [p for p in PAGES if p not in HISTORY])
def test_every_dotted_name_exists(page: str) -> None:
    assert stale_names(_read(page)) == [], f"{page} names what genlatent does not have"


@pytest.mark.parametrize("page", PAGES)
def test_every_option_exists(page: str) -> None:
    assert stale_options(_read(page)) == [], f"{page} names options no command takes"


@pytest.mark.parametrize("page", [p for p in PAGES if p != "docs/changelog.md"])
def test_no_page_carries_process_words(page: str) -> None:
    assert process_words(_read(page)) == [], page


def test_no_docstring_or_help_text_carries_process_words() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): words
        for path in SOURCE
        if (words := process_words(path.read_text(encoding="utf-8")))
    }
    assert found == {}
    for text in _help_texts(build_parser()):
        assert process_words(text) == [], text[:200]


def test_the_pages_are_read() -> None:
    assert {"README.md", "docs/index.md", "docs/getting-started.md"} <= set(PAGES)
    assert len(PAGES) > 20
    assert not any(page.startswith("docs/api/") for page in PAGES)


# ---------------------------------------------------------------------------- planted


def test_a_planted_stale_name_is_caught() -> None:
    text = "Call `genlatent.VAE.loss`, then `genlatent.train.fit_all` and genlatent.nope."
    assert stale_names(text) == ["genlatent.nope", "genlatent.train.fit_all"]
    assert stale_names("see https://genlatent.readthedocs.io and genlatent.nn") == []


def test_a_planted_stale_option_is_caught() -> None:
    assert stale_options("pass `--no-such-flag` to train") == ["--no-such-flag"]
    # --levels exists (train) but not on eval; --ema is fine on train
    text = (
        "```bash\ngenlatent eval runs/x --levels 8,5 \\\n    --json\n"
        "genlatent train vqvae --ema && genlatent eval runs/x --json\n```"
    )
    assert stale_options(text) == ["--levels (genlatent eval)"]


def test_planted_process_words_are_caught() -> None:
    text = (
        "As issue 6 asks, the done-when lines hold (commit 3e34c58); "
        "run with --data-dir ../shared/data/mnist."
    )
    assert process_words(text) == ["../shared", "commit 3e34c58", "done-when", "issue 6"]
    assert process_words("an issue with 3 codes; commit the weights; shared codebook") == []
