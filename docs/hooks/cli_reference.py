"""mkdocs hook: the command-line reference page, generated from the parser at build time.

``docs/cli.md`` is a stub whose body holds ``MARKER``; ``on_page_markdown`` replaces the
marker with `cli_reference`'s markdown for ``genlatent.cli.main.build_parser()``, the exit
statuses read from the docstrings of ``main`` and ``_exit_status``, and the environment
variables the package reads (found in its source). Nothing on the page is written by hand,
so it cannot name a flag, default or choice the parser no longer has.

An environment variable read by the source but missing from `ENVIRONMENT` (or the other
way round) is logged as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

PAGE = "cli.md"
MARKER = "<!-- cli-reference -->"

# What each variable read by the package means (markdown). The source is searched for the
# names (`environment_variables`); a name found there must be described here.
ENVIRONMENT = {
    "GENLATENT_DEBUG": "`1` (any value but empty or `0`): print tracebacks, as `--debug` does",
    "GENLATENT_DATA": "the data folder where `--data-dir` is not given "
    "(default `~/.cache/genlatent`)",
    "GENLATENT_MIRRORS": "comma-separated base URLs that `--download` fetches the dataset "
    "files from, in place of the built-in mirrors",
    "WORLD_SIZE": "set by `torchrun`: above 1, `genlatent train` runs data-parallel (DDP)",
    "LOCAL_RANK": "set by `torchrun`: the CUDA device of this process",
}

_READ = re.compile(
    r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)
_APPLIES = re.compile(r"\s*\[([^\[\]]+)\]$")
_DEFAULT = re.compile(r"\s*\(default (\S+)\)$")  # one word: prose stays in the help
_STATUS = re.compile(r"\b(\d+) (?:for|on) ((?:[^,.;:()]|\([^()]*\))+)")

log = logging.getLogger(f"mkdocs.hooks.{__name__}")


# ---------------------------------------------------------------------------- markdown


def _text(value: str) -> str:
    """``value`` as plain text in markdown (a table cell): specials escaped."""
    value = html.escape(" ".join(value.split()), quote=False)
    return re.sub(r"([\\`*_\[\]|$])", r"\\\1", value)


def _code(value: object) -> str:
    """``value`` as an inline code span."""
    value = " ".join(str(value).split())
    fence = "`" * (max(map(len, re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the parser


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, Any]]:
    """``(name, one-line help, sub-parser)`` for each sub-command, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _help(action: argparse.Action, prog: str) -> str:
    """The action's help as ``--help`` prints it (``%(default)s`` and the like expanded)."""
    if not action.help or action.help is argparse.SUPPRESS:
        return ""
    if "%" not in action.help:
        return action.help
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params = {k: getattr(v, "__name__", v) for k, v in params.items()}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return action.help % {**params, "prog": prog}


def _value(action: argparse.Action) -> str:
    """What the option takes: its choices, else its metavar (and type)."""
    if action.nargs == 0:
        return ""
    if action.choices is not None and action.metavar is None:
        return ", ".join(_code(choice) for choice in action.choices)
    kind = getattr(action.type, "__name__", None)
    if not action.option_strings:  # its name is in the Argument column
        return _text(kind) if kind and kind != "str" else ""
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    shown = _code(metavar) + (f" ({_text(kind)})" if kind and kind != "str" else "")
    if action.choices is not None:
        shown += ": one of " + ", ".join(_code(choice) for choice in action.choices)
    if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
        shown += ", repeatable"
    return shown


def _shown_default(action: argparse.Action) -> str | None:
    default = action.default
    if action.nargs == 0 or default is None or default is argparse.SUPPRESS:
        return None
    if isinstance(default, (list, tuple)) and not default:
        return None
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return str(default)


def _option_row(action: argparse.Action, prog: str, applies_column: bool) -> tuple[str, ...]:
    help_text = _help(action, prog)
    applies = _APPLIES.search(help_text)
    if applies:
        help_text = help_text[: applies.start()]
    default = _shown_default(action)
    if default is None and (found := _DEFAULT.search(help_text)):
        default, help_text = found.group(1), help_text[: found.start()]
    return (
        ", ".join(_code(flag) for flag in action.option_strings),
        _value(action),
        _code(default) if default is not None else "",
        *((_text(applies.group(1)) if applies else "",) if applies_column else ()),
        _text(help_text) + (" *(required)*" if action.required else ""),
    )


def _synopsis(parser: argparse.ArgumentParser) -> str:
    """``prog [options] REQUIRED-OPTIONS POSITIONALS`` on one line."""
    words = [parser.prog]
    optionals = [a for a in parser._actions if a.option_strings]
    if any(not a.required for a in optionals):
        words.append("[options]")
    required = [a for a in optionals if a.required]
    for action in required + [a for a in parser._actions if not a.option_strings]:
        if isinstance(action, argparse._SubParsersAction):
            words.append(f"{action.metavar or 'COMMAND'} ...")
            continue
        name = action.metavar or action.dest
        if action.option_strings:
            word = action.option_strings[-1] + ("" if action.nargs == 0 else f" {name.upper()}")
        elif action.choices is not None and action.metavar is None:
            word = "{" + ",".join(map(str, action.choices)) + "}"
        else:
            word = str(name)
        if action.nargs == "?":
            word = f"[{word}]"
        elif action.nargs == "*":
            word = f"[{word} ...]"
        elif action.nargs == "+":
            word = f"{word} [{word} ...]"
        words.append(word)
    return " ".join(words)


