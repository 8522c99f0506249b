#!/usr/bin/env bash
# One device command for issues 5 and 6 (about 9 minutes on one H100): tracker step profile (eager, CUDA-graphed
# landmark stage), synthetic accuracy (3 monocular + 3 sixteen-view seeds in parallel processes, scored on the
# GPU), a torch.compile step profile if time is left. Every result is a JSON file under $RES, packed into
# $OUT/results.tgz with the logs; the merged results, profiles and summary are also copied to $OUT. Run from the repository root on the device machine:
#
#   OUT=/path/to/out bash bench/gpu_accuracy.sh
#
# Knobs (environment): SEEDS ("0 1 2"), MONO_FRAMES (32, 512x512, `monocular` preset = the default schedule),
# MV_FRAMES (2 timesteps, 16 views at DS4 802x550, `nersemble` preset), BUDGET_S (545: the whole script),
# ACC_TIMEOUT_S (420: at most, for the parallel accuracy phase; it gets what is left less 40 s), WHEELS (.whl_min .whl_av: wheels the device image lacks, made by bench/prepare_wheels.sh),
# SETS ("mono mv": which sets to run), MONO_TRACK_ARGS (extra `vhap track` flags for the monocular runs, e.g.
# "--w.reg-expr 0.3" for the check proposed in docs/dev/notes/mono_expression_study.md), MONO_VARIANTS (more
# monocular variants beside the first, on the same cached sequences: "b:--w.reg-expr 0.3;c:--w.reg-expr 1.0" runs
# mono_b_s*, mono_c_s*, merged as synthetic_mono_monocular_cuda_b, _c), MONO_B_ARGS (= MONO_VARIANTS="b:ARGS").
# Afterwards, on the development machine: copy res/*.json into bench/results and run `python bench/report.py`.
set -uo pipefail
BUDGET_S="${BUDGET_S:-545}"
GPU_THREADS=2
. "$(dirname "$0")/gpu_env.sh"
SEEDS="${SEEDS:-0 1 2}"
MONO_FRAMES="${MONO_FRAMES:-32}"
MV_FRAMES="${MV_FRAMES:-2}"
ACC_TIMEOUT_S="${ACC_TIMEOUT_S:-420}"
DATA="${DATA:-/tmp/vhap_bd}"
BACKEND="${BACKEND:-cuda}"  # render backend of the tracker runs (cuda: CUDA-graph replay; nvdiffrast: eager)
PROFILE="${PROFILE:-1}"     # 0: skip the step profiles (phases 1 and 3)
RES="${RES:-/tmp/vhap_gpu_res}"  # everything lands here; $OUT gets results.tgz + the key files (≤ 8 files)
mkdir -p "$RES" "$DATA"

# measure a committed state: HEAD copies of files with other people's unfinished edits, if carried
[ -d output/t3_head ] && cp -rv output/t3_head/vhap/. vhap/ | tail -3

# 0. wheels the image lacks (tyro & co., nvdiffrast sources, PyAV for the overlay video)
install_wheels "$RES"
python3 -c "import tyro" || { tail -5 "$RES/pip.log"; echo "wheel install failed"; exit 1; }
stamp "wheels installed"
build_kernels
stamp "nvdiffrast built"

# 1. step profile, uncontended: eager steps of three stages, and whole landmark stages eager vs CUDA-graphed
[ "$PROFILE" = 1 ] && timeout 110 python3 bench/track_profile.py --device cuda --backend nvdiffrast --data-dir "$DATA" \
  --stages lmk_init_all rgb_sequential_tracking rgb_global_tracking --warmup 3 --steps 20 --profile-steps 3 \
  --graph-stages lmk_init_rigid lmk_init_all --graph-steps 200 \
  --out "$RES/track_profile_cuda_v2.json" --print-ops >"$RES/profile.log" 2>&1
[ "$PROFILE" = 1 ] && { stamp "profile rc=$?"; grep -E "^\[|track/|rror" "$RES/profile.log" | head -40; }

