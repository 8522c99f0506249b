"""``vhap matting``: foreground alpha for every extracted frame, saved as ``alpha_maps/<frame stem>.png``.

Methods: ``mediapipe`` (selfie segmentation, default, Apache-2.0), ``rvm`` (RobustVideoMatting ONNX,
GPL-3.0 optional extra), ``background`` (classical plate difference; needs a clean background plate
per camera), ``bgmv2`` (user-supplied BackgroundMattingV2 TorchScript model + plates).

Alpha maps have the size of the frames they were computed on (``images`` or ``images_<n>``); the
loader resizes them when another resolution is read. ``alpha_maps/meta.json`` records the method.
The folder is replaced atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro
from tqdm import tqdm

from vhap.config.core import AT_LEAST_ONE, Range
from vhap.data.images import read_rgb, resize, write_alpha_png
from vhap.data.layout import background_folder, list_frames, pick_images_dir
from vhap.errors import VhapError
from vhap.preprocess.matting.base import Matter
from vhap.utils.atomic import atomic_dir

METHODS = ("mediapipe", "rvm", "background", "bgmv2")


@dataclass
class MattingConfig:
    """Compute alpha mattes for the extracted frames of one sequence folder."""

    folder: Annotated[Path | None, tyro.conf.Positional] = None
    """sequence folder (holding images/ or images_<n>/)"""
    method: Literal["mediapipe", "rvm", "background", "bgmv2"] = "mediapipe"
    """mediapipe (default) | rvm (GPL-3.0 extra) | background (plate difference) | bgmv2 (your weights)"""
    downsample: Annotated[int | None, AT_LEAST_ONE] = None
    """matte images_<n>; default: images/ or the only images_<n>"""
    background: Path | None = None
    """plate image (monocular) or folder of image_<serial>.jpg plates (default: NeRSemble's BACKGROUND)"""
    bgmv2_model: Path | None = None
    """BackgroundMattingV2 TorchScript file for --method bgmv2"""
    rvm_downsample_ratio: Annotated[float | None, Range(gt=0, le=1)] = None
    """RVM internal scale (default: long side ≈ 512 px)"""
    plate_low: float = 6.0
    """background method: Lab distance below which a pixel is background"""
    plate_high: float = 16.0
    """background method: Lab distance above which a pixel is foreground"""
    cameras: tuple[str, ...] = ()
    """only these camera serials (default: all; other cameras' existing mattes are kept)"""


def make_matter(cfg: MattingConfig) -> Matter:
    if cfg.method == "mediapipe":
        from vhap.preprocess.matting.selfie import MediaPipeSelfie

        return MediaPipeSelfie()
    if cfg.method == "rvm":
        from vhap.preprocess.matting.rvm import RobustVideoMatting

        return RobustVideoMatting(cfg.rvm_downsample_ratio)
    if cfg.method == "background":
        from vhap.preprocess.matting.plate import PlateMatting

        return PlateMatting(cfg.plate_low, cfg.plate_high)
    if cfg.method == "bgmv2":
        from vhap.preprocess.matting.bgmv2 import BackgroundMattingV2

        return BackgroundMattingV2(cfg.bgmv2_model)
    raise VhapError(f"unknown matting method '{cfg.method}'", fix=f"use one of {METHODS}")


def _plate_folder(cfg: MattingConfig, folder: Path) -> Path | None:
    if cfg.background is not None:
        return Path(cfg.background)
    resolved = folder.resolve()
    if resolved.parent.name == "sequences":
        return background_folder(resolved.parent.parent.parent, "nersemble_v2", resolved.parent.parent.name)
    if (resolved.parent.parent / "camera_params").is_dir():
        return background_folder(resolved.parent.parent, "nersemble_v1", resolved.parent.name)
    return None


def load_plate(cfg: MattingConfig, folder: Path, camera: str | None, size: tuple[int, int], meta: dict) -> np.ndarray:
    """The background plate of ``camera`` resized to ``size`` and colour-corrected like the frames."""
    src = _plate_folder(cfg, folder)
    fix = "pass --background PLATE.jpg (monocular) or a folder of image_<serial>.jpg plates"
    if src is None:
        raise VhapError(f"--method {cfg.method} needs a background plate", path=folder, fix=fix)
    if src.is_file():
        path = src
    else:
        names = [f"image_{camera}", f"cam_{camera}", f"{camera}"] if camera is not None else ["background", "image"]
        cands = [src / f"{n}{ext}" for n in names for ext in (".jpg", ".png", ".jpeg")]
        path = next((p for p in cands if p.is_file()), None)
        if path is None:
            raise VhapError(f"no background plate for camera {camera} (looked for {names[0]}.jpg)", path=src, fix=fix)
    plate = resize(read_rgb(path), size)
    corr = (meta.get("cameras", {}).get(str(camera if camera is not None else "0")) or {}).get("colour_correction")
    if corr:
        from vhap.preprocess.colour import ColourCorrection

        plate = ColourCorrection(corr["kind"], np.asarray(corr["matrix"]), corr.get("source", "")).apply(plate)
    return plate


#: a matte is empty when fewer than this fraction of its pixels are foreground (alpha >= 0.5)
EMPTY_MATTE_FRACTION = 1e-3


def is_empty_matte(alpha: np.ndarray) -> bool:
    """Whether an (H,W) uint8 matte shows no foreground (a faceless frame, or a failed matting)."""
    return float((alpha >= 128).mean()) < EMPTY_MATTE_FRACTION


def report_empty_mattes(empty: list[str], total: int, images_dir: Path) -> None:
    """All mattes empty: an error (the result is garbage); some: a loud warning (recorded in meta.json)."""
    if not empty:
        return
    if len(empty) == total:
        raise VhapError(
            f"every one of the {total} mattes is empty: no person found in any frame",
            path=images_dir,
            fix="check that the frames show the subject (and the --method / background plates)",
        )
    import sys

    shown = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
    print(
        f"vhap matting: warning: {len(empty)} of {total} frames have an empty matte (no person found): {shown}; "
        "listed as empty_frames in alpha_maps/meta.json",
        file=sys.stderr,
    )


def run_matting(cfg: MattingConfig) -> Path:
    """Write ``<folder>/alpha_maps/*.png``; returns the alpha folder."""
    if cfg.folder is None:
        raise VhapError("no sequence folder given", fix="pass the sequence folder (the one holding images/)")
    folder = Path(cfg.folder)
    if not folder.is_dir():
        raise VhapError("sequence folder not found", path=folder, fix="vhap matting <sequence folder>")
    images_dir = pick_images_dir(folder, cfg.downsample)
    frames = list_frames(images_dir)
    cams = sorted(frames, key=str)
    if cfg.cameras:
        missing = [c for c in cfg.cameras if c not in frames]
        if missing:
            raise VhapError(f"cameras {missing} have no frames; found {cams}", path=images_dir)
        cams = list(cfg.cameras)
    meta_path = images_dir / "meta.json"
    frames_meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    matter = make_matter(cfg)
    target = folder / "alpha_maps"
    try:
        with atomic_dir(target) as tmp:
            if cfg.cameras and target.is_dir():  # keep other cameras' mattes
                for p in target.glob("*.png"):
                    cam = p.stem.split("_")[1] if p.stem.startswith("cam_") else None
                    if cam not in cfg.cameras:
                        (tmp / p.name).write_bytes(p.read_bytes())
            empty: list[str] = []
            total = sum(len(frames[c]) for c in cams)
            with tqdm(total=total, desc=f"matting {cfg.method}", unit="frame", disable=None) as bar:
                for cam in cams:
                    matter.reset()
                    plate = None
                    for ts in sorted(frames[cam]):
                        path = frames[cam][ts]
                        rgb = read_rgb(path)
                        if matter.needs_background and plate is None:
                            plate = load_plate(cfg, folder, cam, rgb.shape[:2], frames_meta)
                        alpha = matter(rgb, plate)
                        if is_empty_matte(alpha):
                            empty.append(path.stem)
                        write_alpha_png(tmp / f"{path.stem}.png", alpha)
                        bar.update(1)
            report_empty_mattes(empty, total, images_dir)
            meta = {"method": cfg.method, "images": images_dir.name, "cameras": [str(c) for c in cams]}
            meta["empty_frames"] = empty  # no foreground found (no person in view, or the matting failed)
            (tmp / "meta.json").write_text(json.dumps(meta))
    finally:
        matter.close()
    return target


__all__ = ["METHODS", "MattingConfig", "make_matter", "run_matting"]
