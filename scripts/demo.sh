#!/usr/bin/env bash
# One command on a fresh machine: set up .venv, then run the whole pipeline on the bundled carphone clip
# (frames → matting → landmarks → tracking with the `demo` preset → export → quality gate → report), CPU,
# offline. Extra arguments go to snakemake (e.g. --cores 4, -n for a dry run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${VHAP_VENV:-.venv}/bin/activate"
snakemake demo --profile profiles/local "$@"
echo "HTML report:   .venv/bin/snakemake demo --profile profiles/local --report results/demo_report.html"
echo "Web viewer:    .venv/bin/vhap view results/track/demo/carphone/carphone"
