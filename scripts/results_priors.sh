#!/usr/bin/env bash
# The priors' results (docs/results.md, "A VQ-VAE that generates"): a reduced-width MNIST
# VQ-VAE (EMA codebook + dead-code restarts, 3 epochs), a class-conditional transformer
# and PixelCNN prior over its 7x7 code grids, the 30-epoch reference VAE, and the sample
# quality of each. Raw outputs go to docs/data/priors/; run from the repository root:
#   bash scripts/results_priors.sh [MNIST_DIR] [RUNS_DIR]
set -euo pipefail
data=${1:-../shared/data/mnist}
runs=${2:-runs/results}
out=docs/data/priors
g=(.venv/bin/genlatent)
mkdir -p "$out" "$runs"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

log "VQ-VAE"
"${g[@]}" train vqvae --dataset mnist --data-dir "$data" --epochs 3 --ema \
  --restart-dead-codes 100 --out "$runs/mnist-vqvae" --no-progress --overwrite
for prior in transformer pixelcnn; do
  log "$prior prior"
  start=$(date +%s)
  "${g[@]}" train prior "$runs/mnist-vqvae" --prior "$prior" --conditional --epochs 4 \
    --out "$runs/mnist-vqvae/prior-$prior" --no-progress --overwrite
  echo "{\"prior\": \"$prior\", \"train_wall_seconds\": $(( $(date +%s) - start ))}" \
    > "$out/train-$prior.json"
  start=$(date +%s%N)
  "${g[@]}" sample "$runs/mnist-vqvae" --prior-dir "$runs/mnist-vqvae/prior-$prior" -n 64 \
    --out "$out/samples-$prior.png"
  echo "{\"prior\": \"$prior\", \"sample_80_grids_seconds\": $(( ($(date +%s%N) - start) / 1000000 ))e-3}" \
    > "$out/sample-time-$prior.json"
  "${g[@]}" eval "$runs/mnist-vqvae" --prior-dir "$runs/mnist-vqvae/prior-$prior" \
    --samples 1000 --json > "$out/eval-vqvae-$prior.json"
done
log "uniform codes"
"${g[@]}" eval "$runs/mnist-vqvae" --no-prior --samples 1000 --json > "$out/eval-vqvae-uniform.json"
cp "$runs/mnist-vqvae/prior-transformer/metrics.jsonl" "$out/metrics-transformer.jsonl"
cp "$runs/mnist-vqvae/prior-pixelcnn/metrics.jsonl" "$out/metrics-pixelcnn.jsonl"
log "reference VAE, 30 epochs"
"${g[@]}" train vae --dataset mnist --data-dir "$data" --out "$runs/mnist-vae" --no-progress \
  --overwrite
"${g[@]}" eval "$runs/mnist-vae" --samples 1000 --json > "$out/eval-vae.json"
log "done"
