#!/usr/bin/env bash
# The class-conditional VAE on MNIST: 10 epochs, then the class consistency and Frechet
# distance of 1,000 samples (as the priors section) (balanced over the classes). Raw outputs in docs/data/cvae.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/mnist}
run=${RUN_DIR:-runs/results/cvae-mnist}
out=docs/data/cvae
genlatent() { "${PYTHON:-python}" -m genlatent "$@"; }
genlatent train --model genlatent.models.presets:conditional_vae --dataset mnist \
  --data-dir "$data" --epochs 10 --batch-size 100 --lr 1e-3 --out "$run" --overwrite \
  --no-progress
genlatent eval "$run" --samples 1000 --json > "$out/eval.json"
cp "$run/metrics.jsonl" "$run/config.json" "$out/"
