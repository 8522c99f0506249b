"""Export of tracking runs as NeRF/3DGS datasets (GaussianAvatars' format), union datasets, validation.

Public API (imported lazily):

- :func:`export_nerf_dataset` (``vhap export``), :func:`combine_datasets` (``vhap combine``),
  :func:`validate_export` (``vhap validate-export``), :func:`read_ga_dataset` (a reader with
  GaussianAvatars' semantics), :func:`load_tracked_run` (the run folder as arrays).
"""

from __future__ import annotations

from vhap.utils.lazy import lazy_exports

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

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
