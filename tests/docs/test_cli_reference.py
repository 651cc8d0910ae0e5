"""The command-line reference page (docs/hooks/cli_reference.py): generated from the live
parser, so every sub-command, option, choice, exit status and environment variable the
code has is on the page, and one added later appears without editing the docs."""

from __future__ import annotations

import argparse
import html
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import genlatent
from genlatent.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "cli_reference.py"
cli = importlib.import_module("genlatent.cli.main")  # genlatent.cli.main is also a function


def _load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference_hook", HOOK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every sub-parser, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _commands(sub)


def _section(markdown: str, prog: str) -> str:
    """The markdown under the heading of ``prog``, up to the next heading of its level."""
    heading = re.search(rf"^(#+) `{re.escape(prog)}` \{{ #[\w-]+ \}}$", markdown, re.M)
    assert heading, f"no section for {prog}"
    rest = markdown[heading.end() :]
    end = re.search(rf"^#{{1,{len(heading.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _row(section: str, flag: str) -> list[str]:
    """The cells of the options table row that starts with ``flag``."""
    line = next(line for line in section.splitlines() if line.startswith(f"| `{flag}`"))
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


@pytest.fixture(scope="module")
def page() -> str:
    return hook.render()


def test_every_option_of_every_command_is_on_the_page(page: str) -> None:
    parser = build_parser()
    missing = []
    for command in [parser, *_commands(parser)]:
        section = page.partition("## Commands")[0] if command is parser else None
        section = section or _section(page, command.prog)
        missing += [
            f"{command.prog} {flag}"
            for action in command._actions
            for flag in action.option_strings
            if f"`{flag}`" not in section
        ]
    assert missing == []


def test_every_choice_and_positional_is_on_the_page(page: str) -> None:
    missing = []
    for command in _commands(build_parser()):
        section = _section(page, command.prog)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.option_strings and f"`{action.metavar or action.dest}`" not in section:
                missing.append(f"{command.prog} {action.dest}")
            missing += [
                f"{command.prog} {action.dest}={choice}"
                for choice in action.choices or ()
                if f"`{choice}`" not in section
            ]
    assert missing == []


def test_defaults_and_applies_to_have_their_own_columns(page: str) -> None:
    train = _section(page, "genlatent train")
    header = next(line for line in train.splitlines() if line.startswith("| Option |"))
    assert [cell.strip() for cell in header.split("|")[1:-1]] == [
        "Option",
        "Value",
        "Default",
        "Applies to",
        "Description",
    ]
    assert _row(train, "--codebook-size")[2:4] == [
        "`512`",
        "vqvae, tokenizer with --quantizer vq, lfq, rvq, simvq, bsq",
    ]
    assert _row(train, "--levels")[1:4] == [
        "`N,N,...` (tuple)",
        "`8,5,5,5`",
        "vqvae, tokenizer with --quantizer fsq",
    ]
    assert _row(train, "--latent-dim")[3] == "vae"
    # the bracket of every option's help became its Applies-to cell, and left the help
    for action in next(
        c for c in _commands(build_parser()) if c.prog == "genlatent train"
    )._actions:
        applies = re.search(r"\[([^\[\]]+)\]$", action.help or "")
        if action.option_strings and applies:
            cells = _row(train, action.option_strings[0])
            assert cells[3] == hook._text(applies.group(1)), cells
            assert "[" not in cells[4], cells
    evaluate = _section(page, "genlatent eval")
    assert _row(evaluate, "--iwae-k")[2] == "`0`"
    assert _row(evaluate, "--checkpoint")[1:3] == ["`best`, `last`", "`best`"]
    assert "*(required)*" in _row(_section(page, "genlatent sample"), "--out")[-1]


def test_a_planted_option_and_command_appear_without_editing_the_docs() -> None:
    parser = build_parser()
    train = next(c for c in _commands(parser) if c.prog == "genlatent train")
    train.add_argument(
        "--planted-option",
        choices=("alpha", "omega"),
        default="alpha",
        help="a planted option with a | and *stars* [vqvae with --quantizer planted]",
    )
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    planted = subparsers.add_parser("planted", help="a planted command")
    planted.add_argument("thing", help="what to plant")
    planted.add_argument("--depth", type=int, default=3, help="how deep, in %(type)s")

    markdown = hook.cli_reference(parser, {0: "success"}, {})

    assert _row(_section(markdown, "genlatent train"), "--planted-option") == [
        "`--planted-option`",
        "`alpha`, `omega`",
        "`alpha`",
        "vqvae with --quantizer planted",
        r"a planted option with a \| and \*stars\*",
    ]
    section = _section(markdown, "genlatent planted")
    assert "a planted command" in section
    assert "genlatent planted [options] thing" in section
    assert _row(section, "--depth") == ["`--depth`", "`DEPTH` (int)", "`3`", "how deep, in int"]
    assert "[`planted`](#genlatent-planted)" in markdown


def test_exit_statuses_come_from_main(page: str) -> None:
    statuses = hook.exit_statuses(cli.main, cli._exit_status)
    assert set(statuses) == {0, 1, 2, 130}
    table = page.partition("## Exit status")[2].partition("## ")[0]
    for code in statuses:
        assert re.search(rf"^\| {code} \| \w", table, re.M), code
    # every status the code returns is documented
    source = inspect.getsource(cli.main) + inspect.getsource(cli._exit_status)
    returned = {int(code) for code in re.findall(r"\breturn (\d+)\b", source)}
    assert returned <= set(statuses), returned - set(statuses)
    assert "diverged run" in statuses[1]


def test_every_environment_variable_read_is_described(page: str) -> None:
    package = Path(genlatent.__file__).parent
    found = hook.environment_variables(package)
    assert {"GENLATENT_DEBUG", "GENLATENT_DATA"} <= set(found)
    assert set(found) == set(hook.ENVIRONMENT), "describe each variable in ENVIRONMENT"
    # a GENLATENT_ name read some other way than os.environ[...]/.get/getenv
    named = {
        name
        for path in package.rglob("*.py")
        for name in re.findall(r"\bGENLATENT_[A-Z0-9_]+", path.read_text(encoding="utf-8"))
    }
    environment = page.partition("## Environment")[2]
    assert [name for name in sorted(named | set(found)) if f"`{name}`" not in environment] == []
    assert "not described yet" not in environment


def test_the_built_page_renders(built_site: Path) -> None:
    text = (built_site / "cli" / "index.html").read_text(encoding="utf-8")
    assert hook.MARKER not in text
    for flag in ("--codebook-size", "--iwae-k", "--version", "--debug", "GENLATENT_DATA"):
        assert flag in text, flag
    for prog in ("train", "eval", "sample", "plot"):
        assert f'id="genlatent-{prog}"' in text
    flags = {f for c in _commands(build_parser()) for a in c._actions for f in a.option_strings}
    assert [flag for flag in sorted(flags) if html.escape(flag) not in text] == []
    assert "<table>" in text
    assert "\\|" not in text  # escaped pipes rendered as pipes