# 2. accuracy: every seed of both sets as its own process (timings are contended: see the profile for speed)
acc_t=$(($(left) - 40))  # all the time that is left, less the merge; at most ACC_TIMEOUT_S
[ "$acc_t" -gt "$ACC_TIMEOUT_S" ] && acc_t=$ACC_TIMEOUT_S
stamp "accuracy phase: $acc_t s"
common=(--device cuda --backend "$BACKEND" --data-dir "$DATA" --out-dir "$RES")
pids=()
SETS="${SETS:-mono mv}"
read -r -a mono_extra <<<"${MONO_TRACK_ARGS:-}"
VARIANTS="${MONO_VARIANTS:-}"
[ -z "$VARIANTS" ] && [ -n "${MONO_B_ARGS:-}" ] && VARIANTS="b:$MONO_B_ARGS"
IFS=';' read -r -a variants <<<"$VARIANTS"
for s in $SEEDS; do
  if [[ " $SETS " == *" mono "* ]]; then
    timeout "$acc_t" python3 bench/run.py --set synthetic_mono --preset monocular --seeds "$s" \
      --num-frames "$MONO_FRAMES" --image-size 512 512 --name "mono_s$s" "${common[@]}" -- "${mono_extra[@]}" \
      >"$RES/mono_s$s.log" 2>&1 &
    pids+=($!)
    for v in "${variants[@]}"; do
      tag=${v%%:*}; read -r -a v_extra <<<"${v#*:}"
      # the first variant generates (and caches) the sequence; the others wait for it, then reuse it
      for _ in $(seq 120); do
        ls "$DATA"/sequences_mono/synthetic_mono_512x512_t"$MONO_FRAMES"_s"$s"_*/ground_truth/meta.json >/dev/null 2>&1 && break
        sleep 1
      done
      timeout "$acc_t" python3 bench/run.py --set synthetic_mono --preset monocular --seeds "$s" \
        --num-frames "$MONO_FRAMES" --image-size 512 512 --name "mono_${tag}_s$s" "${common[@]}" -- "${v_extra[@]}" \
        >"$RES/mono_${tag}_s$s.log" 2>&1 &
      pids+=($!)
    done
  fi
  if [[ " $SETS " == *" mv "* ]]; then
    timeout "$acc_t" python3 bench/run.py --set synthetic_16view --preset nersemble --seeds "$s" \
      --num-frames "$MV_FRAMES" --image-size 802 550 --num-cameras 16 --name "mv_s$s" "${common[@]}" \
      >"$RES/mv_s$s.log" 2>&1 &
    pids+=($!)
  fi
done
( while sleep 30; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) \
  >"$RES/gpu_util.log" 2>&1 &
mon=$!
for p in "${pids[@]}"; do wait "$p"; done
kill "$mon" 2>/dev/null
stamp "accuracy runs done"
for f in "$RES"/mono_*s*.log "$RES"/mv_s*.log; do echo "== $f"; grep -vE "^\s*$|it/s" "$f" | tail -3; done
mono=$(ls "$RES"/mono_s*.json 2>/dev/null)
mv=$(ls "$RES"/mv_s*.json 2>/dev/null)
for v in "${variants[@]}"; do
  tag=${v%%:*}; files=$(ls "$RES"/mono_"$tag"_s*.json 2>/dev/null)
  [ -n "$files" ] && python3 bench/merge_results.py --name "synthetic_mono_monocular_cuda_$tag" --out-dir "$RES" $files
done
[ -n "$mono" ] && python3 bench/merge_results.py --name synthetic_mono_monocular_cuda --out-dir "$RES" $mono
[ -n "$mv" ] && python3 bench/merge_results.py --name synthetic_16view_nersemble_cuda --out-dir "$RES" $mv
python3 bench/accuracy_summary.py "$RES"/synthetic_*_cuda*.json 2>&1 | tee "$RES/accuracy_summary.txt"

# 3. torch.compile of the head model + regularisers (eager rasteriser), if time is left
rem=$(($(left) - 15))
if [ "$PROFILE" = 1 ] && [ "$rem" -gt 60 ]; then
  timeout "$rem" python3 bench/track_profile.py --device cuda --backend nvdiffrast --data-dir "$DATA" \
    --sets mono_16x512 --stages lmk_init_all rgb_global_tracking --warmup 4 --steps 20 --profile-steps 2 \
    --out "$RES/track_profile_cuda_compile.json" -- --exp.compile >"$RES/profile_compile.log" 2>&1
  stamp "compile profile rc=$?"; grep -E "^\[|rror" "$RES/profile_compile.log" | head -10
fi
mkdir -p "$OUT"
tar czf "$OUT/results.tgz" -C "$(dirname "$RES")" "$(basename "$RES")"
cp "$RES"/accuracy_summary.txt "$RES"/synthetic_*_cuda*.json "$RES"/track_profile_cuda_*.json "$OUT"/ 2>/dev/null
ls -la "$OUT"; stamp "end"
