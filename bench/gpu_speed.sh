#!/usr/bin/env bash
# One device command for the tracker's speed (issue 6): builds the CUDA kernels, runs the GPU render tests
# (the `cuda` backend against the torch reference and nvdiffrast), profiles tracker steps with both
# rasterisers (eager and CUDA-graph replay), then the full default monocular schedule on carphone with the
# `cuda` backend. Results go to $OUT (copy them to bench/results/). From the repository root on the device:
#
#   OUT=/path/to/out bash bench/gpu_speed.sh
#
# Knobs: BUDGET_S (560), DATA (/tmp/vhap_bd), WHEELS (.whl_min .whl_av: bench/prepare_wheels.sh makes them), SKIP_TESTS=1, SKIP_CARPHONE=1,
# BACKENDS ("cuda nvdiffrast"), STAGES (profiled stages), KERNELS (print the N longest GPU kernels per stage),
# PARITY=0 (skip the render parity run after the GPU tests), TESTS (test files; default: all marked gpu),
# CARPHONE_DATA (.benchdata: the preprocessed carphone folder, see bench/run.py --set carphone), CARPHONE_ARGS (extra
# `vhap track` flags for the carphone run), CARPHONE_BACKEND (cuda; "preset" = no --render.backend flag, i.e. the
# preset's 'auto'), PROFILE_RESERVE_S (200: seconds kept for what follows the profiles), CARPHONE_B_ARGS (when set, a second carphone run with these flags, named
# carphone_monocular_cuda_graphs_b), COMPILE=1 (also profile the cuda backend with --exp.compile: torch.compile of
# the head model and regularisers inside the recorded step).
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
DATA="${DATA:-/tmp/vhap_bd}"
mkdir -p "$DATA"

install_wheels
build_kernels
stamp "built"

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu ${TESTS:-$(grep -l "mark.gpu" tests/*.py)} >"$OUT/gpu_tests.log" 2>&1
  stamp "gpu tests rc=$?"; grep -E "passed|failed|Error|assert" "$OUT/gpu_tests.log" | tail -8
  if [ "${PARITY:-1}" = 1 ]; then
    timeout 100 python3 bench/render_parity.py --backends cuda nvdiffrast --views 4 --size 512 --iters 200 \
      --scenes open --output "$OUT/render_parity_cuda_vs_nvdiffrast.json" >"$OUT/parity.log" 2>&1
    stamp "parity rc=$?"; grep -E '"(tri_id_agreement|rgb_mad_interior|grad_cosine|all_pass)"' "$OUT/parity.log" | head -8
  fi
fi

for be in ${BACKENDS:-cuda nvdiffrast}; do
  t=$(($(left) - ${PROFILE_RESERVE_S:-200})); [ "$t" -gt 150 ] && t=150
  [ "$t" -lt 40 ] && { stamp "no time for the $be profile"; continue; }
  timeout "$t" python3 bench/track_profile.py --device cuda --backend "$be" --data-dir "$DATA" \
    --stages ${STAGES:-lmk_init_all rgb_init_all rgb_sequential_tracking rgb_global_tracking} --warmup 3 --steps 20 \
    --profile-steps 2 --print-kernels "${KERNELS:-0}" --out "$OUT/track_profile_${be}.json" >"$OUT/profile_${be}.log" 2>&1
  stamp "profile $be rc=$?"
  python3 - "$OUT/track_profile_${be}.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d.get("results", []):
    g = r.get("cuda_graph") or {}
    print(f"  {r.get('set', '?'):>12} {r['stage']:<26} eager {r['ms_per_step']:7.2f} ms  kernels "
          f"{r.get('device_ms_total_per_step') or 0:6.2f} ms  graph {g.get('ms_per_step', float('nan')):7.2f} ms "
          f"recorded={g.get('recorded')}")
EOF
done

if [ "${SKIP_CARPHONE:-0}" != 1 ] && [ -d "${CARPHONE_DATA:-.benchdata}/carphone" ]; then
  be=${CARPHONE_BACKEND:-cuda}; be_args=(--backend "$be"); [ "$be" = preset ] && be_args=()
  t=$(($(left) - 10))
  if [ "$t" -gt 60 ]; then
    timeout "$t" python3 bench/run.py --set carphone --preset monocular --seeds 0 --device cuda "${be_args[@]}" \
      --data-dir "${CARPHONE_DATA:-.benchdata}" --out-dir "$OUT" --name carphone_monocular_cuda_graphs \
      -- ${CARPHONE_ARGS:-} >"$OUT/carphone.log" 2>&1
    stamp "carphone rc=$?"; grep -vE "^\s*$|it/s" "$OUT/carphone.log" | tail -12
    cp "${CARPHONE_DATA:-.benchdata}/runs/carphone_monocular_cuda_graphs/seed0/metrics.json" "$OUT/carphone_metrics.json"
    python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['timing']; print({k: v for k, v in t.items() if k != 'stages'})" "$OUT/carphone_metrics.json"
  fi
  t=$(($(left) - 10))
  if [ -n "${CARPHONE_B_ARGS:-}" ] && [ "$t" -gt 60 ]; then
    timeout "$t" python3 bench/run.py --set carphone --preset monocular --seeds 0 --device cuda "${be_args[@]}" \
      --data-dir "${CARPHONE_DATA:-.benchdata}" --out-dir "$OUT" --name carphone_monocular_cuda_graphs_b \
      -- ${CARPHONE_B_ARGS} >"$OUT/carphone_b.log" 2>&1
    stamp "carphone (b: ${CARPHONE_B_ARGS}) rc=$?"; grep -vE "^\s*$|it/s" "$OUT/carphone_b.log" | tail -4
  fi
fi
if [ "${COMPILE:-0}" = 1 ]; then
  t=$(($(left) - 15)); [ "$t" -gt 200 ] && t=200
  if [ "$t" -gt 60 ]; then
    timeout "$t" python3 bench/track_profile.py --device cuda --backend cuda --data-dir "$DATA" --sets mono_16x512 \
      --stages ${COMPILE_STAGES:-rgb_global_tracking} --warmup 4 --steps 20 --profile-steps 2 \
      --out "$OUT/track_profile_cuda_compile.json" -- --exp.compile >"$OUT/profile_compile.log" 2>&1
    stamp "compile profile rc=$?"; grep -E "^\[|rror|ms" "$OUT/profile_compile.log" | tail -8
  fi
fi

# the device returns a limited number of files: pack the JSONs and logs into one archive as well
tar czf "$OUT/all.tgz" -C "$OUT" $(cd "$OUT" && ls | grep -v all.tgz) 2>/dev/null
ls "$OUT"; stamp "end"
