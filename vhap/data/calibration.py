"""NeRSemble camera calibration: loading, strict validation, resolution scaling and world alignment.

``camera_params.json`` holds ``intrinsics`` (one 3×3 OpenCV K shared by all cameras, in pixels of the
calibration resolution), ``world_2_cam`` ({serial: 4×4 OpenCV world-to-camera}, metres) and optionally
``height``/``width`` of the calibration images (default 3208×2200 for NeRSemble v1). Camera order is the
key order of ``world_2_cam``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

#: NeRSemble v1 calibration resolution (H, W) when the json does not state it.
NERSEMBLE_CALIBRATION_SIZE = (3208, 2200)

#: Plausible camera-to-origin distances in metres; outside → probably millimetres or garbage.
_DISTANCE_RANGE_M = (0.05, 50.0)


@dataclass
class CameraRig:
    """Calibrated cameras, OpenCV conventions.

    ``K`` (C,3,3) float64 pixels at ``image_size``; ``w2c`` (C,4,4) float64 world→camera (metres);
    ``camera_ids`` serials in calibration order; ``image_size`` (H, W) the resolution K refers to.
    """

    camera_ids: list[str]
    K: np.ndarray
    w2c: np.ndarray
    image_size: tuple[int, int]
    source: Path | None = None

    def index(self, serial: str) -> int:
        try:
            return self.camera_ids.index(serial)
        except ValueError:
            raise VhapError(
                f"camera '{serial}' is not in the calibration (it has {self.camera_ids})", path=self.source
            ) from None

    def select(self, serials: list[str]) -> CameraRig:
        idx = [self.index(s) for s in serials]
        return CameraRig(list(serials), self.K[idx], self.w2c[idx], self.image_size, self.source)

    def scaled_to(self, size: tuple[int, int]) -> CameraRig:
        """The same rig with K scaled to images of ``size`` (H, W) (continuous pixel coordinates)."""
        K = scale_intrinsics(self.K, self.image_size, size, where=self.source)
        return CameraRig(list(self.camera_ids), K, self.w2c.copy(), tuple(size), self.source)


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int], where=None) -> np.ndarray:
    """Scale K (...,3,3) from images of ``from_size`` (H,W) to ``to_size``; rows 0/1 scale by W/H ratios.

    Raises when the aspect ratios differ by more than 1 % (a crop or a rotated video, not a resize).
    """
    (h0, w0), (h1, w1) = from_size, to_size
    sx, sy = w1 / w0, h1 / h0
    if abs(sx / sy - 1.0) > 0.01:
        raise VhapError(
            f"image size {h1}x{w1} (HxW) is not a resize of the calibration size {h0}x{w0}: "
            f"scale x {sx:.4f} vs y {sy:.4f}",
            path=where,
            fix="check the calibration's height/width keys, or whether the frames were cropped or rotated",
        )
    K = np.array(K, dtype=np.float64, copy=True)
    K[..., 0, :] *= sx
    K[..., 1, :] *= sy
    return K


def _as_matrix(value, shape: tuple[int, int], what: str, path: Path) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise VhapError(f"{what} is not a numeric matrix", path=path) from None
    if m.shape != shape:
        raise VhapError(f"{what} has shape {m.shape}, expected {shape}", path=path)
    if not np.all(np.isfinite(m)):
        raise VhapError(f"{what} contains NaN or infinite values", path=path)
    return m


def validate_intrinsics(K: np.ndarray, size: tuple[int, int], path: Path, what: str = "intrinsics") -> None:
    h, w = size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise VhapError(f"{what}: focal lengths must be positive, got fx={fx}, fy={fy}", path=path)
    if abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) > 1e-9 or abs(K[2, 1]) > 1e-9 or abs(K[2, 2] - 1) > 1e-9:
        raise VhapError(f"{what}: expected [[fx,s,cx],[0,fy,cy],[0,0,1]], got {K.tolist()}", path=path)
    if not (0 < cx < w and 0 < cy < h):
        raise VhapError(
            f"{what}: principal point ({cx:.1f}, {cy:.1f}) lies outside the {w}x{h} (WxH) calibration image",
            path=path,
            fix="add the calibration image's 'height'/'width' to the json, or check whether K is normalised",
        )
    if not (0.1 * max(h, w) < fx < 100 * max(h, w)):
        raise VhapError(
            f"{what}: focal length {fx:.3g} px is implausible for a {w}x{h} image (normalised units?)", path=path
        )


def validate_world_to_camera(M: np.ndarray, path: Path, what: str) -> None:
    R, t = M[:3, :3], M[:3, 3]
    if not np.allclose(M[3], [0, 0, 0, 1], atol=1e-6):
        raise VhapError(f"{what}: last row must be [0,0,0,1], got {M[3].tolist()}", path=path)
    err = np.abs(R @ R.T - np.eye(3)).max()
    if err > 1e-3:
        raise VhapError(f"{what}: rotation is not orthonormal (max |R·Rᵀ−I| = {err:.2e})", path=path)
    det = np.linalg.det(R)
    if det < 0:
        raise VhapError(
            f"{what}: rotation has det {det:.3f} (a reflection)",
            path=path,
            fix="the matrix is probably in another convention (OpenGL/Blender); world_2_cam must be OpenCV",
        )
    dist = float(np.linalg.norm(R.T @ t))
    lo, hi = _DISTANCE_RANGE_M
    if not (lo <= dist <= hi):
        unit = " (millimetres? world_2_cam must be in metres)" if dist > hi else ""
        raise VhapError(f"{what}: camera is {dist:.4g} units from the world origin{unit}", path=path)


def rig_meeting_point(w2c: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """Where the optical axes of a rig of OpenCV world-to-camera matrices (C,4,4) meet best (least squares).

    Returns ``(point, in_front, miss)``: the fraction of cameras that have the point in front of them, and the
    median distance of the point from an axis relative to its distance from that camera. ``None`` when the axes
    fix no point (fewer than 3 cameras, or near-parallel axes).
    """
    if len(w2c) < 3:
        return None
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    centres = -np.einsum("nji,nj->ni", R, t)
    axes = R[:, 2, :]  # OpenCV +z (forward) in world coordinates
    proj = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    A, b = proj.sum(0), np.einsum("nij,nj->i", proj, centres)
    if np.linalg.eigvalsh(A).min() < 0.02 * len(w2c):
        return None
    point = np.linalg.solve(A, b)
    along = np.einsum("ni,ni->n", point - centres, axes)
    off = np.linalg.norm(point - centres - along[:, None] * axes, axis=1)
    dist = np.maximum(np.linalg.norm(point - centres, axis=1), 1e-12)
    return point, float((along > 0).mean()), float(np.median(off / dist))


def check_rig_converges(w2c: np.ndarray, path: Path) -> None:
    """Raise when the cameras of a rig do not look at a common point in front of them - what camera-to-world
    matrices given as world-to-camera (or another axis convention) look like; a head rig's axes meet at the head."""
    found = rig_meeting_point(w2c)
    if found is None:
        return
    _, in_front, miss = found
    if in_front >= 0.5 and miss <= 0.2:
        return
    inverted = rig_meeting_point(np.linalg.inv(w2c))
    if inverted is not None and inverted[1] >= 0.5 and inverted[2] <= 0.2:
        fix = "these are camera-to-world matrices: store their inverses in 'world_2_cam'"
    else:
        fix = "world_2_cam must map world points to OpenCV camera coordinates (x right, y down, z forward)"
    raise VhapError(
        f"world_2_cam: the cameras' optical axes do not meet in front of them ({100 * in_front:.0f} % of the "
        f"cameras have the closest common point in front, median miss {100 * miss:.0f} % of its distance)",
        path=path,
        fix=fix,
    )


