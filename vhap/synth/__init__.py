"""Synthetic ground truth for tests and benchmarks: sequences rendered from the head model with known
parameters, cameras, albedo and lighting, written in the project's dataset layouts.

Library entry points: :func:`vhap.synth.generate.generate_sequence` (writes one sequence) and the metrics in
:mod:`vhap.synth.metrics`. ``bench/synthetic.py`` is the thin CLI.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SynthConfig": "vhap.synth.generate",
    "SyntheticSequence": "vhap.synth.generate",
    "generate_sequence": "vhap.synth.generate",
    "load_ground_truth": "vhap.synth.generate",
    "MotionConfig": "vhap.synth.motion",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vhap.synth' has no attribute {name!r}")
