#!/usr/bin/env bash
# The tokenizer's results (docs/results.md, "An image tokenizer against the plain VQ-VAE")
# and the guided and parallel priors' (same page, "Guidance and parallel sampling"): on
# MNIST, at equal steps (3 epochs of batch 128), the plain VQ-VAE and the tokenizer with
# the same quantizer (EMA codebook, dead-code restarts), a class-conditional transformer
# prior with label dropout over each, the samples of each at guidance scales 1, 2, 3, and
# a MaskGIT prior over the VQ-VAE sampled in 4, 8 and 12 steps. Raw outputs go to
# docs/data/tokenizer/; run from the repository root:
#   bash scripts/results_tokenizer.sh [STAGE...]
# with STAGE among vqvae, tokenizer, tokenizer-perceptual, prior-vqvae, prior-tokenizer,
# maskgit
# (default: all, in that order; the prior stages need their autoencoder's stage first;
# maskgit's outputs are not on the results page yet).
# MNIST_DIR and RUNS_DIR may be set in the environment.
set -euo pipefail
data=${MNIST_DIR:-../shared/data/mnist}
runs=${RUNS_DIR:-runs/tokenizer}
out=docs/data/tokenizer
g=(.venv/bin/genlatent)
mkdir -p "$out" "$runs"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
# the quantizer and budget both autoencoders share: 3 epochs = 1,407 steps of 128 images
common=(--dataset mnist --data-dir "$data" --epochs 3 --ema --restart-dead-codes 100
  --no-progress --overwrite)

autoencoder() {  # NAME MODEL [OPTIONS...]: train, copy its metrics, evaluate reconstructions
  local name=$1 model=$2
  shift 2
  log "$name"
  "${g[@]}" train "$model" "${common[@]}" "$@" --out "$runs/$name"
  cp "$runs/$name/metrics.jsonl" "$out/metrics-$name.jsonl"
  cp "$runs/$name/reconstructions.png" "$out/reconstructions-$name.png"
  "${g[@]}" eval "$runs/$name" --no-prior --samples 1000 --json > "$out/eval-$name.json"
}

prior() {  # RUN_NAME KIND [SCALE...]: a conditional prior with label dropout, then eval per scale
  local name=$1 kind=$2
  shift 2
  log "$kind prior over $name"
  local start
  start=$(date +%s)
  "${g[@]}" train prior "$runs/$name" --prior "$kind" --conditional --label-dropout 0.1 \
    --epochs 4 --out "$runs/$name/prior-$kind" --no-progress --overwrite
  echo "{\"prior\": \"$kind\", \"run\": \"$name\", \"train_wall_seconds\": $(( $(date +%s) - start ))}" \
    > "$out/train-$name-$kind.json"
  cp "$runs/$name/prior-$kind/metrics.jsonl" "$out/metrics-$name-$kind.jsonl"
}

evaluate() {  # RUN_NAME KIND LABEL [EVAL OPTIONS...]: 1,000 samples and reconstructions
  local name=$1 kind=$2 label=$3
  shift 3
  log "eval $name $kind $label"
  "${g[@]}" eval "$runs/$name" --prior-dir "$runs/$name/prior-$kind" --samples 1000 "$@" \
    --json > "$out/eval-$name-$kind-$label.json"
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(vqvae tokenizer tokenizer-perceptual prior-vqvae prior-tokenizer
  maskgit)
for stage in "${stages[@]}"; do
  case $stage in
    vqvae) autoencoder vqvae vqvae ;;
    # the discriminator joins after the first epoch (469 steps), as VQGAN starts it late
    tokenizer) autoencoder tokenizer tokenizer --perceptual-weight 0.1 --disc-start 469 ;;
    # the perceptual term alone: the discriminator's start lies beyond the run
    tokenizer-perceptual) autoencoder tokenizer-perceptual tokenizer --perceptual-weight 0.1 \
      --disc-start 1000000 ;;
    prior-vqvae|prior-tokenizer)
      name=${stage#prior-}
      prior "$name" transformer
      for scale in 1 2 3; do
        evaluate "$name" transformer "g$scale" --guidance-scale "$scale"
      done
      for scale in 1 3; do
        "${g[@]}" sample "$runs/$name" --prior-dir "$runs/$name/prior-transformer" \
          --guidance-scale "$scale" --out "$out/samples-$name-g$scale.png"
      done ;;
    maskgit)
      prior vqvae maskgit
      for steps in 4 8 12; do
        evaluate vqvae maskgit "s$steps" --steps "$steps"
      done
      evaluate vqvae maskgit "s8-g2" --steps 8 --guidance-scale 2 ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
log "done"
