"""A reader of exported datasets that follows GaussianAvatars' reading semantics (VHAP_SPEC §6.7).

Written from the spec (not from GA's code) so tests can check that an export is loadable *the way GA loads
it*, including its simplifications:

- cameras: only ``transform_matrix`` (OpenGL c2w → OpenCV by negating columns 1–2, then inverted to w2c) and
  ``camera_angle_x`` (per frame, else top level) are used; FoV-y follows from FoV-x and the aspect ratio;
  ``fl_y``, ``cx``, ``cy`` are ignored — square pixels and a centred principal point are assumed;
- ``camera_index`` is read only when the frame has a ``camera_id`` key;
- ``file_path`` gets ``.png`` appended when it has no suffix and is resolved relative to the dataset folder;
- FLAME: each ``timestep_index`` of train and test loads its ``flame_param_path`` (first frame wins);
  ``shape`` and ``static_offset`` come from timestep 0; a missing ``static_offset`` is an error unless
  ``disable_static_offset``; ``dynamic_offset`` is ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

SPLITS = ("train", "val", "test")
PER_TIMESTEP_KEYS = ("expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation")


def fov_to_focal(fov: float, pixels: int) -> float:
    return pixels / (2.0 * math.tan(fov / 2.0))


def focal_to_fov(focal: float, pixels: int) -> float:
    return 2.0 * math.atan(pixels / (2.0 * focal))


@dataclass
class GaCamera:
    """One frame as GA sees it. ``R`` is the *transpose* of the w2c rotation and ``T`` the w2c translation
    (GA's storage), both OpenCV."""

    uid: int
    timestep_index: int
    camera_index: int | None
    R: np.ndarray
    T: np.ndarray
    fovx: float
    fovy: float
    width: int
    height: int
    image_path: Path

    def w2c(self) -> np.ndarray:
        """(4,4) OpenCV world-to-camera."""
        m = np.eye(4)
        m[:3, :3] = self.R.T
        m[:3, 3] = self.T
        return m

    def K(self) -> np.ndarray:
        """(3,3) OpenCV intrinsics GA effectively renders with: square pixels, centred principal point."""
        fx = fov_to_focal(self.fovx, self.width)
        fy = fov_to_focal(self.fovy, self.height)
        return np.array([[fx, 0.0, self.width / 2.0], [0.0, fy, self.height / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class GaFlameParams:
    """Per-timestep FLAME parameters as GA holds them (``expr`` (N,100), poses (N,3)/(N,6), ``translation``)."""

    num_timesteps: int
    shape: np.ndarray
    static_offset: np.ndarray | None
    per_timestep: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class GaDataset:
    cameras: dict[str, list[GaCamera]]
    flame: GaFlameParams


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise VhapError("file not found (GaussianAvatars needs it)", path=path, fix="re-run `vhap export`")
    return json.loads(path.read_text())


def _read_split(root: Path, doc: dict, start_uid: int) -> list[GaCamera]:
    import torch

    from vhap.render import c2w_opengl_to_opencv, invert_rigid

    cams = []
    for i, frame in enumerate(doc["frames"]):
        fovx = float(frame.get("camera_angle_x", doc.get("camera_angle_x")))
        file_path = frame["file_path"]
        if not Path(file_path).suffix:
            file_path += ".png"
        image_path = root / file_path
        c2w_gl = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
        w2c = invert_rigid(c2w_opengl_to_opencv(c2w_gl)).numpy()
        if "w" in frame and "h" in frame:
            width, height = int(frame["w"]), int(frame["h"])
        else:
            from PIL import Image

            with Image.open(image_path) as img:
                width, height = img.size
        fovy = focal_to_fov(fov_to_focal(fovx, width), height)
        cams.append(
            GaCamera(
                uid=start_uid + i,
                timestep_index=int(frame["timestep_index"]),
                camera_index=int(frame["camera_index"]) if "camera_id" in frame else None,
                R=w2c[:3, :3].T.copy(),
                T=w2c[:3, 3].copy(),
                fovx=fovx,
                fovy=fovy,
                width=width,
                height=height,
                image_path=image_path,
            )
        )
    return cams


def read_ga_dataset(root: str | Path, num_verts: int | None = None, disable_static_offset: bool = False) -> GaDataset:
    """Load an export the way GaussianAvatars does (module docstring).

    ``num_verts``: GA's FLAME vertex count; a shorter ``static_offset`` is zero-padded to it (None: as is).
    """
    root = Path(root)
    if not (root / "canonical_flame_param.npz").is_file():
        raise VhapError(
            "no canonical_flame_param.npz: GaussianAvatars would not treat this as a dynamic FLAME dataset",
            path=root,
            fix="export with `vhap export`",
        )
    docs = {s: _load_json(root / f"transforms_{s}.json") for s in SPLITS}
    cameras, uid = {}, 0
    for s in SPLITS:
        cameras[s] = _read_split(root, docs[s], uid)
        uid += len(cameras[s])

    paths: dict[int, str] = {}
    for s in ("train", "test"):
        for frame in docs[s]["frames"]:
            paths.setdefault(int(frame["timestep_index"]), frame["flame_param_path"])
    if not paths:
        raise VhapError("no frames in transforms_train/test.json", path=root, fix="re-run `vhap export`")
    num_timesteps = max(paths) + 1
    if 0 not in paths:
        raise VhapError("no frame of timestep 0: GA takes shape/static_offset from it", path=root)

    loaded = {}
    for t, p in paths.items():
        with np.load(root / p) as data:
            loaded[t] = {k: data[k] for k in data.files}
    first = loaded[0]
    static_offset = None
    if not disable_static_offset:
        if "static_offset" not in first:
            raise VhapError(
                "flame_param of timestep 0 has no static_offset: GaussianAvatars crashes without "
                "--disable_flame_static_offset",
                path=root / paths[0],
            )
        static_offset = np.asarray(first["static_offset"], dtype=np.float32)
        if num_verts is not None and static_offset.shape[1] < num_verts:
            pad = num_verts - static_offset.shape[1]
            static_offset = np.pad(static_offset, ((0, 0), (0, pad), (0, 0)))
    per_ts = {}
    for key in PER_TIMESTEP_KEYS:
        width = np.asarray(first[key]).reshape(-1).shape[0]
        arr = np.zeros((num_timesteps, width), dtype=np.float32)
        for t, params in loaded.items():
            arr[t] = np.asarray(params[key], dtype=np.float32).reshape(-1)
        per_ts[key] = arr
    flame = GaFlameParams(
        num_timesteps=num_timesteps,
        shape=np.asarray(first["shape"], dtype=np.float32).reshape(-1),
        static_offset=static_offset,
        per_timestep=per_ts,
    )
    return GaDataset(cameras=cameras, flame=flame)
