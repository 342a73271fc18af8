#!/bin/bash
# Reproduces the shipped paper-000 weights (neural_ae_ros/data/ae/): the hdr_driving splits, then
# the five methods trained one after another with the settings they shipped with. Resumable:
# run it again after an interruption and each method continues from its .resume.pt; a method
# whose .done marker exists is skipped. Usage: scripts/train_ae_methods.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
DATA=${1:-data}
OUT=${2:-neural_ae_ros/data/ae}
NAE=${NAE:-.venv/bin/neural-ae}
mkdir -p "$DATA" "$OUT"
[ -f "$DATA/train_hdr/index.json" ] || $NAE scenes --split train --count 400 --seed 11 --mix hdr_driving --out "$DATA/train_hdr" --workers 2
[ -f "$DATA/val_hdr/index.json" ] || $NAE scenes --split val --count 40 --seed 12 --mix hdr_driving --out "$DATA/val_hdr" --workers 2
# method  steps  minutes (wall-time cap on the 2-core machine; the cosine schedule spans `steps`)
while read -r method steps minutes; do
  [ -f "$OUT/$method.done" ] && { echo "skip $method (done)"; continue; }
  $NAE train --method "$method" --scenes "$DATA/train_hdr" --val-scenes "$DATA/val_hdr" --out "$OUT/$method.pt" \
      --steps "$steps" --batch-size 4 --max-minutes "$minutes" --threads 2 --seed 0
  touch "$OUT/$method.done"
done <<'TABLE'
hybrid_nn 320 24
average 280 12
histogram_nn 300 15
semantic_nn 300 20
gradient 280 12
TABLE
