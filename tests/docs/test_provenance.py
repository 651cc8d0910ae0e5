"""Every number in the tables of the results and benchmarks pages comes from a committed file.

The convention, for ``docs/results.md``, ``docs/benchmarks.md`` and the quantizer guide:
under a heading, an HTML comment names the raw output that the section's tables are made
from, as paths relative to the repository root (a folder means every ``.json`` and ``.jsonl`` in it,
recursively)::

    ## A section
    <!-- data: docs/data/literature benchmarks/results/prior.json -->

The declaration holds for the tables of that section and of its subsections, until the
next heading of the same or a higher level; a subsection may declare its own. Every table
of a covered page must sit under a declaration. Each number in a table cell (the first
column is the row's label and is not read) must equal, at the precision it is printed
with, a number in those files: the value itself, or the value in percent, in thousandths
(seconds shown as ms), in minutes, in MiB (of bytes), in billions (GFLOP), a count of
images divided by a time (a rate), or the difference of two values of one small record (a
gain). A number that
has no committed run is marked in the page: a cell holding the word "estimate" is not
read, and a section declared ``<!-- data: estimate -->`` must say "estimate" in its text.

The front pages (``README.md``, ``docs/index.md``, the guides) quote run results in prose.
There every number with a unit of a result (nats, bits, seconds, dB, percent, images per
second) outside code must likewise sit under a ``<!-- data: ... -->`` declaration (the
last one above it) and be found in its files, unless its sentence says "estimate".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("docs/results.md", "docs/benchmarks.md", "docs/guides/which-quantizer.md")
DECLARATION = re.compile(r"<!--\s*data:\s*(.*?)\s*-->")
HEADING = re.compile(r"^(#{1,6})\s")
NUMBER = re.compile(r"(?<![A-Za-wyz_\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,])")
ESTIMATE = "estimate"
RATE_COUNTS = {"images_per_sample"}  # divided by a time, they give a rate


@dataclass(frozen=True)
class Table:
    page: str
    heading: str
    line: int
    rows: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]  # empty: no declaration; ("estimate",): marked as estimates
    section_text: str


SEPARATOR = re.compile(r"^\|[\s|:-]+\|$")


def _tables(page: str) -> Iterator[Table]:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    declared: list[tuple[int, tuple[str, ...]]] = []  # (heading level, sources) in force
    heading, level, section_start = "(top)", 0, 0
    i, fenced = 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            level = len(match.group(1))
            declared = [(lvl, src) for lvl, src in declared if lvl < level]
            heading, section_start = line.strip("# "), i
        found = None if fenced else DECLARATION.search(line)
        if found:
            declared = [(lvl, src) for lvl, src in declared if lvl < level]
            declared.append((level, tuple(found.group(1).split())))
        table = not fenced and line.startswith("|") and i + 1 < len(lines)
        if table and SEPARATOR.match(lines[i + 1]):
            start, rows = i, []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(tuple(cell.strip() for cell in lines[i].strip("|").split("|")))
                i += 1
            end = next((j for j in range(i, len(lines)) if lines[j].startswith("## ")), len(lines))
            yield Table(
                page,
                heading,
                start + 1,
                tuple(rows),
                declared[-1][1] if declared else (),
                "\n".join(lines[section_start:end]),
            )
            continue
        i += 1


def _leaves(value: object, key: str = "") -> Iterator[tuple[str, float]]:
    """``(key, number)`` for every finite number in a JSON value, at any depth."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            yield key, float(value)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)


def _files(source: str) -> list[Path]:
    path = ROOT / source
    if path.is_dir():
        found = path.rglob("*")  # not the git-ignored --quick smoke runs
        return sorted(
            p for p in found if p.suffix in (".json", ".jsonl") and "quick" not in p.parts
        )
    return [path]


