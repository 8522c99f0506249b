#!/usr/bin/env bash
# One device command comparing tracking schedules on the 150-frame 16-view sequence (bench/schedule_sweep.py):
# every variant tracked at once on the GPU, every evaluated epoch scored against the ground truth.
#
#   OUT=/path/to/out bash bench/gpu_schedule.sh                     # the variants below
#   OUT=/path/to/out VARIANTS_FILE=my_variants.txt bash bench/gpu_schedule.sh
#
# Knobs: VARIANTS_FILE (one NAME=FLAGS per line; default: the list below), FRAMES (150), EVAL_EPOCHS
# ("0 5 10 15 20 30"), PARALLEL (8), BUDGET_S (570), NAME (schedule_sweep_16view), DATA (/tmp/vhap_bd),
# WHEELS (.whl_min).
set -uo pipefail
GPU_THREADS=2
GPU_WHEELS=.whl_min
. "$(dirname "$0")/gpu_env.sh"
DATA="${DATA:-/tmp/vhap_bd}"
mkdir -p "$DATA/results"
install_wheels
build_kernels
stamp "built"
if [ -n "${VARIANTS_FILE:-}" ]; then
  mapfile -t VARIANTS <"$VARIANTS_FILE"
else
  VARIANTS=(
    "base="
    "s25e15=--pipeline.rgb-sequential-tracking.num-steps 25 --pipeline.rgb-global-tracking.num-epochs 15"
    "s25e15exc=--pipeline.rgb-sequential-tracking.num-steps 25 --pipeline.rgb-global-tracking.num-epochs 15 --w.silhouette-form excess"
    "s25e15rexp=--pipeline.rgb-sequential-tracking.num-steps 25 --pipeline.rgb-global-tracking.num-epochs 15 --w.reg-expr 1e-3"
    "s15e10=--pipeline.rgb-sequential-tracking.num-steps 15 --pipeline.rgb-global-tracking.num-epochs 10"
  )
fi
args=()
for v in "${VARIANTS[@]}"; do [ -n "$v" ] && args+=(--variant "$v"); done
t=$(($(left) - 15))
timeout "$t" python3 bench/schedule_sweep.py "${args[@]}" --num-frames "${FRAMES:-150}" \
  --eval-epochs ${EVAL_EPOCHS:-0 5 10 15 20 30} --parallel "${PARALLEL:-8}" --device cuda --data-dir "$DATA" \
  --out-dir "$DATA/results" --name "${NAME:-schedule_sweep_16view}" --budget-s "$((t - 40))" \
  >"$OUT/sweep.log" 2>&1
stamp "sweep rc=$?"
grep -E "^schedule_sweep|: e[0-9]|wrote|rror" "$OUT/sweep.log" | tail -30
cp "$DATA"/results/*.json "$OUT/" 2>/dev/null
(cd "$DATA/sweep_runs" && tar czf "$OUT/sweep_logs.tgz" --exclude='*.npz' --exclude='*.pt' --exclude='*.mp4' \
  --exclude='*.jpg' --exclude='*.png' --exclude='*.obj' --exclude='checkpoints' . 2>/dev/null)
ls -la "$OUT"
