#!/usr/bin/env bash
# The IWAE paper's MNIST table at a CPU budget (see scripts/results_literature.py).
# Two lanes of one thread each: IWAE k=50 in one, the cheaper runs in the other. Every
# objective trains EPOCHS epochs (equal epochs); the VAE also trains 30 epochs and is then
# continued to LONG epochs, to show how far the budget is from the paper's 3,280.
# Usage: bash scripts/results_literature.sh [EPOCHS] [LONG]  (defaults 10 and 200)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-10}
long=${2:-200}
out=docs/data/literature
run() { "${PYTHON:-python}" scripts/results_literature.py "$@"; }
(
  run iwae50 --epochs "$epochs" --out "$out/iwae50-e$epochs" > "$out/iwae50-e$epochs.log" 2>&1
) &
(
  run vae --epochs 30 --out "$out/vae-e30" > "$out/vae-e30.log" 2>&1
  for objective in vae vamp iwae5; do
    run "$objective" --epochs "$epochs" --out "$out/$objective-e$epochs" \
      > "$out/$objective-e$epochs.log" 2>&1
  done
  # the VAE continued from its epoch-30 checkpoint to the long budget
  cp -r "$out/vae-e30" "$out/vae-e$long"
  run vae --epochs "$long" --out "$out/vae-e$long" --resume > "$out/vae-e$long.log" 2>&1
) &
wait
