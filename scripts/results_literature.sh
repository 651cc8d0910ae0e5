#!/usr/bin/env bash
# The IWAE paper's MNIST table through the commands a user types (docs/results.md): for
# each row, `genlatent train` (784-200-200-50, tanh, Bernoulli, dynamically binarized MNIST,
# the decoder's output bias from the mean pixel by default) and then
# `genlatent eval --iwae-k 5000` on the 10,000 test images. The raw outputs (config.json,
# metrics.jsonl, eval.json, eval_seconds.json) go to docs/data/literature/cli/ROW-eEPOCHS;
# `python scripts/literature_table.py` prints the table from them.
# Usage: bash scripts/results_literature.sh [EPOCHS] [DATA_DIR]   (defaults 10, ../shared/data/mnist)
#        ROWS="vae vamp" bash scripts/results_literature.sh 10     (default: vae iwae5 iwae50 vamp)
# GENLATENT overrides the command (e.g. "python -m genlatent"); RUNS the run folders' parent.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-10}
data=${2:-../shared/data/mnist}
runs=${RUNS:-runs/literature}
out=docs/data/literature/cli
read -r -a genlatent <<< "${GENLATENT:-genlatent}"
model=(vae --dataset mnist --data-dir "$data" --binarize --hidden 200,200 --activation tanh
       --latent-dim 50)
declare -A objective=(
  [vae]="" [iwae5]="--iwae-samples 5" [iwae50]="--iwae-samples 50" [vamp]="--vamp-components 500"
)
for row in ${ROWS:-vae iwae5 iwae50 vamp}; do
  name=$row-e$epochs
  # shellcheck disable=SC2086  # the objective's flags split into words
  "${genlatent[@]}" train "${model[@]}" --epochs "$epochs" ${objective[$row]} \
    --out "$runs/$name" --no-progress
  mkdir -p "$out/$name"
  began=$SECONDS
  "${genlatent[@]}" eval "$runs/$name" --iwae-k 5000 --checkpoint last --json > "$out/$name/eval.json"
  echo "{\"eval_seconds\": $((SECONDS - began))}" > "$out/$name/eval_seconds.json"
  cp "$runs/$name/config.json" "$runs/$name/metrics.jsonl" "$out/$name/"
done
