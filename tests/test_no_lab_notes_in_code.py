"""Code and presets say why, not when: no issue numbers and no GPU-model timings in ``vhap/`` (sources, kernels,
presets), ``rules/`` or the Snakefile. Measurements and their history live in ``docs/dev/notes/``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".cu", ".cuh", ".cpp", ".yaml", ".smk"}

#: our own issue references ("issue 6", "#17 item 2", "(#17)") and GPU-model names next to figures
LAB_NOTE = re.compile(r"\bissues? #?\d+|#\d+ item|\(#\d+|\bH[12]00\b", re.IGNORECASE)


def _files() -> list[Path]:
    files = [p for tree in ("vhap", "rules") for p in (ROOT / tree).rglob("*") if p.suffix in SUFFIXES]
    return sorted(files) + [ROOT / "Snakefile"]


def test_the_pattern_catches_lab_notes():
    caught = ["(issue 6)", "see #17 item 2", "runs since (#17)", "H100: 47 ms", "on the h200"]
    kept = ["VHAP #58 upstream", "color:#222", "validation issues", "a 512² step"]
    assert all(LAB_NOTE.search(s) for s in caught)
    assert not any(LAB_NOTE.search(s) for s in kept)


def test_no_issue_numbers_or_gpu_timings_in_code():
    assert len(_files()) > 50
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _files()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if LAB_NOTE.search(line)
    ]
    assert not hits, "move these to docs/dev/notes/ and say why in the code:\n" + "\n".join(hits)
