"""Print the MNIST likelihood table of docs/results.md from docs/data/literature/cli/.

    python scripts/literature_table.py

One row per run folder (written by ``scripts/results_literature.sh``: the run's
``config.json`` and ``metrics.jsonl``, and ``eval.json``, the output of
``genlatent eval RUN --iwae-k 5000 --json``), sorted by epochs then objective, beside the
published numbers of ``docs/data/literature/published.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def objective(config: dict[str, Any]) -> str:
    """The row's objective, read from what the run recorded (not from its folder's name)."""
    samples = int(config["objective"].get("iwae_samples", 1))
    if samples > 1:
        return f"iwae{samples}"
    return "vamp" if config["architecture"].get("vamp_components") else "vae"


def rows() -> list[dict[str, Any]]:
    found = []
    for folder in sorted((DATA / "cli").glob("*/")):
        if not (folder / "config.json").is_file():
            continue  # a row still running: the script copies the run's files last
        config = json.loads((folder / "config.json").read_text())
        metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        found.append(
            {
                "objective": objective(config),
                "epochs": metrics[-1]["epoch"],
                "train_seconds": metrics[-1]["wall_seconds"],
                **json.loads((folder / "eval.json").read_text()),
            }
        )
    order = list(NAMES)
    return sorted(found, key=lambda r: (r["epochs"], order.index(r["objective"])))


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
        minutes = float(row["train_seconds"]) / 60
        print(
            f"| {NAMES[row['objective']]} | {row['epochs']} | {row['iwae_nll']:.2f} "
            f"| {row['elbo_loss']:.2f} | {row['active_units']} | {minutes:.0f} min "
            f"| {published(row['objective'])} |"
        )


if __name__ == "__main__":
    main()
