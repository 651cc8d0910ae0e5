"""Print the MNIST likelihood table of docs/results.md from docs/data/literature/*/result.json.

    python scripts/literature_table.py

One row per run directory that has a ``result.json`` (written by
``scripts/results_literature.py`` after its IS-5000 evaluation), sorted by epochs then
objective; the published numbers are those the issue and pythae's README quote.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path("docs/data/literature")
NAMES = {
    "vae": "VAE",
    "iwae5": "IWAE, k = 5",
    "iwae50": "IWAE, k = 50",
    "vamp": "VampPrior, K = 500",
}
ORDER = list(NAMES)
PUBLISHED = {"vae": "89.9 / 89.78", "iwae50": "87.1 / 86.82", "vamp": "85.57 / 85.79"}


def rows() -> list[dict[str, object]]:
    found = [json.loads(path.read_text()) for path in sorted(DATA.glob("*/result.json"))]
    return sorted(found, key=lambda r: (int(r["epochs"]), ORDER.index(str(r["objective"]))))


def main() -> None:
    print(
        "| Objective | Epochs | Test NLL, IS-5000 (nats) | Test -ELBO | Active units "
        "| Train time | Published (paper / pythae) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows():
        objective = str(row["objective"])
        minutes = float(row["train_seconds"]) / 60
        print(
            f"| {NAMES[objective]} | {row['epochs']} | {row['test_nll_is5000']:.2f} "
            f"| {row['test_elbo_loss']:.2f} | {row['active_units']} | {minutes:.0f} min "
            f"| {PUBLISHED.get(objective, '')} |"
        )


if __name__ == "__main__":
    main()
