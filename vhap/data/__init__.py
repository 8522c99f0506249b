"""Datasets: folder layouts (monocular, NeRSemble v1/v2), discovery, calibration and sequence loading.

The tracker codes against :func:`load_sequence` (``DataConfig`` → :class:`SequenceData`); the workflow
builds its jobs from :func:`discover`. See ``docs/dev/INTERFACES.md``.

``SequenceData``/``load_sequence`` import torch and are loaded lazily, so that preprocessing (which
only needs layouts and calibration) starts fast.
"""

from vhap.data.calibration import (
    CameraRig,
    align_cameras_to_axes,
    load_camera_params,
    scale_intrinsics,
)
from vhap.data.config import DataConfig, address_by_folder, resolve_sequence_dir
from vhap.data.layout import (
    MONOCULAR_CAMERA,
    SequenceEntry,
    detect_layout,
    discover,
    frame_stem,
    images_dir_name,
    landmark_path,
    list_frames,
    locate,
    pick_images_dir,
    resolve_name,
    sequence_folder,
)
from vhap.data.selection import DIVISIONS, parse_subset, select_indices

__all__ = [
    "DIVISIONS",
    "MONOCULAR_CAMERA",
    "CameraRig",
    "DataConfig",
    "SequenceData",
    "SequenceEntry",
    "address_by_folder",
    "align_cameras_to_axes",
    "detect_layout",
    "discover",
    "frame_stem",
    "images_dir_name",
    "landmark_path",
    "list_frames",
    "load_camera_params",
    "load_sequence",
    "locate",
    "parse_subset",
    "pick_images_dir",
    "require_fit_landmarks",
    "resolve_name",
    "resolve_sequence_dir",
    "scale_intrinsics",
    "select_indices",
    "sequence_folder",
]


def __getattr__(name: str):
    if name in ("SequenceData", "load_sequence", "require_fit_landmarks"):
        from vhap.data import sequence

        return getattr(sequence, name)
    raise AttributeError(f"module 'vhap.data' has no attribute {name!r}")
