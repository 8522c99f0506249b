#!/usr/bin/env bash
# One device call that runs bench/gpu_speed.sh (GPU tests, step profile, carphone) and then bench/gpu_accuracy.sh
# (synthetic accuracy), each in its own time budget, and returns one archive of each under $OUT (the device tool
# returns at most 8 files). Knobs are passed through to both scripts (see their headers); SPEED_S (300) and
# ACC_S (270) are their budgets. From the repository root on the device:
#
#   OUT=/path/to/out SPEED_S=300 ACC_S=270 bash bench/gpu_check.sh
set -uo pipefail
OUT="${OUT:-/tmp/vhap_gpu_out}"
mkdir -p "$OUT"
OUT=/tmp/vhap_speed_out BUDGET_S="${SPEED_S:-300}" bash bench/gpu_speed.sh 2>&1 | tee "$OUT/speed_console.log"
cp /tmp/vhap_speed_out/all.tgz "$OUT/speed.tgz" 2>/dev/null
OUT=/tmp/vhap_acc_out BUDGET_S="${ACC_S:-270}" bash bench/gpu_accuracy.sh 2>&1 | tee "$OUT/accuracy_console.log"
cp /tmp/vhap_acc_out/results.tgz "$OUT/accuracy.tgz" 2>/dev/null
cp /tmp/vhap_acc_out/accuracy_summary.txt "$OUT/" 2>/dev/null
ls -la "$OUT"
