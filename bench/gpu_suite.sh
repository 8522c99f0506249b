#!/usr/bin/env bash
# GPU benchmark suite: one command on the GPU machine runs every set and writes the JSON results into $OUT
# (default bench/results). Run from the repository root:
#
#   OUT=/path/to/out bash bench/gpu_suite.sh            # all sets, 3 seeds for the synthetic ones
#   SEEDS="0" HEAD_MODEL=standin bash bench/gpu_suite.sh
#
# Sets (issue 5/6): the default monocular schedule at 512 px on 120 synthetic frames, a 16-view NeRSemble DS4
# (550×802) synthetic sequence, and carphone with the default schedule (upscaled to 512×416 like the VHAP
# comparison). Then BENCHMARKS.md is rebuilt from bench/results (copy the JSON files there first if OUT differs).
set -euo pipefail

OUT="${OUT:-bench/results}"
SEEDS="${SEEDS:-0 1 2}"
HEAD_MODEL="${HEAD_MODEL:-open}"
DATA_DIR="${DATA_DIR:-/tmp/vhap_bench_data}"
MV_FRAMES="${MV_FRAMES:-8}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"

common=(--device cuda --backend nvdiffrast --head-model "$HEAD_MODEL" --data-dir "$DATA_DIR" --out-dir "$OUT")

# 1. monocular, default (VHAP) schedule, 120 frames at 512×512
$PY bench/run.py --set synthetic_mono --preset monocular --seeds $SEEDS --num-frames 120 --image-size 512 512 \
  --name synthetic_mono_monocular_cuda "${common[@]}"

# 2. 16-view NeRSemble-like arc at DS4 (H×W = 802×550)
$PY bench/run.py --set synthetic_16view --preset nersemble --seeds $SEEDS --num-frames "$MV_FRAMES" \
  --image-size 802 550 --num-cameras 16 --name synthetic_16view_nersemble_cuda "${common[@]}"

# 3. carphone (real video, no ground truth), default monocular schedule
$PY bench/run.py --set carphone --preset monocular --seeds 0 --head-model "$HEAD_MODEL" --device cuda \
  --backend nvdiffrast --data-dir "$DATA_DIR" --out-dir "$OUT" --name carphone_monocular_cuda || \
  echo "carphone set failed (preprocessing or tracking); the synthetic results are still in $OUT" >&2

if [ "$OUT" = "bench/results" ]; then
  $PY bench/report.py
fi
ls -l "$OUT"
