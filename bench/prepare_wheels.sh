#!/usr/bin/env bash
# Download the Python wheels the GPU machine's image lacks, for bench/gpu_*.sh (their WHEELS knob):
#
#   .whl_min  tyro and what it needs (typed configs), diffrp-nvdiffrast (nvdiffrast's sources, JIT-built there
#             with the image's nvcc) and ninja — about 0.6 MiB;
#   .whl_av   PyAV (overlay.mp4; also `vhap preprocess` there) — about 34 MiB.
#
# The device image (Python 3.12, torch 2.11+cu130) is taken to hold the rest these runs import (numpy, scipy,
# pyyaml, pillow, tqdm, matplotlib, OpenCV): the runs recorded in bench/results had only these two folders
# beside it. If an import fails there, add that wheel here. Versions and file hashes are pinned; the wheels
# are the CPython 3.12 / manylinux x86-64 builds, fetched with `pip download --no-deps` whatever machine runs
# this. Nothing else is written: each folder is filled in a temporary sibling and renamed into place.
#
#   bash bench/prepare_wheels.sh [DEST_ROOT]      # DEST_ROOT: where .whl_min/ and .whl_av/ go (default: .)
#
# Then on the device: WHEELS='.whl_min .whl_av' bash bench/gpu_speed.sh (carry .whl_min .whl_av).
set -euo pipefail
DEST_ROOT="${1:-.}"
PYTHON="${PYTHON:-python3}"
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

MIN_REQS='
tyro==1.0.17 --hash=sha256:89bbe5b4907965cac4077d2a1c3eaa3648afe177e214c57e490906d0ffef84c1
docstring-parser==0.18.0 --hash=sha256:b3fcbed555c47d8479be0796ef7e19c2670d428d72e96da63f3a40122860374b
typeguard==4.6.1 --hash=sha256:aca1f365124873d5325b18aad1a3689d62f7184abe32d899413562cf51729d02
typing-extensions==4.16.0 --hash=sha256:481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8
diffrp-nvdiffrast==0.3.3.1 --hash=sha256:cee41fe51b6fca1c7a7a992d06f034bca144c2c69a630bebbb8eea64094fd030
ninja==1.13.2 --hash=sha256:65a24341b5ac09fcadcc37082660be40a94174e51a937fabf6e2cae26225fa2c
'
AV_REQS='
av==18.1.0 --hash=sha256:8a032e8d8ebc73dec079364b9b4a6837638a2d106e8472314e685ffbf163e700
'

fetch() {  # fetch DEST REQUIREMENTS
  local dest="$DEST_ROOT/$1" reqs="$2" tmp req n
  mkdir -p "$DEST_ROOT"
  tmp=$(mktemp -d "$DEST_ROOT/.$1.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  req="$tmp/requirements.txt"
  printf '%s\n' "$reqs" >"$req"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --require-hashes --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]/#/--platform=}" -d "$tmp" -r "$req"
  rm "$req"
  n=$(ls "$tmp"/*.whl | wc -l)
  [ "$n" -eq "$(printf '%s\n' "$reqs" | grep -c '==')" ] || { echo "prepare_wheels: $1: got $n wheels" >&2; return 1; }
  (cd "$tmp" && sha256sum ./*.whl >SHA256SUMS)
  chmod 755 "$tmp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "$dest: $n wheels, $(du -sh "$dest" | cut -f1)"
}

fetch .whl_min "$MIN_REQS"
fetch .whl_av "$AV_REQS"
