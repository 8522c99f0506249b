#!/usr/bin/env bash
# One device command for the cost of a whole dataset: a full 16-view NeRSemble-like sequence end to end
# (bench/run.py --set nersemble_sequence: 150 frames at DS4, the `nersemble` preset's whole schedule, export, GPU
# timeline) and/or k tracking processes sharing one GPU (bench/gpu_share.py). Results and plots go to $OUT.
# From the repository root on the device (wheels: bash bench/prepare_wheels.sh here first):
#
#   OUT=/path/to/out PARTS="sequence share" bash bench/gpu_dataset.sh
#   OUT=/path/to/out PARTS=lmkviews bash bench/gpu_dataset.sh     # landmarks of all 16 views vs a subset
#
# Knobs: PARTS ("sequence share"; also "lmkviews"), FRAMES (150: frames of the whole sequence), SHARE_FRAMES
# (24: frames per process in the sharing runs), SHARE_K ("1 2 4 8"), BUDGET_S (560), DATA (/tmp/vhap_bd), WHEELS
# (.whl_min .whl_av), TRACK_ARGS (extra `vhap track` flags for every part), LMK_VIEWS ("all 6,7,8,9 2,6,10,14":
# view sets of bench/landmark_views.py, camera indices, 8 = frontal), LMK_FRAMES (4: frames of the synthetic
# 16-view sequence), LMK_ARGS (extra bench/run.py flags for lmkviews, e.g. "--image-size 401 275" to halve the cost).
set -uo pipefail
GPU_THREADS=2
. "$(dirname "$0")/gpu_env.sh"
DATA="${DATA:-/tmp/vhap_bd}"
mkdir -p "$DATA"

install_wheels
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
stamp "built"
RES="$DATA/results"
mkdir -p "$RES"

for part in ${PARTS:-sequence share}; do
  case "$part" in
  sequence)
    t=$(($(left) - 20))
    timeout "$t" python3 bench/run.py --set nersemble_sequence --preset nersemble --seeds 0 --device cuda \
      --num-frames "${FRAMES:-150}" --data-dir "$DATA" --out-dir "$RES" --name "nersemble_sequence_f${FRAMES:-150}" \
      -- --log.no-progress ${TRACK_ARGS:-} >"$OUT/sequence.log" 2>&1
    stamp "sequence rc=$?"; grep -vE "it/s|batch/s|img/s" "$OUT/sequence.log" | tail -25
    ;;
  share)
    t=$(($(left) - 20))
    timeout "$t" python3 bench/gpu_share.py --k ${SHARE_K:-1 2 4 8} --num-frames "${SHARE_FRAMES:-24}" \
      --project-frames "${FRAMES:-150}" --device cuda --data-dir "$DATA" --out-dir "$RES" --budget-s "$((t - 30))" \
      -- ${TRACK_ARGS:-} >"$OUT/share.log" 2>&1
    stamp "share rc=$?"; grep -E "^k=|wrote|Error|error" "$OUT/share.log" | tail -12
    ;;
  lmkviews)
    t=$(($(left) - 20))
    timeout "$t" python3 bench/landmark_views.py --views ${LMK_VIEWS:-all 6,7,8,9 2,6,10,14} --name landmark_views_gpu \
      --out-dir "$RES" --budget-s "$((t - 30))" --device cuda --seeds 0 --num-frames "${LMK_FRAMES:-4}" \
      --data-dir "$DATA" ${LMK_ARGS:-} -- --log.no-progress ${TRACK_ARGS:-} >"$OUT/lmkviews.log" 2>&1
    stamp "lmkviews rc=$?"; grep -E "^landmark_views|wrote|rror" "$OUT/lmkviews.log" | tail -12
    ;;
  esac
done
# at most 8 files come back: one archive of everything plus the headline JSONs and plots
(cd "$RES" && tar czf "$OUT/dataset_results.tgz" .)
cp "$RES"/*.json "$OUT/" 2>/dev/null
cp "$RES"/plots/*.png "$OUT/" 2>/dev/null
ls -la "$OUT"
