"""What importing genlatent adds over importing torch.

Two measures, each in fresh interpreters:

- ``-X importtime``: one interpreter runs ``import torch; import genlatent`` and reports
  the cumulative import time of the ``genlatent`` package and everything it pulls in
  that torch had not (the Python import system's own timer, microseconds);
- wall time, interleaved: ``python -c "import torch"`` and
  ``python -c "import torch, genlatent"`` in turn; the difference of the medians (noisier:
  each interpreter start costs seconds on a busy machine).

Run: ``python -m benchmarks.import_time`` (``--quick`` for a smoke test: one
``-X importtime`` run, no wall-time pairs).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

from benchmarks._common import apply_threads, interleave, parser, print_table, span, write_json


def importtime_seconds() -> float:
    """Cumulative ``-X importtime`` seconds of ``import genlatent`` after ``import torch``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import torch; import genlatent"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "genlatent":
            return int(parts[1]) / 1e6
    raise RuntimeError("genlatent missing from the -X importtime report")


def _interpreter(code: str) -> Any:
    return lambda: subprocess.run([sys.executable, "-c", code], check=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    apply_threads(args.threads)
    repeats = args.repeats or (1 if args.quick else 7)
    cumulative = [importtime_seconds() for _ in range(repeats)]
    payload: dict[str, Any] = {
        "what": "seconds that importing genlatent adds over importing torch",
        "importtime_s": {"median_s": statistics.median(cumulative), "samples_s": cumulative},
    }
    rows = [["-X importtime, cumulative genlatent", f"{statistics.median(cumulative):.3f}"]]
    if not args.quick:
        timings = interleave(
            {
                "torch": _interpreter("import torch"),
                "torch+genlatent": _interpreter("import torch, genlatent"),
            },
            repeats=repeats,
            warmup=1,
        )
        added = timings["torch+genlatent"].median - timings["torch"].median
        payload["wall"] = {name: t.as_dict() for name, t in timings.items()}
        payload["wall_added_s"] = added
        rows += [
            [f"wall, python -c '{code}'", span(timings[name])]
            for name, code in (
                ("torch", "import torch"),
                ("torch+genlatent", "import torch, genlatent"),
            )
        ]
        rows.append(["wall, difference of medians", f"{added:.3f}"])
    print_table(["measure", "seconds: median (range)"], rows)
    path = write_json("import_time", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
