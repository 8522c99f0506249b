#!/usr/bin/env bash
# The project's test command (README): set up the venv, then run the whole CPU test suite.
# GPU tests skip without CUDA; the SLURM workflow test needs `scripts/slurm-local.sh start` (CI does it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${VHAP_VENV:-.venv}/bin/activate"
ruff check vhap tests bench
python -m pytest -q -ra "$@"
