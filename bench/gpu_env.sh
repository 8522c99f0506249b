# Shared prelude of the bench/gpu_*.sh device scripts; sourced, not run: `. "$(dirname "$0")/gpu_env.sh"`.
#
# Sets START, OUT (/tmp/vhap_gpu_out) and BUDGET_S (560) unless the script or the caller set them, creates
# $OUT, and exports the run's Python settings (OMP_NUM_THREADS = $GPU_THREADS, 4 unless the script sets it).
# Helpers:
#   left                 seconds of BUDGET_S left
#   stamp MSG            MSG with the seconds since START
#   install_wheels [DIR] the wheels the device image lacks (folders in $WHEELS, else the script's $GPU_WHEELS,
#                        else .whl_min .whl_av; bench/prepare_wheels.sh makes them) into /tmp/site, put first on
#                        PYTHONPATH with the checkout; pip's log goes to DIR/pip.log ($OUT); prints the card
#   build_kernels        builds nvdiffrast's plugin and vhap's CUDA kernels once, printing how long each took
#                        (before parallel processes, which would wait on the build lock)
START=$(date +%s)
OUT="${OUT:-/tmp/vhap_gpu_out}"
BUDGET_S="${BUDGET_S:-560}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 OMP_NUM_THREADS="${GPU_THREADS:-4}"

left() { echo $((START + BUDGET_S - $(date +%s))); }
stamp() { echo "[$(($(date +%s) - START)) s] $*"; }

install_wheels() {
  local whls
  whls=$(for d in ${WHEELS:-${GPU_WHEELS:-.whl_min .whl_av}}; do ls "$d"/*.whl 2>/dev/null; done)
  # shellcheck disable=SC2086  # one word per wheel
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $whls \
    >"${1:-$OUT}/pip.log" 2>&1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
}

build_kernels() {
  python3 -c "
import time, vhap.render.backends.nvdiffrast as n
t = time.time(); dr = n.import_nvdiffrast(); dr.RasterizeCudaContext(); print('nvdiffrast ready', round(time.time() - t, 1), 's')
from vhap.render.kernels import load_kernels
t = time.time(); load_kernels(); print('vhap kernels ready', round(time.time() - t, 1), 's')
" 2>&1 | tail -3
}
