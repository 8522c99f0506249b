"""``load_sequence``: one tracked sequence (frames, mattes, landmarks, cameras) resident in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vhap.data.calibration import CameraRig, align_cameras_to_axes, load_camera_params
from vhap.data.config import DataConfig, resolve_sequence_dir
from vhap.data.images import read_alpha, read_many, read_rgb
from vhap.data.layout import (
    MONOCULAR_CAMERA,
    calibration_path,
    detect_layout,
    frame_stem,
    images_dir_name,
    landmark_path,
    list_frames,
    sequence_folder,
)
from vhap.data.selection import division_indices, parse_subset, select_indices
from vhap.errors import VhapError

BACKGROUND_RGB = {"white": (255, 255, 255), "black": (0, 0, 0)}


@dataclass
class SequenceData:
    """A loaded sequence. T timesteps × C cameras, all frames at one size (H, W).

    images (T,C,H,W,3) uint8 (background-composited when asked); alphas (T,C,H,W) uint8 | None;
    landmarks (T,C,68,3) float32 (x/W, y/H, confidence; −1 coords and confidence 0 where no face);
    landmarks_mp (T,C,478,3) float32 | None; K (C,3,3) float32 pixels at (H,W) | None (uncalibrated);
    w2c (C,4,4) float32 OpenCV world→camera in the aligned world | None; world_rotation (3,3) the
    alignment applied to the calibration world (x_aligned = R x_calib) | None.
    """

    images: torch.Tensor
    alphas: torch.Tensor | None
    landmarks: torch.Tensor
    landmarks_mp: torch.Tensor | None
    K: torch.Tensor | None
    w2c: torch.Tensor | None
    timestep_ids: list[str]
    camera_ids: list[str]
    image_size: tuple[int, int]
    frame_paths: list[list[Path]]
    alpha_paths: list[list[Path | None]]
    folder: Path
    layout: str
    subject: str | None = None
    sequence: str = ""
    timestep_indices_original: list[int] = field(default_factory=list)
    landmark_valid: torch.Tensor | None = None
    world_rotation: np.ndarray | None = None

    @property
    def num_timesteps(self) -> int:
        return len(self.timestep_ids)

    @property
    def num_cameras(self) -> int:
        return len(self.camera_ids)

    @property
    def calibrated(self) -> bool:
        return self.K is not None


def _missing_landmarks(T: int):
    """(T,68,3) all −1 with confidence 0, no MediaPipe points, (T,) all False: a camera without landmarks."""
    missing = np.full((T, 68, 3), -1, np.float32)
    missing[..., 2] = 0
    return missing, None, np.zeros(T, bool)


def _load_landmarks(folder: Path, detector: str, camera: str | None, timestep_ids: list[str], required: bool):
    """(T,68,3), (T,478,3)|None, (T,) bool — matched to ``timestep_ids`` by id, not by position."""
    path = landmark_path(folder, detector, camera)
    T = len(timestep_ids)
    if not path.is_file():
        if required:
            raise VhapError(
                "landmark file not found",
                path=path,
                fix=f"run `vhap landmarks {folder} --detector {detector}` (same --downsample as tracking)",
            )
        return _missing_landmarks(T)
    try:
        with np.load(path) as z:
            lmk = z["face_landmark_2d"].astype(np.float32)
            ids = [str(s) for s in z["timestep_id"]] if "timestep_id" in z else None
            valid = z["valid"].astype(bool) if "valid" in z else None
            mp = z["mediapipe_478"].astype(np.float32) if "mediapipe_478" in z else None
    except Exception as e:  # noqa: BLE001 - any unreadable npz is the same user error
        raise VhapError(f"cannot read landmark file: {e}", path=path, fix="re-run `vhap landmarks`") from e
    fix = "re-run `vhap landmarks` (it writes these arrays)"
    if lmk.ndim != 3 or lmk.shape[1:] != (68, 3):
        raise VhapError(f"face_landmark_2d has shape {lmk.shape}, expected (T,68,3)", path=path, fix=fix)
    N = len(lmk)
    if mp is not None and (mp.ndim != 3 or mp.shape != (N, 478, 3)):
        raise VhapError(f"mediapipe_478 has shape {mp.shape}, expected ({N},478,3)", path=path, fix=fix)
    if valid is not None and valid.shape != (N,):
        raise VhapError(f"valid has shape {valid.shape}, expected ({N},)", path=path, fix=fix)
    if ids is not None and len(ids) != N:
        raise VhapError(f"{len(ids)} timestep ids for {N} landmark frames", path=path, fix=fix)
    if valid is None:
        valid = ~np.any(lmk[..., :2] == -1, axis=(1, 2))
    # NaN/Inf coordinates: that frame has no usable landmarks
    valid = valid & np.isfinite(lmk).all(axis=(1, 2))
    if mp is not None:
        valid = valid & np.isfinite(mp).all(axis=(1, 2))
    _check_normalised(lmk[valid], path, "face_landmark_2d")
    if mp is not None:
        _check_normalised(mp[valid], path, "mediapipe_478")
    if ids is None:  # VHAP files carry no ids: they follow the sorted frames of the full sequence
        if len(lmk) != T:
            raise VhapError(
                f"{len(lmk)} landmark frames but {T} timesteps and no 'timestep_id' key to match them", path=path
            )
        ids = list(timestep_ids)
    index = {t: i for i, t in enumerate(ids)}
    missing = [t for t in timestep_ids if t not in index]
    if missing:
        raise VhapError(
            f"no landmarks for timesteps {missing[:5]}{' ...' if len(missing) > 5 else ''}",
            path=path,
            fix="re-run `vhap landmarks` after re-extracting frames",
        )
    rows = np.array([index[t] for t in timestep_ids])
    lmk, valid = lmk[rows], valid[rows]
    lmk[~valid] = -1
    lmk[~valid, :, 2] = 0
    if mp is not None:
        mp = mp[rows]
        mp[~valid] = -1
        mp[~valid, :, 2] = 0
    return lmk, mp, valid


#: landmark coordinates are fractions of the image size; a face reaching past this is not one that can be tracked,
#: while pixel units exceed it on any image larger than 2 px
NORMALISED_LIMIT = 2.0


def _check_normalised(points: np.ndarray, path: Path, key: str) -> None:
    """Raise when the x/y of ``points`` (N,K,3) are not fractions of the image size (pixel units, say)."""
    if points.size == 0:
        return
    xy = np.abs(points[..., :2])
    if float(xy.max()) > NORMALISED_LIMIT:
        raise VhapError(
            f"{key} coordinates reach {float(xy.max()):.1f}: they must be x/W, y/H in [0, 1] "
            "(these look like pixel coordinates)",
            path=path,
            fix="divide x by the image width and y by its height, or re-run `vhap landmarks`",
        )


def require_fit_landmarks(seq: SequenceData, detector: str) -> None:
    """Raise when no frame of ``seq`` has valid landmarks: tracking then has nothing to place the head with and
    would 'finish' with garbage (all NaN, no face found, or no landmark file with --data.no-require-landmarks)."""
    if seq.landmark_valid is not None and bool(seq.landmark_valid.any()):
        return
    raise VhapError(
        f"no frame has valid '{detector}' landmarks (all missing, NaN, or no face found): nothing to fit the head to",
        path=seq.folder / "landmark2d",
        fix=f"run `vhap landmarks {seq.folder} --detector {detector}` and check that the frames show a face",
    )


def load_sequence(cfg: DataConfig) -> SequenceData:
    """Load frames, alpha maps, landmarks and cameras of one sequence (see :class:`SequenceData`)."""
    cfg = resolve_sequence_dir(cfg)
    root = Path(cfg.root)
    layout = detect_layout(root) if cfg.layout == "auto" else cfg.layout
    folder = sequence_folder(root, layout, cfg.sequence, cfg.subject)
    images_dir = folder / images_dir_name(cfg.downsample)
    # monocular roots may also hold uncalibrated multi-camera folders (cam_<serial>_<ts>.jpg): infer
    frames = list_frames(images_dir, True if layout != "monocular" else None)
    multi = None not in frames

    # cameras: calibration order when calibrated, else sorted serials
    rig: CameraRig | None = None
    if layout in ("nersemble_v1", "nersemble_v2"):
        rig = load_camera_params(
            calibration_path(
                root, layout, folder.parent.name if layout == "nersemble_v1" else folder.parent.parent.name
            )
        )
        camera_ids = [c for c in rig.camera_ids if c in frames]
        extra = sorted(set(frames) - set(rig.camera_ids))
        if extra:
            raise VhapError(f"frames of cameras {extra} have no calibration", path=rig.source)
    else:
        camera_ids = sorted(frames) if multi else [None]
    if cfg.cameras:
        unknown = [c for c in cfg.cameras if c not in camera_ids]
        if unknown:
            raise VhapError(f"cameras {unknown} not found; available: {camera_ids}", path=images_dir)
        camera_ids = [c for c in camera_ids if c in cfg.cameras]

    tokens = parse_subset(cfg.subset)
    div = division_indices(cfg.division, len(camera_ids))
    if div is not None:
        camera_ids = [camera_ids[i] for i in div]
    camera_ids = [camera_ids[i] for i in select_indices(len(camera_ids), tokens, "c", "cameras")]

    # timesteps: the sorted union over the selected cameras; every camera must have every timestep
    all_ts = sorted(set().union(*(frames[c].keys() for c in camera_ids)))
    for c in camera_ids:
        gaps = [t for t in all_ts if t not in frames[c]]
        if gaps:
            raise VhapError(
                f"camera {c} lacks frames for timesteps {gaps[:5]}", path=images_dir, fix="re-run `vhap preprocess`"
            )
    if cfg.timesteps:
        unknown = [t for t in cfg.timesteps if t not in frames[camera_ids[0]]]
        if unknown:
            raise VhapError(f"timesteps {unknown[:5]} not found", path=images_dir)
        keep = set(cfg.timesteps)
        all_ts_idx = [i for i, t in enumerate(all_ts) if t in keep]
    else:
        all_ts_idx = list(range(len(all_ts)))
    picked = [all_ts_idx[i] for i in select_indices(len(all_ts_idx), tokens, "t")]
    timestep_ids = [all_ts[i] for i in picked]
    T, C = len(timestep_ids), len(camera_ids)

    frame_paths = [[frames[c][t] for c in camera_ids] for t in timestep_ids]
    flat = [p for row in frame_paths for p in row]
    first = read_rgb(flat[0])
    H, W = first.shape[:2]
    if cfg.scale_factor != 1.0:
        if not (0 < cfg.scale_factor <= 1):
            raise VhapError(f"scale_factor must be in (0, 1], got {cfg.scale_factor}")
        H, W = round(H * cfg.scale_factor), round(W * cfg.scale_factor)
    imgs = read_many(flat, read_rgb, cfg.num_workers, (H, W))
    bad = [flat[i] for i, im in enumerate(imgs) if im.shape[:2] != (H, W)]
    if bad:
        raise VhapError(f"frame sizes differ within the sequence (expected {H}x{W})", path=bad[0])
    images = np.stack(imgs).reshape(T, C, H, W, 3)

    alpha_dir = folder / "alpha_maps"
    alpha_paths: list[list[Path | None]] = [[None] * C for _ in range(T)]
    alphas = None
    if cfg.use_alpha or cfg.background_color is not None:
        cand = [[alpha_dir / f"{frame_stem(c, t)}.png" for c in camera_ids] for t in timestep_ids]
        exists = [p.is_file() for row in cand for p in row]
        if all(exists):
            alpha_paths = cand
            alist = read_many([p for row in cand for p in row], read_alpha, cfg.num_workers, (H, W))
            alphas = np.stack(alist).reshape(T, C, H, W)
        elif cfg.background_color is not None:
            miss = [p for row in cand for p in row if not p.is_file()][0]
            raise VhapError(
                f"background_color={cfg.background_color} needs alpha maps for every frame",
                path=miss,
                fix=f"run `vhap matting {folder}` or drop --data.background_color",
            )
    if cfg.background_color is not None:
        bg = np.array(BACKGROUND_RGB[cfg.background_color], np.float32)
        a = alphas[..., None].astype(np.float32) / 255.0
        images = np.clip(images.astype(np.float32) * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)

    if cfg.landmark_cameras:
        unknown = [c for c in cfg.landmark_cameras if c not in camera_ids]
        if unknown:
            raise VhapError(
                f"landmark cameras {unknown} are not among the tracked cameras {camera_ids}",
                path=folder,
                fix="list serials of tracked cameras in --data.landmark-cameras (or leave it empty for all)",
            )
    lmks, mps, valids = [], [], []
    skipped = []  # cameras whose landmarks are left out on purpose (not in landmark_cameras)
    for c in camera_ids:
        if cfg.landmark_cameras and c not in cfg.landmark_cameras:
            lmk, mp, valid = _missing_landmarks(len(timestep_ids))
            skipped.append(len(lmks))
        else:
            lmk, mp, valid = _load_landmarks(folder, cfg.landmark_detector, c, timestep_ids, cfg.require_landmarks)
        lmks.append(lmk)
        mps.append(mp)
        valids.append(valid)
    # a left-out camera has no MediaPipe points either: mark them missing rather than dropping the others'
    if skipped and all(m is not None for i, m in enumerate(mps) if i not in skipped):
        for i in skipped:
            mps[i] = np.full((len(timestep_ids), 478, 3), -1, np.float32)
            mps[i][..., 2] = 0
    landmarks = torch.from_numpy(np.stack(lmks, 1))
    landmarks_mp = None if any(m is None for m in mps) else torch.from_numpy(np.stack(mps, 1))

    K = w2c = world_rotation = None
    if rig is not None:
        sel = rig.select(camera_ids).scaled_to((H, W))
        w2c_np = sel.w2c
        if cfg.align_cameras:
            # alignment uses the whole rig so that it does not depend on the camera selection
            _, world_rotation = align_cameras_to_axes(rig.w2c)
            M = np.eye(4)
            M[:3, :3] = world_rotation.T
            w2c_np = w2c_np @ M
        K = torch.from_numpy(sel.K.astype(np.float32))
        w2c = torch.from_numpy(w2c_np.astype(np.float32))

    return SequenceData(
        images=torch.from_numpy(images),
        alphas=None if alphas is None else torch.from_numpy(alphas),
        landmarks=landmarks,
        landmarks_mp=landmarks_mp,
        K=K,
        w2c=w2c,
        timestep_ids=timestep_ids,
        camera_ids=[MONOCULAR_CAMERA if c is None else c for c in camera_ids],
        image_size=(H, W),
        frame_paths=frame_paths,
        alpha_paths=alpha_paths,
        folder=folder,
        layout=layout,
        subject=cfg.subject,
        sequence=folder.name,
        timestep_indices_original=picked,
        landmark_valid=torch.from_numpy(np.stack(valids, 1)),
        world_rotation=world_rotation,
    )