def _values(sources: tuple[str, ...]) -> list[float]:
    raw: list[float] = []
    differences: list[float] = []
    counts: set[float] = set()
    for source in sources:
        for file in _files(source):
            text = file.read_text(encoding="utf-8")
            records = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if file.suffix == ".jsonl"
                else [json.loads(text)]
            )
            for record in records:
                pairs = list(_leaves(record))
                leaves = [v for _, v in pairs]
                raw.extend(leaves)
                counts.update(v for k, v in pairs if k in RATE_COUNTS)
                if len(leaves) <= 50:  # a small record (one evaluation): its differences
                    differences.extend(a - b for a in leaves for b in leaves if a > b)
    views = set(raw) | set(differences)
    for v in raw:
        views.update((100 * v, 1000 * v, v / 60, v / 2**20, v / 1e9))  # %, ms, min, MiB, G
        if v > 0:
            views.update(count / v for count in counts)  # a rate: images per second
    return sorted(views)


def _matches(shown: str, values: list[float]) -> bool:
    number = float(shown.replace(",", ""))
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    half = 0.5 * 10.0**-decimals * (1 + 1e-9)
    low, high = number - half, number + half
    # binary search for any value in [low, high]
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < low:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(values) and values[lo] <= high


TABLES = [table for page in PAGES for table in _tables(page)]


def test_the_pages_have_tables() -> None:
    assert {t.page for t in TABLES} == set(PAGES)
    assert len(TABLES) > 15


@pytest.mark.parametrize("table", TABLES, ids=[f"{t.page}:{t.line}" for t in TABLES])
def test_every_table_number_is_in_its_committed_output(table: Table) -> None:
    where = f"{table.page}:{table.line} ({table.heading})"
    assert table.sources, f"{where}: no <!-- data: ... --> declaration above this table"
    if table.sources == (ESTIMATE,):
        assert ESTIMATE in table.section_text.lower().replace("<!-- data: estimate -->", ""), (
            f"{where}: declared an estimate, but the page does not say so"
        )
        return
    missing_files = [s for s in table.sources if not (ROOT / s).exists()]
    assert not missing_files, f"{where}: declared data not found: {missing_files}"
    values = _values(table.sources)
    unmatched = [
        f"{shown} (row {row[0]!r})"
        for row in table.rows
        for cell in row[1:]
        if ESTIMATE not in cell.lower()
        for shown in NUMBER.findall(cell)
        if not _matches(shown, values)
    ]
    assert not unmatched, f"{where}: numbers not in {' '.join(table.sources)}: {unmatched}"


# ---------------------------------------------------------------------------- prose

PROSE_PAGES = ("README.md", "docs/index.md", "docs/getting-started.md", "docs/guides/faq.md")
UNIT = re.compile(
    r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(?:nats\b|bits\b|s\b|seconds\b|minutes\b|dB\b|%"
    r"|img/s\b|images per second\b)"
)


def unsourced_prose_numbers(text: str) -> list[str]:
    """Numbers with a result's unit in the prose of ``text`` (code blocks, inline code and
    maths left out) that no ``<!-- data: ... -->`` declaration above them sources."""
    unsourced: list[str] = []
    sources: tuple[str, ...] = ()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        if found := DECLARATION.search(line):
            sources = tuple(found.group(1).split())
            continue
        prose = re.sub(r"`[^`]*`|\$[^$]*\$", " ", line)
        for sentence in re.split(r"(?<=[.;])\s", prose):
            if ESTIMATE in sentence.lower():
                continue
            unsourced.extend(
                f"{shown} ({sentence.strip()[:60]})"
                for shown in UNIT.findall(sentence)
                if not sources or not _matches(shown, _values(sources))
            )
    return unsourced


@pytest.mark.parametrize("page", PROSE_PAGES)
def test_every_result_quoted_in_prose_is_in_its_committed_output(page: str) -> None:
    assert unsourced_prose_numbers((ROOT / page).read_text(encoding="utf-8")) == []


def test_a_planted_prose_number_is_caught() -> None:
    declared = "<!-- data: docs/data/priors/eval-vae.json -->\n"
    assert unsourced_prose_numbers(declared + "It reaches 100.58 nats per image.") == []
    assert unsourced_prose_numbers(declared + "It reaches 100.5 nats per image.") == [
        "100.5 (It reaches 100.5 nats per image.)"
    ]
    assert unsourced_prose_numbers("It takes about 4 s per epoch.") == [
        "4 (It takes about 4 s per epoch.)"
    ]
    assert unsourced_prose_numbers("An estimate: 95.1 nats.") == []
