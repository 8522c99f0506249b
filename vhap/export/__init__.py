"""Export of tracking runs as NeRF/3DGS datasets (GaussianAvatars' format), union datasets, validation.

Public API (imported lazily):

- :func:`export_nerf_dataset` (``vhap export``), :func:`combine_datasets` (``vhap combine``),
  :func:`validate_export` (``vhap validate-export``), :func:`read_ga_dataset` (a reader with
  GaussianAvatars' semantics), :func:`load_tracked_run` (the run folder as arrays).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExportConfig": "vhap.export.config",
    "CombineConfig": "vhap.export.config",
    "ValidateConfig": "vhap.export.config",
    "export_nerf_dataset": "vhap.export.nerf",
    "ExportSummary": "vhap.export.nerf",
    "combine_datasets": "vhap.export.combine",
    "CombineSummary": "vhap.export.combine",
    "validate_export": "vhap.export.validate",
    "ValidationReport": "vhap.export.validate",
    "read_ga_dataset": "vhap.export.ga_reader",
    "load_tracked_run": "vhap.export.run",
    "TrackedRun": "vhap.export.run",
    "split_frames": "vhap.export.splits",
    "select_test_sequences": "vhap.export.splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vhap.export' has no attribute {name!r}")
