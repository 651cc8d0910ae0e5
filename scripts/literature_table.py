"""Print the MNIST likelihood table of docs/results.md from docs/data/literature/.

    python scripts/literature_table.py

One row per run directory with a ``result.json`` (written by
``scripts/results_literature.py`` after its IS-5000 evaluation), sorted by epochs then
objective, beside the published numbers of ``docs/data/literature/published.json``.
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
KEYS = {"vae": "vae", "iwae5": "iwae_k5", "iwae50": "iwae_k50", "vamp": "vamp_k500"}
SOURCES = (
    "burda_2016_table_1_one_stochastic_layer",
    "paper_values_as_pythae_quotes_them",
    "pythae_reproduction",
)


def rows() -> list[dict[str, object]]:
    found = [json.loads(path.read_text()) for path in sorted(DATA.glob("*/result.json"))]
    order = list(NAMES)
    return sorted(found, key=lambda r: (int(r["epochs"]), order.index(str(r["objective"]))))


def published(objective: str) -> str:
    """Burda et al.'s number, then the paper's and pythae's as pythae's README has them."""
    quoted = json.loads((DATA / "published.json").read_text())
    values = [quoted[source].get(KEYS[objective]) for source in SOURCES]
    return " / ".join("-" if value is None else f"{value}" for value in values)


def main() -> None:
    print(
        "| objective | epochs | test NLL, IS-5000 (nats) | test -ELBO | active units "
        "| train time | published: Burda et al. / paper / pythae |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows():
        objective = str(row["objective"])
        minutes = float(str(row["train_seconds"])) / 60
        print(
            f"| {NAMES[objective]} | {row['epochs']} | {row['test_nll_is5000']:.2f} "
            f"| {row['test_elbo_loss']:.2f} | {row['active_units']} | {minutes:.0f} min "
            f"| {published(objective)} |"
        )


if __name__ == "__main__":
    main()
