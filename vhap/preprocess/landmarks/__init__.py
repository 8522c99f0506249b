"""``vhap landmarks``: 2D facial landmarks per video/camera in VHAP's npz format (VHAP_SPEC §1.3).

Output (monocular ``landmark2d/<detector>.npz``, multi-camera ``landmark2d/<detector>/<serial>.npz``):
``face_landmark_2d (T,68,3)`` (x/W, y/H, confidence), ``bounding_box (T,5)`` (x1/W, y1/H, x2/W, y2/H,
score), ``timestep_id (T,)`` str, ``valid (T,)`` bool, plus for MediaPipe ``mediapipe_478 (T,478,3)``
(x/W, y/H, confidence) and ``mediapipe_478_z (T,478)`` (relative depth / W). Frames without a face hold
−1 (confidence 0) and ``valid`` False; a camera without a face in any frame is an error. Coordinates
are continuous (pixel centre = +0.5) and normalised by the size of the images the detector saw, so one
file serves every resolution. An overlay PNG of a few frames is written next to each npz.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro
from tqdm import tqdm

from vhap.config.core import AT_LEAST_ONE
from vhap.data.images import read_alpha, read_rgb, resize
from vhap.data.layout import frame_stem, landmark_path, list_frames, pick_images_dir
from vhap.errors import VhapError
from vhap.preprocess.landmarks.base import Detection, LandmarkDetector
from vhap.preprocess.landmarks.mp68 import MEDIAPIPE_TO_IBUG68, mediapipe_to_ibug68
from vhap.preprocess.landmarks.overlay import draw_landmarks, write_overlay
from vhap.utils.atomic import atomic_dir, atomic_path

DETECTORS = ("mediapipe", "dlib68", "star", "face-alignment")
NO_FACE_FIX = "check that the frames show a face (try --detector dlib68, or a higher resolution with --downsample)"


@dataclass
class LandmarkConfig:
    """Detect 2D landmarks on the extracted frames of one sequence folder."""

    folder: Annotated[Path | None, tyro.conf.Positional] = None
    """sequence folder (holding images/ or images_<n>/)"""
    detector: Literal["mediapipe", "dlib68", "star", "face-alignment"] = "mediapipe"
    """mediapipe (default, Apache-2.0) | dlib68 (non-commercial weights) | star | face-alignment (need --weights)"""
    downsample: Annotated[int | None, AT_LEAST_ONE] = None
    """read images_<n> (use the resolution tracking will use); default: images/ or the only images_<n>"""
    weights: Path | None = None
    """star / face-alignment weights (never downloaded): the published checkpoint (STAR 300W_STARLoss_NME_2_87.pkl or
    its WFLW .pkl, face-alignment 2DFAN4 .pth.tar) or a TorchScript export"""
    background_color: Literal["white", "black"] | None = None
    """composite frames over this colour with alpha_maps first (as tracking will see them)"""
    cameras: tuple[str, ...] = ()
    """only these camera serials (default: all)"""
    overlay_frames: int = 4
    """frames drawn in the inspection overlay"""
    quality: bool = True
    """store per-point confidences that mark failed points (lower lip / chin inside an open mouth, points off
    the matte, disagreement with --cross-check): vhap.preprocess.landmarks.quality; tracking uses them with
    --model.landmark-confidence detector"""
    cross_check: str | None = None
    """name of a second detector's landmark file already in landmark2d/ (e.g. dlib68): points where the two
    disagree get a lower confidence"""


def make_detector(name: str, weights: Path | None = None) -> LandmarkDetector:
    if name == "mediapipe":
        from vhap.preprocess.landmarks.mediapipe_mesh import MediaPipeFaceMesh

        return MediaPipeFaceMesh()
    if name == "dlib68":
        from vhap.preprocess.landmarks.dlib68 import Dlib68

        return Dlib68()
    if name in ("star", "face-alignment"):
        from vhap.preprocess.landmarks.heatmap_adapters import CropHeatmapDetector

        return CropHeatmapDetector(name, weights)
    raise VhapError(f"unknown landmark detector '{name}'", fix=f"use one of {DETECTORS}")


def detect_sequence(
    detector: LandmarkDetector,
    frames: dict[str, Path],
    background: tuple[int, int, int] | None = None,
    alpha_dir: Path | None = None,
    camera: str | None = None,
    progress=None,
    quality: bool = False,
    other: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, Detection]]]:
    """Run ``detector`` over one camera's frames (timestep id → path) in time order.

    ``quality``: per-point confidences from :func:`vhap.preprocess.landmarks.quality.frame_confidence` (with the
    frame's matte from ``alpha_dir`` when there is one, and ``other``: timestep id → (68,3) normalised points of
    a second detector). Returns the npz arrays and a few (frame, detection) pairs for the overlay.
    """
    ids = sorted(frames)
    T = len(ids)
    lmk = np.full((T, 68, 3), -1, np.float32)
    box = np.full((T, 5), -1, np.float32)
    valid = np.zeros(T, bool)
    mp = np.full((T, 478, 3), -1, np.float32) if detector.gives_mediapipe else None
    mpz = np.zeros((T, 478), np.float32) if detector.gives_mediapipe else None
    flags = np.zeros((T, 68), np.uint8)
    excess = np.zeros(T, np.float32)
    detector.reset()
    keep = {ids[i] for i in np.linspace(0, T - 1, min(T, 4)).round().astype(int)}
    shown = []
    size = None
    for t, ts in enumerate(ids):
        rgb = read_rgb(frames[ts])
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            raise VhapError(f"frame size {rgb.shape[:2]} differs from {size}", path=frames[ts])
        if background is not None:
            a = resize(read_alpha(alpha_dir / f"{frame_stem(camera, ts)}.png"), size)[..., None] / 255.0
            rgb = (rgb * a + np.array(background) * (1 - a) + 0.5).astype(np.uint8)
        det = detector(rgb)
        h, w = size
        norm = np.array([w, h], np.float32)
        if det.ibug68 is not None and np.all(np.isfinite(det.ibug68)):
            valid[t] = True
            lmk[t, :, :2] = det.ibug68 / norm
            lmk[t, :, 2] = 1.0
            if quality:
                from vhap.preprocess.landmarks.quality import frame_confidence

                matte = None
                if alpha_dir is not None and (alpha_dir / f"{frame_stem(camera, ts)}.png").is_file():
                    matte = resize(read_alpha(alpha_dir / f"{frame_stem(camera, ts)}.png"), size) / 255.0
                o = other.get(ts) if other is not None else None
                o_px = None if o is None or not (o[:, 2] > 0).all() else o[:, :2] * norm
                lmk[t, :, 2], flags[t], excess[t] = frame_confidence(rgb, det.ibug68, matte, o_px)
            if det.box is not None:
                box[t] = [det.box[0] / w, det.box[1] / h, det.box[2] / w, det.box[3] / h, det.score]
            if mp is not None and det.mediapipe478 is not None:
                mp[t, :, :2] = det.mediapipe478[:, :2] / norm
                mp[t, :, 2] = 1.0
                mpz[t] = det.mediapipe478[:, 2] / w
        if ts in keep:
            shown.append((rgb, det))
        if progress is not None:
            progress.update(1)
    arrays = {
        "face_landmark_2d": lmk,
        "bounding_box": box,
        "timestep_id": np.array(ids),
        "valid": valid,
        "image_size": np.array(size, np.int64),
    }
    if quality:
        arrays["landmark_flags"] = flags  # quality.FLAG_* bits per point
        arrays["open_mouth_excess"] = excess  # eye distances the mouth interior reaches below the lower lip
    if mp is not None:
        arrays["mediapipe_478"] = mp
        arrays["mediapipe_478_z"] = mpz
        arrays["mediapipe_to_ibug68"] = MEDIAPIPE_TO_IBUG68
    return arrays, shown


def _read_other(folder: Path, detector: str, camera: str | None) -> dict[str, np.ndarray]:
    """Timestep id → (68,3) normalised points of another detector's landmark file (for --cross-check)."""
    path = landmark_path(folder, detector, camera)
    if not path.is_file():
        raise VhapError(
            f"no {detector} landmarks to cross-check with", path=path, fix=f"run `vhap landmarks --detector {detector}`"
        )
    with np.load(path) as z:
        ids, pts = z["timestep_id"], np.asarray(z["face_landmark_2d"], np.float32)
    return {str(ts): p for ts, p in zip(ids, pts, strict=True)}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def detect_landmarks(cfg: LandmarkConfig) -> dict[str | None, Path]:
    """Run detection for every camera of ``cfg.folder``; returns {camera (None = monocular): npz path}."""
    if cfg.folder is None:
        raise VhapError("no sequence folder given", fix="pass the sequence folder (the one holding images/)")
    folder = Path(cfg.folder)
    if not folder.is_dir():
        raise VhapError("sequence folder not found", path=folder, fix="vhap landmarks <sequence folder>")
    images_dir = pick_images_dir(folder, cfg.downsample)
    frames = list_frames(images_dir)
    multi = None not in frames
    cams = sorted(frames, key=str)
    if cfg.cameras:
        missing = [c for c in cfg.cameras if c not in frames]
        if missing:
            raise VhapError(f"cameras {missing} have no frames; found {cams}", path=images_dir)
        cams = list(cfg.cameras)
    bg = None
    if cfg.background_color is not None:
        bg = (255, 255, 255) if cfg.background_color == "white" else (0, 0, 0)
        if not (folder / "alpha_maps").is_dir():
            raise VhapError(
                "background_color needs alpha maps", path=folder / "alpha_maps", fix=f"run `vhap matting {folder}`"
            )
    detector = make_detector(cfg.detector, cfg.weights)
    results: dict[str | None, tuple[dict, list]] = {}
    try:
        total = sum(len(frames[c]) for c in cams)
        with tqdm(total=total, desc=f"landmarks {cfg.detector}", unit="frame", disable=None) as bar:
            for cam in cams:
                other = _read_other(folder, cfg.cross_check, cam) if cfg.cross_check else None
                arrays, shown = detect_sequence(
                    detector, frames[cam], bg, folder / "alpha_maps", cam, bar, quality=cfg.quality, other=other
                )
                if not arrays["valid"].any() and not multi:
                    raise VhapError(
                        f"no face found in any of {len(arrays['valid'])} frames",
                        path=images_dir,
                        fix=NO_FACE_FIX,
                    )
                n_missing = int((~arrays["valid"]).sum())
                if n_missing:  # kept as valid=False in the npz; said loudly, as the fit ignores those frames
                    missing = [t for t, ok in zip(sorted(frames[cam]), arrays["valid"], strict=True) if not ok]
                    shown_ids = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                    print(
                        f"vhap landmarks: warning: {'' if cam is None else f'camera {cam}: '}no face found in "
                        f"{n_missing} of {len(missing) + int(arrays['valid'].sum())} frames ({shown_ids}); "
                        "they are marked valid=False",
                        file=sys.stderr,
                    )
                results[cam] = (arrays, shown)
    finally:
        detector.close()
    # A profile view of a rig may show no detectable face at all (VHAP stores such frames as failed too): its
    # file marks every frame invalid and the fit uses the other views. Only no face in any view is an error.
    if multi and not any(r[0]["valid"].any() for r in results.values()):
        raise VhapError(
            f"no face found in any frame of cameras {[str(c) for c in results]}",
            path=images_dir,
            fix=NO_FACE_FIX,
        )

    meta = {
        "detector": cfg.detector,
        "images": images_dir.name,
        "background_color": cfg.background_color,
        "valid_fraction": {str(c): float(r[0]["valid"].mean()) for c, r in results.items()},
    }
    out: dict[str | None, Path] = {}
    if not multi:
        arrays, shown = results[None]
        path = landmark_path(folder, cfg.detector, None)
        _write_npz(path, arrays)
        _write_overlay(path.with_name(f"{cfg.detector}_overlay.png"), shown, cfg.overlay_frames)
        out[None] = path
    else:
        target = folder / "landmark2d" / cfg.detector
        with atomic_dir(target) as tmp:
            if target.is_dir() and cfg.cameras:  # keep the other cameras' results
                for p in target.iterdir():
                    if p.is_file() and p.stem.split("_overlay")[0] not in cfg.cameras:
                        (tmp / p.name).write_bytes(p.read_bytes())
            for cam, (arrays, shown) in results.items():
                _write_npz(tmp / f"{cam}.npz", arrays)
                _write_overlay(tmp / f"{cam}_overlay.png", shown, cfg.overlay_frames)
                out[cam] = target / f"{cam}.npz"
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return out


def _write_overlay(path: Path, shown, n: int) -> None:
    if n <= 0 or not shown:
        return
    tiles = []
    for rgb, det in shown[:n]:
        tiles.append(draw_landmarks(rgb, det.ibug68, det.mediapipe478))
    write_overlay(path, tiles)


__all__ = ["DETECTORS", "LandmarkConfig", "detect_landmarks", "detect_sequence", "make_detector", "mediapipe_to_ibug68"]
