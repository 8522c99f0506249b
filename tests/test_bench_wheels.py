"""bench/prepare_wheels.sh pins what bench/gpu_*.sh install, and BENCHMARKS.md says how to rerun each GPU row
(issue 20 item 6). The download itself needs the network and is not run here."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pins(script: str, var: str) -> list[tuple[str, str, str]]:
    block = re.search(rf"{var}='\n(.*?)'\n", script, re.S).group(1)
    return [tuple(re.fullmatch(r"([\w.-]+)==([\w.]+) --hash=sha256:([0-9a-f]{64})", line).groups())
            for line in block.strip().splitlines()]  # fmt: skip


def test_every_wheel_is_pinned_with_a_hash_and_the_gpu_scripts_read_those_folders():
    script = (REPO / "bench" / "prepare_wheels.sh").read_text()
    names = {n for n, _, _ in _pins(script, "MIN_REQS")} | {n for n, _, _ in _pins(script, "AV_REQS")}
    assert {"tyro", "docstring-parser", "typeguard", "diffrp-nvdiffrast", "av"} <= names
    assert "--require-hashes" in script and "--python-version 3.12" in script and "manylinux" in script
    assert "fetch .whl_min" in script and "fetch .whl_av" in script
    # one prelude installs them for every device script
    assert "${WHEELS:-${GPU_WHEELS:-.whl_min .whl_av}}" in (REPO / "bench" / "gpu_env.sh").read_text()
    for name in ("gpu_speed.sh", "gpu_accuracy.sh", "gpu_dataset.sh", "gpu_realvideo.sh"):
        text = (REPO / "bench" / name).read_text()
        assert '. "$(dirname "$0")/gpu_env.sh"' in text and "install_wheels" in text, name
        assert "pip install" not in text, name


def test_reproduction_section_names_each_gpu_row():
    from bench.report import device_command, reproduction_section

    rec = {
        "name": "carphone_x_h200",
        "device": "cuda",
        "hardware": {"gpu": "NVIDIA H200"},
        "provenance": "H200, code of abc. Command: OUT=... PARITY=0 WHEELS='.whl_min .whl_av' bash "
        "bench/gpu_speed.sh (carry .whl_min .whl_av .benchdata)",
    }
    old = {"name": "mono_old", "device": "cuda", "hardware": {"gpu": "NVIDIA H100"}, "note": "no command"}
    cpu = {"name": "cpu_row", "device": "cpu", "hardware": {"cpu_count": 2}}
    assert device_command(rec) == "OUT=... PARITY=0 WHEELS='.whl_min .whl_av' bash bench/gpu_speed.sh"
    text = "\n".join(reproduction_section([rec, old, cpu], []))
    assert "bash bench/prepare_wheels.sh" in text and ".benchdata/carphone" in text
    assert "| `carphone_x_h200` | NVIDIA H200 | `OUT=... PARITY=0" in text
    assert "| `mono_old` | NVIDIA H100 | not recorded" in text and "cpu_row" not in text
    assert reproduction_section([cpu], []) == []
    assert "## Reproducing the GPU rows" in (REPO / "BENCHMARKS.md").read_text()