def load_camera_params(path: str | Path, default_size: tuple[int, int] = NERSEMBLE_CALIBRATION_SIZE) -> CameraRig:
    """Read and validate ``camera_params.json`` (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise VhapError(
            "camera calibration not found",
            path=path,
            fix="NeRSemble data needs camera_params.json (v1: <root>/camera_params/<subject>/, "
            "v2: <root>/<subject>/calibration/)",
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VhapError(f"not valid JSON: {e}", path=path) from e
    if not isinstance(data, dict):
        raise VhapError("expected a JSON object with 'intrinsics' and 'world_2_cam'", path=path)
    missing = [k for k in ("intrinsics", "world_2_cam") if k not in data]
    if missing:
        raise VhapError(f"missing key(s) {missing}; found {sorted(data)}", path=path)
    has_h, has_w = "height" in data, "width" in data
    if has_h != has_w:
        raise VhapError("give both 'height' and 'width' or neither", path=path)
    if has_h:
        h, w = data["height"], data["width"]
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise VhapError(f"height/width must be positive integers, got {h!r}/{w!r}", path=path)
        size = (h, w)
    else:
        size = tuple(default_size)
    K = _as_matrix(data["intrinsics"], (3, 3), "intrinsics", path)
    validate_intrinsics(K, size, path)
    w2c_all = data["world_2_cam"]
    if not isinstance(w2c_all, dict) or not w2c_all:
        raise VhapError("'world_2_cam' must be a non-empty {serial: 4x4} mapping", path=path)
    ids, mats = [], []
    for serial, m in w2c_all.items():
        what = f"world_2_cam['{serial}']"
        M = _as_matrix(m, (4, 4), what, path)
        validate_world_to_camera(M, path, what)
        ids.append(str(serial))
        mats.append(M)
    C = len(ids)
    check_rig_converges(np.stack(mats), path)
    return CameraRig(ids, np.repeat(K[None], C, 0), np.stack(mats), size, path)


def orthonormalize(M: np.ndarray) -> np.ndarray:
    """Gram–Schmidt on the columns of a 3×3 matrix (keeps the first column's direction)."""
    q = np.zeros((3, 3))
    for i in range(3):
        v = M[:, i] - q[:, :i] @ (q[:, :i].T @ M[:, i])
        n = np.linalg.norm(v)
        if n < 1e-8:
            raise VhapError("camera orientations are degenerate: their mean has no well-defined axes")
        q[:, i] = v / n
    return q


def align_cameras_to_axes(w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the world so that the mean camera's OpenGL axes become the world axes.

    ``w2c`` (C,4,4) OpenCV. The mean of the camera-to-world rotations is orthonormalised (B); its y and
    z columns are flipped so that B is the mean camera's OpenGL frame (x right, y up, looking along
    −z); the world is rotated by Bᵀ. Afterwards world +y is up and the rig looks along −z on average, so a
    head facing +z faces the cameras. No translation or scale change. Returns (w2c_aligned (C,4,4)
    OpenCV, world_rotation (3,3)) with ``x_new = world_rotation @ x_old``.
    """
    w2c = np.asarray(w2c, dtype=np.float64)
    R_c2w = np.transpose(w2c[:, :3, :3], (0, 2, 1))
    loc = -np.einsum("cij,cj->ci", R_c2w, w2c[:, :3, 3])
    B = orthonormalize(R_c2w.mean(0))
    B[:, 1:] *= -1
    rot = B.T
    R_new = rot[None] @ R_c2w
    loc_new = loc @ rot.T
    out = np.tile(np.eye(4), (len(w2c), 1, 1))
    out[:, :3, :3] = np.transpose(R_new, (0, 2, 1))
    out[:, :3, 3] = -np.einsum("cij,cj->ci", out[:, :3, :3], loc_new)
    return out, rot
