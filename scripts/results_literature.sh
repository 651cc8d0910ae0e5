#!/usr/bin/env bash
# The IWAE paper's MNIST table at a CPU budget (see scripts/results_literature.py).
# Two lanes of one thread each: IWAE k=50 in one, the cheaper runs in the other.
# Usage: bash scripts/results_literature.sh [EPOCHS] [LONG_EPOCHS]  (defaults 30 and 300)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-30}
long=${2:-300}
out=docs/data/literature
run() { "${PYTHON:-python}" scripts/results_literature.py "$@"; }
(
  run iwae50 --epochs "$epochs" --out "$out/iwae50-e$epochs" > "$out/iwae50-e$epochs.log" 2>&1
) &
(
  run vae --epochs "$epochs" --out "$out/vae-e$epochs" > "$out/vae-e$epochs.log" 2>&1
  run vamp --epochs "$epochs" --out "$out/vamp-e$epochs" > "$out/vamp-e$epochs.log" 2>&1
  run iwae5 --epochs "$epochs" --out "$out/iwae5-e$epochs" > "$out/iwae5-e$epochs.log" 2>&1
  # the VAE continued from its epoch-$epochs checkpoint to the long budget
  cp -r "$out/vae-e$epochs" "$out/vae-e$long"
  run vae --epochs "$long" --out "$out/vae-e$long" --resume > "$out/vae-e$long.log" 2>&1
) &
wait
