"""Shared pieces of the benchmarks: interleaved timing, a matmul peak, tables and JSON.

Every benchmark times its contenders in one process, interleaved (A B A B ...), so that
the drift of a shared machine (other jobs, frequency changes) hits each of them alike, and
reports the median and the range (min, max) of each. Ratios are ratios of medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "RESULTS_DIR",
    "Timing",
    "apply_threads",
    "cpu_model",
    "environment",
    "gflops",
    "interleave",
    "measure_in_subprocesses",
    "parser",
    "print_table",
    "rate_span",
    "rss_growth",
    "span",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Timing:
    """Seconds per call of one contender: all samples, their median, min and max."""

    def __init__(self, samples: Sequence[float]) -> None:
        if not samples:
            raise ValueError("a timing needs at least one sample")
        self.samples = [float(s) for s in samples]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": self.low,
            "max_s": self.high,
            "samples_s": self.samples,
        }


def interleave(
    contenders: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    inner: int = 1,
) -> dict[str, Timing]:
    """Time each contender ``repeats`` times, in turn (A B A B ...), after ``warmup`` rounds.

    Each sample is the mean wall time of ``inner`` consecutive calls. The order within a
    round alternates (A B, then B A) so neither contender always runs first after the other.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            fn = contenders[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - start) / inner)
    gc.collect()
    return {name: Timing(values) for name, values in samples.items()}


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--repeats``, ``--out``, ``--threads``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (a smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per contender")
    p.add_argument("--out", type=Path, default=None, help="where to write the JSON results")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    return p


def apply_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def write_json(name: str, payload: dict[str, Any], out: Path | None, *, quick: bool) -> Path:
    """Write ``payload`` (plus the environment) to ``out`` or ``benchmarks/results/NAME.json``.

    A ``--quick`` run goes to ``benchmarks/results/quick/NAME.json`` (ignored by git), so a
    smoke test never overwrites the numbers the documentation cites.
    """
    default = RESULTS_DIR / "quick" if quick else RESULTS_DIR
    path = out if out is not None else default / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "quick": quick, "environment": environment(), **payload}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print (and return) a Markdown table."""
    cells = [[_format(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    text = "\n".join(lines)
    print(text)
    return text


def _format(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 100_000:
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def span(timing: Timing, scale: float = 1.0, digits: int = 3) -> str:
    """``median (min-max)`` of ``timing`` times ``scale``, e.g. milliseconds."""
    return (
        f"{timing.median * scale:.{digits}g} "
        f"({timing.low * scale:.{digits}g}-{timing.high * scale:.{digits}g})"
    )


def rate_span(timing: Timing, amount: float) -> str:
    """``amount`` per second: median (slowest-fastest)."""
    return f"{amount / timing.median:,.0f} ({amount / timing.high:,.0f}-{amount / timing.low:,.0f})"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_growth(step: Callable[[], object]) -> int:
    """Peak resident-memory growth (bytes) while ``step()`` runs, in this process.

    Reads ``VmRSS`` before the step and ``VmHWM`` (the peak) after it, with the peak first
    reset to the current RSS through ``/proc/self/clear_refs``. It counts every page the
    step touched at its high point, torch's or not; memory already resident and reused
    (freed earlier, kept by the allocator) is not counted, so run it in a fresh process
    (`measure_in_subprocesses`). (``ru_maxrss`` would not do: after ``exec`` it keeps the
    parent's peak.) Linux only.
    """
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - before) * 1024


def measure_in_subprocesses(module: str, cases: Sequence[Sequence[str]]) -> list[int]:
    """Run ``python -m MODULE --memory-case *CASE`` for each case, two at a time.

    Each subprocess prints a JSON line ``{"peak_bytes": ...}`` (from `rss_growth`); the
    subprocesses use this process's thread count.
    """
    command = [sys.executable, "-m", module, "--threads", str(torch.get_num_threads())]
    results: list[int] = []
    for start in range(0, len(cases), 2):
        procs = [
            subprocess.Popen([*command, "--memory-case", *case], stdout=subprocess.PIPE, text=True)
            for case in cases[start : start + 2]
        ]
        for case, proc in zip(cases[start : start + 2], procs, strict=True):
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"memory measurement {module} {list(case)} failed")
            results.append(int(json.loads(out.strip().splitlines()[-1])["peak_bytes"]))
    return results
