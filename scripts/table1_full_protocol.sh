#!/usr/bin/env bash
# Issue 7's measurements on the full protocol: the 400-pair hdr_driving test split (seed 2026),
# horizontal flips, then
#   1. `neural-ae headroom` (13-point sweep -3..+3 EV, per-scene oracle, one step of average and
#      gradient at k = 1.5 / 4 / 10, shipped detector);
#   2. `neural-ae benchmark` (paper 000 Table 1: five methods with their own detectors, 12 repeats,
#      0.25 EV oracle sweep scored with hybrid_nn's detector).
# Both resume from their caches. SHARDS processes of THREADS torch threads each share the work
# (--shard I/N); DEVICE is where the detectors run (cpu or cuda; the sensor and ISP simulation
# stays on the CPU, so noise draws do not depend on it).
#
#   scripts/table1_full_protocol.sh OUTDIR [DEVICE] [SHARDS] [THREADS] [STAGES]
#   e.g. scripts/table1_full_protocol.sh out/full cpu 1 2          # 2-core machine: hours
#        scripts/table1_full_protocol.sh out/full cuda 8 2         # a 16-core GPU machine: minutes
#
# STAGES (default "scenes headroom benchmark") picks stages; SCENES (env) the scene directory
# (default data/test_hdr_400), NEURAL_AE (env) the command (default neural-ae).
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [DEVICE] [SHARDS] [THREADS] [STAGES]}
DEVICE=${2:-cpu}
SHARDS=${3:-1}
THREADS=${4:-2}
STAGES=${5:-scenes headroom benchmark}
SCENES=${SCENES:-data/test_hdr_400}
read -r -a NAE <<< "${NEURAL_AE:-neural-ae}"
mkdir -p "$OUT"

sharded() {  # run one neural-ae command in SHARDS parallel processes, then wait for all
    local pids=() i
    for ((i = 0; i < SHARDS; i++)); do
        "${NAE[@]}" "$@" --shard "$i/$SHARDS" --threads "$THREADS" --device "$DEVICE" --no-progress \
            > "$OUT/$1_shard$i.log" 2>&1 &
        pids+=($!)
    done
    local rc=0
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || { rc=$?; echo "$1 shard $i failed (exit $rc): $OUT/$1_shard$i.log"; }; done
    return $rc
}

for stage in $STAGES; do
    start=$(date +%s)
    case $stage in
    scenes)
        if [ ! -f "$SCENES/index.json" ]; then
            "${NAE[@]}" scenes --split test --count 400 --seed 2026 --mix hdr_driving --out "$SCENES" \
                --workers $((SHARDS * THREADS)) > "$OUT/scenes.log" 2>&1
        fi ;;
    headroom)
        sharded headroom --scenes "$SCENES"
        "${NAE[@]}" headroom --scenes "$SCENES" --threads "$THREADS" --device "$DEVICE" --no-progress \
            --json "$OUT/headroom_hdr_driving_400.json" > "$OUT/headroom_report.txt" 2>&1 ;;
    benchmark)
        args=(--scenes "$SCENES" --methods average gradient histogram_nn semantic_nn hybrid_nn oracle
              --shifts 1.5 4 10 --repeats 12 --oracle-step 0.25 --oracle-detector hybrid_nn)
        sharded benchmark "${args[@]}"
        "${NAE[@]}" benchmark "${args[@]}" --threads "$THREADS" --device "$DEVICE" --no-progress \
            --json "$OUT/benchmark_table1_full.json" --markdown "$OUT/benchmark_table1_full.md" \
            > "$OUT/benchmark_report.txt" 2>&1 ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
    echo "$stage: $(( $(date +%s) - start )) s"
done
