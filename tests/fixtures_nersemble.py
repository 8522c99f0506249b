"""Generators of small NeRSemble-layout datasets (v1 and v2) for tests.

Each camera's video is made from the first frames of the real carphone clip, shifted a little per
camera so that views differ, and written with PyAV (H.264). Calibration: a plausible 16-camera arc
(radius 1 m, ±60° yaw, ±10° pitch) in a deliberately rotated world (so that ``align_cameras_to_axes``
has work to do), intrinsics at twice the video resolution (so that loading must scale K).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

SERIALS = [f"2200{i:05d}" for i in range(16)]
CAL_SCALE = 2  # calibration resolution = CAL_SCALE × video resolution


def read_video_frames(path: Path, n: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "12", "preset": "ultrafast"}
        for fr in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


#: the calibration world = the head world rotated by this (so the rig is not axis-aligned)
WORLD_TILT = rot_z(0.3) @ rot_x(2.0) @ rot_y(-0.7)


def arc_cameras(n: int = 16, radius: float = 1.0) -> np.ndarray:
    """(n,4,4) OpenCV world-to-camera matrices of cameras on an arc looking at the origin.

    In the head world (+y up, head faces +z) camera i sits at yaw −60°..60° and pitch ±10° on a sphere
    of ``radius`` metres; the returned matrices are expressed in the tilted calibration world.
    """
    out = []
    for i in range(n):
        yaw = np.deg2rad(-60 + 120 * i / (n - 1))
        pitch = np.deg2rad(10 if i % 2 else -10)
        loc = radius * np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        z = -loc / np.linalg.norm(loc)  # OpenCV forward: towards the origin
        x = np.cross(np.array([0.0, -1.0, 0.0]), z)  # OpenCV y is down → world up is −y_cam
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R_c2w = WORLD_TILT @ np.stack([x, y, z], 1)
        loc_w = WORLD_TILT @ loc
        M = np.eye(4)
        M[:3, :3] = R_c2w.T
        M[:3, 3] = -R_c2w.T @ loc_w
        out.append(M)
    return np.stack(out)


def camera_params(size_hw: tuple[int, int], n: int = 16, with_size: bool = True) -> dict:
    h, w = size_hw[0] * CAL_SCALE, size_hw[1] * CAL_SCALE
    K = [[1.8 * w, 0.0, w / 2 + 3.0], [0.0, 1.8 * w, h / 2 - 2.0], [0.0, 0.0, 1.0]]
    d = {"intrinsics": K, "world_2_cam": {s: m.tolist() for s, m in zip(SERIALS[:n], arc_cameras(n), strict=True)}}
    if with_size:
        d["height"], d["width"] = h, w
    return d


def camera_frames(base: list[np.ndarray], i: int) -> list[np.ndarray]:
    """Camera i's view: the clip rolled a few pixels sideways (views must differ, faces must stay)."""
    return [np.roll(f, (i - 8), axis=1) for f in base]


def v1_affine(i: int) -> np.ndarray:
    """Per-camera v1 colour correction: camera 0 maps rgb → 0.5·rgb + 0.25, others near identity."""
    if i == 0:
        return np.hstack([0.5 * np.eye(3), np.full((3, 1), 0.25)])
    return np.hstack([np.eye(3) * (1 + 0.01 * i), np.zeros((3, 1))])


def make_nersemble(
    root: Path,
    version: int,
    carphone: Path,
    subject: str = "074",
    sequence: str = "EXP-1_head",
    n_cams: int = 16,
    n_frames: int = 6,
    with_colour: bool = True,
    with_background: bool = True,
) -> Path:
    """Create a NeRSemble v1/v2 dataset under ``root``; returns the sequence folder."""
    base = read_video_frames(carphone, n_frames)
    size = base[0].shape[:2]
    if version == 1:
        seq = root / subject / sequence
        cal = root / "camera_params" / subject / "camera_params.json"
        bg_dir = root / subject / "BACKGROUND"
        video_dir = seq
    else:
        seq = root / subject / "sequences" / sequence
        cal = root / subject / "calibration" / "camera_params.json"
        bg_dir = root / subject / "sequences" / "BACKGROUND"
        video_dir = seq / "images"
    cal.parent.mkdir(parents=True, exist_ok=True)
    cal.write_text(json.dumps(camera_params(size, n_cams)))
    for i, s in enumerate(SERIALS[:n_cams]):
        write_video(video_dir / f"cam_{s}.mp4", camera_frames(base, i))
    if with_colour:
        if version == 1:
            cc = root / "color_correction" / subject
            cc.mkdir(parents=True, exist_ok=True)
            for i, s in enumerate(SERIALS[:n_cams]):
                np.save(cc / f"{s}.npy", v1_affine(i))
        else:
            ccm = {s: (np.eye(3) * (1 + 0.01 * i)).tolist() for i, s in enumerate(SERIALS[:n_cams])}
            ccm[SERIALS[0]] = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # swap R and B (linear)
            (root / subject / "calibration" / "color_calibration.json").write_text(json.dumps(ccm))
    if with_background:
        import cv2

        bg_dir.mkdir(parents=True, exist_ok=True)
        for s in SERIALS[:n_cams]:
            plate = np.full((size[0] * CAL_SCALE, size[1] * CAL_SCALE, 3), 128, np.uint8)
            cv2.imwrite(str(bg_dir / f"image_{s}.jpg"), plate)
    return seq
