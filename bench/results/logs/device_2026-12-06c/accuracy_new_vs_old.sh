#!/usr/bin/env bash
# Session 12 device command 1 (issue 19): the 2-frame synthetic_16view set (3 seeds, 16 views at DS4 802x550)
# with the current `nersemble` preset (25 sequential steps, 15 global epochs at global_lr_scale 0.03) beside
# VHAP's schedule (50 steps, 30 epochs at 0.1, the schedule of the committed 0.36-0.38 mm figures), all six
# runs at once on one GPU so that both see the same card and the same contention. From the repository root:
#   OUT=$OUT bash bench/results/logs/device_2026-12-06c/accuracy_new_vs_old.sh      (carry .whl_min)
set -uo pipefail
BUDGET_S="${BUDGET_S:-570}"; GPU_THREADS=2; GPU_WHEELS=.whl_min
. bench/gpu_env.sh
install_wheels; build_kernels; stamp "built"
DATA=/tmp/vhap_bd; RES=/tmp/vhap_acc; mkdir -p "$DATA" "$RES"
OLD=(--pipeline.rgb-sequential-tracking.num-steps 50 --pipeline.rgb-global-tracking.num-epochs 30
     --pipeline.global-lr-scale 0.1)
run() {  # run VARIANT SEED [extra track flags]
  local v=$1 s=$2; shift 2
  timeout $(($(left) - 40)) python3 bench/run.py --set synthetic_16view --preset nersemble --seeds "$s" \
    --num-frames 2 --image-size 802 550 --num-cameras 16 --name "mv_${v}_s$s" --device cuda --backend cuda \
    --data-dir "$DATA" --out-dir "$RES" -- --log.no-progress "$@" >"$RES/mv_${v}_s$s.log" 2>&1 &
  pids+=($!)
}
pids=()
for s in 0 1 2; do run new "$s"; done
# the first run of a seed generates (and caches) its sequence; the second waits for it
for _ in $(seq 180); do
  [ "$(ls "$DATA"/sequences_multiview/*/sequences/*/ground_truth/meta.json 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 1
done
stamp "sequences ready"
for s in 0 1 2; do run old "$s" "${OLD[@]}"; done
( while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) >"$RES/gpu_util.log" 2>&1 &
mon=$!
for p in "${pids[@]}"; do wait "$p"; done
kill "$mon"; stamp "runs done"
for f in "$RES"/mv_*.log; do echo "== $f"; grep -vE "^\s*$|it/s" "$f" | tail -2; done
for v in new old; do
  python3 bench/merge_results.py --name "synthetic_16view_nersemble_${v}" --out-dir "$RES" "$RES"/mv_"$v"_s*.json
done
python3 bench/accuracy_summary.py "$RES"/synthetic_16view_*.json 2>&1 | tee "$RES/accuracy_summary.txt"
tar czf "$OUT/acc_results.tgz" -C /tmp vhap_acc
cp "$RES"/synthetic_16view_*.json "$RES"/accuracy_summary.txt "$OUT"/ 2>/dev/null; stamp "end"
