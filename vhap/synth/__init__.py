"""Synthetic ground truth for tests and benchmarks: sequences rendered from the head model with known
parameters, cameras, albedo and lighting, written in the project's dataset layouts.

Library entry points: :func:`vhap.synth.generate.generate_sequence` (writes one sequence) and the metrics in
:mod:`vhap.synth.metrics`. ``bench/synthetic.py`` is the thin CLI.
"""

from __future__ import annotations

from vhap.utils.lazy import lazy_exports

_EXPORTS = {
    "SynthConfig": "vhap.synth.generate",
    "SyntheticSequence": "vhap.synth.generate",
    "generate_sequence": "vhap.synth.generate",
    "load_ground_truth": "vhap.synth.generate",
    "MotionConfig": "vhap.synth.motion",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
