#!/usr/bin/env bash
# Real-video whole-head benchmark on the GPU (issue 15 item 6): every clip of bench/realvideo.py tracked at full
# resolution with the `monocular` preset, rendered back and scored (vhap.eval.whole_head), plus the
# failed-landmark check (bench/landmark_failures.py) at full resolution. Matting and landmarks need MediaPipe,
# which the device image lacks: prepare the clips on the development machine and let the folder travel:
#
#   python -c "import sys; sys.path.insert(0, 'bench'); import realvideo as r; from pathlib import Path; \
#     [r.prepare_clip(c, Path('.benchdata/realvideo')) for c in r.CLIPS.values()]"
#   # then, on the device machine, from the repository root (.benchdata, .whl and .whl_av travel untracked):
#   OUT=/path/to/out bash bench/gpu_realvideo.sh
#
# Writes $OUT/realvideo_monocular_cuda.json (+ strips under $OUT/plots/) and
# $OUT/landmark_failures_monocular_cuda.json; copy them into bench/results and run `python bench/report.py`.
# Knobs: BUDGET_S (560), REALVIDEO_DATA (.benchdata), WHEELS (.whl_min .whl .whl_av: bench/prepare_wheels.sh), HEAD_MODEL (open), NAME
# (realvideo_monocular_cuda), TRACK_ARGS (extra `vhap track` flags), SKIP_FAILURES=1.
set -uo pipefail
GPU_WHEELS=".whl_min .whl .whl_av"
. "$(dirname "$0")/gpu_env.sh"
DATA="${REALVIDEO_DATA:-.benchdata}"
NAME="${NAME:-realvideo_monocular_cuda}"

[ -f "$DATA/realvideo/carphone/landmark2d/mediapipe.npz" ] || { echo "no prepared clips in $DATA/realvideo (see the header)"; exit 2; }
install_wheels
stamp "wheels installed"

t=$(($(left) - 150)); [ "${SKIP_FAILURES:-0}" = 1 ] && t=$(($(left) - 20))
timeout "$t" python3 bench/run.py --set realvideo --preset monocular --device cuda --data-dir "$DATA" \
  --head-model "${HEAD_MODEL:-open}" --out-dir "$OUT" --name "$NAME" -- ${TRACK_ARGS:-} >"$OUT/realvideo.log" 2>&1
stamp "realvideo rc=$?"; grep -E "^[a-z_]+: coverage|rror" "$OUT/realvideo.log" | tail -12

if [ "${SKIP_FAILURES:-0}" != 1 ] && [ "$(left)" -gt 60 ]; then
  timeout $(($(left) - 10)) python3 bench/landmark_failures.py --track-preset monocular --device cuda --full-resolution \
    --data-dir "$DATA" --out-dir "$OUT" --name landmark_failures_monocular_cuda >"$OUT/landmark_failures.log" 2>&1
  stamp "landmark failures rc=$?"; grep -E '"mouth_(gap|nme)|rror' "$OUT/landmark_failures.log" | tail -10
fi
