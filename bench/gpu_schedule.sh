#!/usr/bin/env bash
# One device command choosing the `nersemble` preset's schedule on the 150-frame 16-view sequence:
#  1. bench/schedule_sweep.py: every variant tracked at once on the GPU, every evaluated epoch scored against the
#     ground truth;
#  2. the variant to adopt (the cheapest whose face error is ≤ MAX_FACE_MM, else the most accurate) is then
#     measured as the workflow runs it: SHARE_K processes sharing the GPU (bench/gpu_share.py, 16-frame runs
#     projected to 150 frames, evaluation only at the end).
#
#   OUT=/path/to/out bash bench/gpu_schedule.sh                     # the variants below
#   OUT=/path/to/out VARIANTS_FILE=my_variants.txt bash bench/gpu_schedule.sh
#
# Knobs: VARIANTS_FILE (one NAME=FLAGS per line; default: the list below), FRAMES (150), EVAL_EPOCHS
# ("0 5 10 15"), PARALLEL (8), MAX_FACE_MM (0.5), SHARE_K (4; "" = skip step 2), SHARE_FRAMES (16),
# BUDGET_S (570; the four default variants need ~400 s of it, so run them with SHARE_K= and measure the pick's
# sharing cost in a second command),
# NAME (schedule_sweep_16view), DATA (/tmp/vhap_bd), WHEELS (.whl_min), LANDMARKS_FROM (a carried folder of
# detected landmarks, bench/detect_synth_landmarks.py, for the sweep; default: the sequence's synthetic ones).
set -uo pipefail
GPU_THREADS=2
GPU_WHEELS=.whl_min
. "$(dirname "$0")/gpu_env.sh"
DATA="${DATA:-/tmp/vhap_bd}"
NAME="${NAME:-schedule_sweep_16view}"
RES="$OUT/results"  # straight into $OUT: a run cut off at the time limit still returns what it wrote
mkdir -p "$RES"
install_wheels
build_kernels
stamp "built"
if [ -n "${VARIANTS_FILE:-}" ]; then
  mapfile -t VARIANTS <"$VARIANTS_FILE"
else
  # the preset (15 global epochs at global_lr_scale 0.03, Session 11) against VHAP's global learning rate, a
  # shorter stage and the shared tensors left out (docs/dev/notes/preset_history.md, `nersemble`)
  G="--pipeline.rgb-global-tracking.params pose joints expr texture lights dynamic_offset"
  VARIANTS=(
    "preset="
    "glr10=--pipeline.global-lr-scale 0.1"
    "e10=--pipeline.rgb-global-tracking.num-epochs 10"
    "noshape=$G"
  )
fi
args=()
for v in "${VARIANTS[@]}"; do [ -n "$v" ] && args+=(--variant "$v"); done
reserve=$([ -n "${SHARE_K-4}" ] && echo 120 || echo 15)
t=$(($(left) - reserve))
timeout "$t" python3 bench/schedule_sweep.py "${args[@]}" --num-frames "${FRAMES:-150}" \
  --eval-epochs ${EVAL_EPOCHS:-0 5 10 15} --parallel "${PARALLEL:-8}" --device cuda --data-dir "$DATA" \
  --out-dir "$RES" --name "$NAME" --budget-s "$((t - 40))" ${LANDMARKS_FROM:+--landmarks-from "$LANDMARKS_FROM"} \
  >"$OUT/sweep.log" 2>&1
stamp "sweep rc=$?"
grep -E "^schedule_sweep|: e[0-9]|wrote|rror" "$OUT/sweep.log" | tail -30
cp "$RES/$NAME.json" "$DATA/" 2>/dev/null  # $OUT is emptied before the next command; a warm machine keeps $DATA
if [ -n "${SHARE_K-4}" ] && [ -f "$RES/$NAME.json" ]; then
  read -r pick flags < <(python3 bench/schedule_sweep.py --pick "$RES/$NAME.json" "${MAX_FACE_MM:-0.5}")
  stamp "picked $pick: $flags"
  t=$(($(left) - 15))
  # shellcheck disable=SC2086  # flags are one word each
  timeout "$t" python3 bench/gpu_share.py --k ${SHARE_K-4} --num-frames "${SHARE_FRAMES:-16}" --project-frames "${FRAMES:-150}" \
    --device cuda --data-dir "$DATA" --out-dir "$RES" --name "gpu_share_16view_$pick" --budget-s "$((t - 20))" \
    -- $flags --pipeline.eval-epochs >"$OUT/share.log" 2>&1
  stamp "share rc=$?"; grep -E "^k=|wrote|rror" "$OUT/share.log" | tail -8
fi
(cd "$DATA" && tar czf "$OUT/sweep_logs.tgz" --exclude='*.npz' --exclude='*.pt' --exclude='*.mp4' --exclude='*.jpg' \
  --exclude='*.png' --exclude='*.obj' --exclude='checkpoints' sweep_runs share_runs 2>/dev/null)
ls -la "$OUT"
