"""Camera rigs of the synthetic sets: a monocular uncalibrated camera and a NeRSemble-like 16-camera arc.

All matrices are OpenCV (``K`` in pixels of the written images, continuous coordinates; ``w2c`` world-to-
camera with x right, y down, z forward), numpy float64. The *file world* is the world in which the written
calibration (and the ground-truth meshes) live: for the monocular rig it is the FLAME world with the
camera at (0, 0, 1) looking down −z (VHAP_SPEC §2.5); for the multi-view rig it is a calibration world
related to the FLAME world by a known rigid transform ``world_from_flame`` (real calibrations never use
FLAME's axes, so the data layer's axis alignment is exercised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vhap.utils.atomic import write_text_atomic

#: NeRSemble's calibration resolution (H, W) and the DS4 image size the tracker uses.
NERSEMBLE_CALIBRATION_SIZE = (3208, 2200)
NERSEMBLE_DS4_SIZE = (802, 550)


@dataclass
class Rig:
    """Cameras of one synthetic sequence.

    K (C,3,3) and w2c (C,4,4) OpenCV at ``image_size`` (H, W) in the file world; ``camera_ids`` (C,) serials
    (``[""]`` for monocular); ``world_from_flame`` (4,4) rigid map FLAME world → file world;
    ``focal_length`` the normalised focal (f_px / max(H, W), VHAP's uncalibrated parameter);
    ``calibration_size`` (H, W) of the calibration K written to ``camera_params.json``.
    """

    K: np.ndarray
    w2c: np.ndarray
    camera_ids: list[str]
    image_size: tuple[int, int]
    calibrated: bool
    focal_length: float
    world_from_flame: np.ndarray
    calibration_size: tuple[int, int]

    @property
    def num_cameras(self) -> int:
        return len(self.camera_ids)

    def w2c_flame(self) -> np.ndarray:
        """(C,4,4) world-to-camera from the FLAME world (what the renderer of the ground truth uses)."""
        return self.w2c @ self.world_from_flame


def look_at_opencv(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """(4,4) OpenCV world-to-camera of a camera at ``eye`` looking at ``target`` with world ``up`` on screen."""
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))  # right = forward × up (y = forward × right points down)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    M = np.eye(4)
    M[:3, :3] = R
    M[:3, 3] = -R @ eye
    return M


def rotation_xyz(deg: tuple[float, float, float]) -> np.ndarray:
    """(3,3) rotation R = Rz · Ry · Rx from Euler angles in degrees."""
    ax, ay, az = np.deg2rad(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def monocular_rig(image_size: tuple[int, int], focal_length: float) -> Rig:
    """VHAP's uncalibrated camera: f_px = focal · max(H, W), principal point at the centre, camera at (0,0,1)."""
    H, W = image_size
    f = focal_length * max(H, W)
    K = np.array([[[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]], float)
    w2c = look_at_opencv(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0]))[None]
    return Rig(K, w2c, [""], (H, W), False, float(focal_length), np.eye(4), (H, W))


def nersemble_serials(n: int = 16) -> list[str]:
    """Made-up 9-digit serials in NeRSemble's style (sorted, so file order = camera order)."""
    return [f"2207{i:05d}" for i in range(100, 100 + n)]


def arc_rig(
    image_size: tuple[int, int] = NERSEMBLE_DS4_SIZE,
    *,
    num_cameras: int = 16,
    focal_length: float = 2.0,
    distance: float = 1.0,
    azimuth_step_deg: float = 10.0,
    elevations_deg: tuple[float, ...] = (12.0, -6.0),
    calibration_scale: int = 4,
    world_rotation_deg: tuple[float, float, float] = (5.0, -20.0, 3.0),
    world_translation: tuple[float, float, float] = (0.1, -0.3, 0.6),
    look_at: tuple[float, float, float] = (0.0, -0.02, 0.0),
) -> Rig:
    """A NeRSemble-like arc: cameras at ``distance`` around the head, camera 8 frontal.

    Azimuth of camera i = (i − 8)·step (so i = 8 looks straight at the face), elevation alternates through
    ``elevations_deg``; all cameras share one K (NeRSemble calibrations do), f_px = focal · max(H, W).
    The written calibration is at ``calibration_scale`` × the image size (like DS4 of 3208×2200).
    """
    H, W = image_size
    f = focal_length * max(H, W)
    K1 = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], float)
    K = np.repeat(K1[None], num_cameras, axis=0)
    w2c_flame = []
    for i in range(num_cameras):
        az = np.deg2rad((i - num_cameras // 2) * azimuth_step_deg)
        el = np.deg2rad(elevations_deg[i % len(elevations_deg)])
        eye = np.array(look_at) + distance * np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
        w2c_flame.append(look_at_opencv(eye, np.array(look_at)))
    world_from_flame = np.eye(4)
    world_from_flame[:3, :3] = rotation_xyz(world_rotation_deg)
    world_from_flame[:3, 3] = world_translation
    w2c = np.stack(w2c_flame) @ np.linalg.inv(world_from_flame)
    calib = (H * calibration_scale, W * calibration_scale)
    return Rig(K, w2c, nersemble_serials(num_cameras), (H, W), True, float(focal_length), world_from_flame, calib)


def write_camera_params(rig: Rig, path: str | Path) -> None:
    """Write NeRSemble's ``camera_params.json`` (shared K at calibration resolution, OpenCV world_2_cam)."""
    s = rig.calibration_size[0] / rig.image_size[0]
    K = rig.K[0].copy()
    K[:2] *= s
    data = {
        "intrinsics": K.tolist(),
        "world_2_cam": {serial: rig.w2c[i].tolist() for i, serial in enumerate(rig.camera_ids)},
        "height": int(rig.calibration_size[0]),
        "width": int(rig.calibration_size[1]),
    }
    write_text_atomic(path, json.dumps(data, indent=2))