def _arguments(parser: argparse.ArgumentParser, labels: bool = True) -> list[str]:
    """Markdown for a parser's positional arguments and options."""
    positionals = [
        a
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]
    optionals = [a for a in parser._actions if a.option_strings]
    out = []
    if positionals:
        rows = [
            (
                _code(a.metavar or a.dest),
                _value(a),
                _text(_help(a, parser.prog)) + (" *(optional)*" if a.nargs in ("?", "*") else ""),
            )
            for a in positionals
        ]
        out += [
            "**Arguments**" if labels else "",
            _table(("Argument", "Value", "Description"), rows),
        ]
    if optionals:
        applies = any(_APPLIES.search(_help(a, parser.prog)) for a in optionals)
        header = (
            "Option",
            "Value",
            "Default",
            *(("Applies to",) if applies else ()),
            "Description",
        )
        rows = [_option_row(a, parser.prog, applies) for a in optionals]
        out += ["**Options**" if labels else "", _table(header, rows)]
    for group in parser._mutually_exclusive_groups:
        flags = [_code(a.option_strings[-1]) for a in group._group_actions if a.option_strings]
        if len(flags) > 1:
            out.append(" and ".join(flags) + " exclude each other.")
    return out


def _command_sections(parser: argparse.ArgumentParser, level: int) -> list[str]:
    out = []
    for _name, summary, sub in _subcommands(parser):
        heading = f"{'#' * level} `{sub.prog}` {{ #{_anchor(sub.prog)} }}"
        out += [heading, _text(sub.description or summary)]
        out += ["```text\n" + _synopsis(sub) + "\n```", *_arguments(sub)]
        out += _command_sections(sub, level + 1)
    return out


# ---------------------------------------------------------------------------- the code


def exit_statuses(*functions: Callable[..., Any] | None) -> dict[int, str]:
    """Exit statuses named in the docstrings of ``functions`` ("2 for usage errors, 130 on
    an interrupt"), with 0 for success; a later function's wording wins."""
    found = {0: "success"}
    for function in functions:
        doc = " ".join((inspect.getdoc(function) or "").split()) if function else ""
        for code, meaning in _STATUS.findall(doc.replace("``", "`")):
            found[int(code)] = meaning.strip()
    return dict(sorted(found.items()))


def environment_variables(package: Path) -> dict[str, list[str]]:
    """Each environment variable the source under ``package`` reads, with the files."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for name in _READ.findall(path.read_text(encoding="utf-8")):
            where = path.relative_to(package.parent).as_posix()
            found.setdefault(name, [])
            if where not in found[name]:
                found[name].append(where)
    return found


def cli_reference(
    parser: argparse.ArgumentParser,
    statuses: Mapping[int, str],
    variables: Mapping[str, list[str]],
    notes: str = "",
) -> str:
    """The reference page's markdown: synopsis, global options, one section per sub-command,
    exit statuses (``notes`` is prose above their table) and environment variables."""
    commands = list(_subcommands(parser))
    out = [
        "```text\n" + _synopsis(parser) + "\n```",
        _text(parser.description or ""),
        _table(
            ("Command", "Summary"),
            [(f"[{_code(name)}](#{_anchor(sub.prog)})", _text(s)) for name, s, sub in commands],
        ),
        "## Global options",
        *_arguments(parser, labels=False),
    ]
    if parser.epilog:
        out += ["## Examples", "```text\n" + parser.epilog.strip() + "\n```"]
    out += ["## Commands", *_command_sections(parser, 3)]
    out += ["## Exit status"]
    out += [notes] if notes else []
    out += [_table(("Status", "Meaning"), [(str(k), _text(v)) for k, v in statuses.items()])]
    out += [
        "## Environment",
        _table(
            ("Variable", "Meaning", "Read in"),
            [
                (
                    _code(name),
                    ENVIRONMENT.get(name, "*not described yet*"),
                    ", ".join(_code(w) for w in where),
                )
                for name, where in sorted(variables.items())
            ],
        ),
    ]
    return "\n\n".join(part for part in out if part) + "\n"


def _anchor(prog: str) -> str:
    """The id of a sub-command's heading: ``genlatent-train`` for ``genlatent train``."""
    return "-".join(re.sub(r"[^\w\s-]", "", prog).lower().split())


def render() -> str:
    """`cli_reference` for the installed genlatent; warns about undescribed variables."""
    import genlatent

    cli = importlib.import_module("genlatent.cli.main")  # genlatent.cli.main is the function
    main = cli.main
    statuses = exit_statuses(main, getattr(cli, "_exit_status", None))
    variables = environment_variables(Path(genlatent.__file__).parent)
    for name in sorted(set(variables) - set(ENVIRONMENT)):
        log.warning("%s is read by %s but not described in ENVIRONMENT", name, variables[name])
    for name in sorted(set(ENVIRONMENT) - set(variables)):
        log.warning("ENVIRONMENT describes %s, which genlatent no longer reads", name)
    notes = (inspect.getdoc(main) or "").partition("\n\n")[2].replace("``", "`")
    return cli_reference(cli.build_parser(), statuses, variables, notes)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        log.warning("%s has no %s marker: the reference was not generated", PAGE, MARKER)
        return markdown
    return markdown.replace(MARKER, render())
