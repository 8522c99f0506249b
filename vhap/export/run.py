"""Reading a finished tracking run folder (the export's input; see docs/dev/INTERFACES.md → vhap.track outputs).

A run folder holds ``config.yml``, ``tracked_flame_params.npz`` (+ ``tracked_flame_params_<epoch>.npz``),
``cameras.npz`` (OpenCV ``K``/``w2c`` at tracking resolution), ``frames.json`` (image / alpha path of every
(timestep, camera) pair) and ``DONE``. :func:`load_tracked_run` turns it into a :class:`TrackedRun` with
plain numpy arrays; nothing here imports torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vhap.errors import VhapError

#: keys of the per-timestep FLAME parameters in a tracking npz (VHAP_SPEC §6.2), with their trailing shape
PER_FRAME_KEYS: dict[str, int] = {
    "rotation": 3,
    "translation": 3,
    "neck_pose": 3,
    "jaw_pose": 3,
    "eyes_pose": 6,
}

_IMAGE_KEYS = ("image_path", "image", "rgb_path", "rgb", "file_path", "path")
_ALPHA_KEYS = ("alpha_path", "alpha", "alpha_map_path", "alpha_map", "mask_path")


@dataclass
class FrameRecord:
    """One tracked image: where it is and which (timestep, camera) it belongs to."""

    timestep_index: int
    timestep_id: str
    camera_index: int
    camera_id: str
    image_path: Path
    alpha_path: Path | None = None


@dataclass
class TrackedRun:
    """A tracking run folder read into memory.

    Attributes:
        root: the run folder.
        params_path: the npz the FLAME parameters came from.
        params: arrays of that npz (``rotation`` (T,3), ``translation`` (T,3), ``neck_pose`` (T,3), ``jaw_pose``
            (T,3), ``eyes_pose`` (T,6), ``shape`` (NS,), ``expr`` (T,NE), optional ``static_offset`` (1,V,3),
            ``dynamic_offset`` (T,V,3), ``focal_length`` (1,) …).
        head_model: the head-model name (or directory) the run was tracked with.
        K: (C,3,3) float64 OpenCV intrinsics at tracking resolution (top-left origin, continuous pixels).
        w2c: (C,4,4) float64 OpenCV world-to-camera in the tracking world.
        camera_ids: C camera ids (``'0'`` for a monocular video).
        image_size: (H, W) of the tracking images.
        calibrated: False for a monocular video whose focal length the tracker optimised.
        timestep_ids: T timestep ids (row t of every per-frame array belongs to ``timestep_ids[t]``).
        frames: one :class:`FrameRecord` per (timestep, camera), timestep-major.
        config: the run's ``config.yml`` as a plain dict (empty if unreadable).
    """

    root: Path
    params_path: Path
    params: dict[str, np.ndarray]
    head_model: str
    K: np.ndarray
    w2c: np.ndarray
    camera_ids: list[str]
    image_size: tuple[int, int]
    calibrated: bool
    timestep_ids: list[str]
    frames: list[FrameRecord]
    config: dict = field(default_factory=dict)

    @property
    def num_timesteps(self) -> int:
        return len(self.timestep_ids)

    @property
    def num_cameras(self) -> int:
        return len(self.camera_ids)

    @property
    def has_alpha(self) -> bool:
        return bool(self.frames) and all(f.alpha_path is not None for f in self.frames)

    def config_value(self, dotted: str, default: Any = None) -> Any:
        """A value of the run config by dotted key (``model.add_teeth``), or ``default``."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def resolve_run_folder(src: str | Path) -> Path:
    """``src`` itself if it is a run folder, else its newest run sub-folder (lexicographically last, VHAP §6.3)."""
    src = Path(src)
    if not src.is_dir():
        raise VhapError("tracking run folder not found", path=src, fix="pass the folder written by `vhap track`")
    if (src / "config.yml").is_file() or (src / "tracked_flame_params.npz").is_file():
        return src
    runs = sorted(p for p in src.iterdir() if p.is_dir() and (p / "config.yml").is_file())
    if not runs:
        raise VhapError(
            "not a tracking run folder (no config.yml here or in any sub-folder)",
            path=src,
            fix="pass the folder written by `vhap track` (or its parent output folder)",
        )
    return runs[-1]


def params_file(run: Path, epoch: int = -1) -> Path:
    """The npz of ``epoch`` (−1 = the final ``tracked_flame_params.npz``, else ``tracked_flame_params_<epoch>.npz``)."""
    if epoch < 0:
        path = run / "tracked_flame_params.npz"
        if path.is_file():
            return path
        # a run stopped after some epochs still has numbered snapshots; the newest one is the best we have
        numbered = _numbered_params(run)
        if numbered:
            return numbered[max(numbered)]
        raise VhapError("no tracked_flame_params*.npz in the run folder", path=run, fix="finish the tracking run first")
    path = run / f"tracked_flame_params_{epoch}.npz"
    if not path.is_file():
        have = sorted(_numbered_params(run))
        raise VhapError(f"no parameters for epoch {epoch}", path=path, fix=f"choose one of the epochs {have} or -1")
    return path


def _numbered_params(run: Path) -> dict[int, Path]:
    out = {}
    for p in run.glob("tracked_flame_params_*.npz"):
        m = re.fullmatch(r"tracked_flame_params_(\d+)\.npz", p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise VhapError("file not found", path=path, fix="re-run `vhap track` for this sequence")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:
        raise VhapError(f"cannot read npz ({e})", path=path, fix="re-run `vhap track` for this sequence") from e


def _check_params(params: dict[str, np.ndarray], path: Path) -> int:
    fix = "the file must be written by `vhap track` (keys of VHAP_SPEC §6.2)"
    missing = [k for k in (*PER_FRAME_KEYS, "shape", "expr") if k not in params]
    if missing:
        raise VhapError(f"tracked parameters lack keys {missing}", path=path, fix=fix)
    T = params["translation"].shape[0]
    for key, width in PER_FRAME_KEYS.items():
        if params[key].shape != (T, width):
            raise VhapError(f"'{key}' has shape {params[key].shape}, expected ({T}, {width})", path=path, fix=fix)
    if params["expr"].ndim != 2 or params["expr"].shape[0] != T:
        raise VhapError(f"'expr' has shape {params['expr'].shape}, expected ({T}, NE)", path=path, fix=fix)
    shape = params["shape"]
    if shape.ndim == 2 and shape.shape[0] == 1:
        params["shape"] = shape[0]
    elif shape.ndim != 1:
        raise VhapError(f"'shape' has shape {shape.shape}, expected (NS,)", path=path, fix=fix)
    so = params.get("static_offset")
    if so is not None and (so.ndim != 3 or so.shape[0] != 1 or so.shape[2] != 3):
        raise VhapError(f"'static_offset' has shape {so.shape}, expected (1, V, 3)", path=path, fix=fix)
    do = params.get("dynamic_offset")
    if do is not None and (do.ndim != 3 or do.shape[0] != T or do.shape[2] != 3):
        raise VhapError(f"'dynamic_offset' has shape {do.shape}, expected ({T}, V, 3)", path=path, fix=fix)
    return T


def _resolve(run: Path, p: str | None, relative_to_run: bool) -> Path | None:
    """The path of a frames.json entry. Current runs write paths relative to the run folder and say so; older
    runs wrote them relative to the tracking process's working directory, tried there when not under the run."""
    if p is None or p == "":
        return None
    path = Path(p)
    if path.is_absolute():
        return path
    if relative_to_run or (run / path).exists() or not path.exists():
        return (run / path).resolve()
    return path.resolve()


def _first(d: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def _read_frames(run: Path, camera_ids: list[str], timestep_ids: list[str]) -> list[FrameRecord]:
    """Read ``frames.json``; accepts a flat list of frame dicts, a list (timesteps) of lists (cameras), or a
    ``{timestep_id: {camera_id: {...}}}`` mapping, each frame dict naming its image (and alpha) path."""
    path = run / "frames.json"
    if not path.is_file():
        raise VhapError("frames.json not found", path=path, fix="re-run `vhap track` (it writes frames.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VhapError(f"invalid JSON ({e})", path=path, fix="re-run `vhap track`") from e
    entries = data.get("frames", data) if isinstance(data, dict) else data
    relative_to_run = isinstance(data, dict) and data.get("paths_relative_to") == "run_folder"
    cam_index = {c: i for i, c in enumerate(camera_ids)}
    ts_index = {t: i for i, t in enumerate(timestep_ids)}
    flat: list[tuple[dict, int | None, int | None]] = []
    if isinstance(entries, dict):
        for ts, per_cam in entries.items():
            for cam, d in per_cam.items():
                flat.append(({"timestep_id": ts, "camera_id": cam, **d}, None, None))
    elif isinstance(entries, list):
        for t, item in enumerate(entries):
            if isinstance(item, list):
                flat += [(d, t, c) for c, d in enumerate(item)]
            else:
                flat.append((item, None, None))
    else:
        raise VhapError("frames.json must hold a list or mapping of frames", path=path, fix="re-run `vhap track`")

    frames = []
    for d, t_pos, c_pos in flat:
        if not isinstance(d, dict):
            raise VhapError(f"frames.json: a frame entry is not a mapping: {d!r}", path=path, fix="re-run `vhap track`")
        ts_id = d.get("timestep_id")
        t = d.get("timestep_index", t_pos if ts_id is None else ts_index.get(str(ts_id), t_pos))
        cam_id = d.get("camera_id")
        c = d.get("camera_index", c_pos if cam_id is None else cam_index.get(str(cam_id), c_pos))
        if t is None or c is None:
            raise VhapError(
                f"frames.json: cannot tell the timestep/camera of entry {d!r}", path=path, fix="re-run `vhap track`"
            )
        t, c = int(t), int(c)
        if not (0 <= t < len(timestep_ids)) or not (0 <= c < len(camera_ids)):
            raise VhapError(
                f"frames.json: entry (timestep {t}, camera {c}) outside the tracked {len(timestep_ids)} timesteps x "
                f"{len(camera_ids)} cameras",
                path=path,
                fix="the run folder is inconsistent; re-run `vhap track`",
            )
        image = _resolve(run, _first(d, _IMAGE_KEYS), relative_to_run)
        if image is None:
            raise VhapError(f"frames.json: entry {d!r} names no image path", path=path, fix="re-run `vhap track`")
        frames.append(
            FrameRecord(
                timestep_index=t,
                timestep_id=timestep_ids[t],
                camera_index=c,
                camera_id=camera_ids[c],
                image_path=image,
                alpha_path=_resolve(run, _first(d, _ALPHA_KEYS), relative_to_run),
            )
        )
    # a missing input is an error here, for every reader (export, viewer), not a grey picture later
    for f in frames:
        for what, p in (("image", f.image_path), ("alpha matte", f.alpha_path)):
            if p is not None and not p.is_file():
                raise VhapError(
                    f"input {what} not found: {p} (timestep {f.timestep_id}, camera {f.camera_id})",
                    path=path,
                    fix="restore the preprocessed sequence folder at that place (frames.json paths are relative to "
                    "the run folder), or re-run `vhap track`",
                )
    frames.sort(key=lambda f: (f.timestep_index, f.camera_index))
    seen = {(f.timestep_index, f.camera_index) for f in frames}
    if len(seen) != len(frames):
        raise VhapError("frames.json lists a (timestep, camera) pair twice", path=path, fix="re-run `vhap track`")
    return frames


def load_tracked_run(
    src: str | Path, epoch: int = -1, require_done: bool = True, head_model: str | None = None
) -> TrackedRun:
    """Read a tracking run folder (or the newest run under ``src``) for export.

    Raises :class:`VhapError` when the run is unfinished (no ``DONE``, unless ``require_done=False``) or any
    file is missing or inconsistent. ``head_model`` overrides the head model the run records.
    """
    run = resolve_run_folder(src)
    if require_done and not (run / "DONE").is_file():
        raise VhapError(
            "the tracking run is not finished (no DONE file)",
            path=run,
            fix="wait for `vhap track` to finish, or pass --allow-incomplete to export the newest snapshot",
        )
    config: dict = {}
    if (run / "config.yml").is_file():
        try:
            config = yaml.safe_load((run / "config.yml").read_text()) or {}
        except yaml.YAMLError:
            config = {}
    ppath = params_file(run, epoch)
    params = _load_npz(ppath)
    T = _check_params(params, ppath)

    cams = _load_npz(run / "cameras.npz")
    cpath = run / "cameras.npz"
    for key in ("K", "w2c"):
        if key not in cams:
            raise VhapError(f"cameras.npz lacks '{key}'", path=cpath, fix="re-run `vhap track`")
    K = np.asarray(cams["K"], dtype=np.float64).reshape(-1, 3, 3)
    w2c = np.asarray(cams["w2c"], dtype=np.float64).reshape(-1, 4, 4)
    if K.shape[0] != w2c.shape[0]:
        if K.shape[0] == 1:
            K = np.repeat(K, w2c.shape[0], axis=0)
        else:
            raise VhapError(f"cameras.npz: {K.shape[0]} K but {w2c.shape[0]} w2c", path=cpath, fix="re-run tracking")
    C = w2c.shape[0]
    camera_ids = [str(c) for c in cams["camera_ids"]] if "camera_ids" in cams else [str(i) for i in range(C)]
    if len(camera_ids) != C:
        raise VhapError(f"cameras.npz: {len(camera_ids)} camera ids for {C} cameras", path=cpath, fix="re-run")
    if "image_size" in cams:
        size = np.asarray(cams["image_size"]).reshape(-1)
    elif "image_size" in params:
        size = np.asarray(params["image_size"]).reshape(-1)
    else:
        raise VhapError("cameras.npz lacks 'image_size'", path=cpath, fix="re-run `vhap track`")
    image_size = (int(size[0]), int(size[1]))
    calibrated = bool(cams["calibrated"]) if "calibrated" in cams else "focal_length" not in params

    if "timestep_id" in params:
        timestep_ids = [str(t) for t in np.asarray(params["timestep_id"]).reshape(-1)]
        if len(timestep_ids) != T:
            raise VhapError(f"{len(timestep_ids)} timestep ids for {T} tracked frames", path=ppath, fix="re-run")
    else:
        timestep_ids = [f"{t:06d}" for t in range(T)]

    if head_model is None and "head_model" in params:
        head_model = str(params["head_model"])
    if head_model is None:
        cfg_model = config.get("model", {}) if isinstance(config, dict) else {}
        head_model = str(cfg_model.get("head_model", "")) if isinstance(cfg_model, dict) else ""
    if not head_model:
        raise VhapError(
            "the run does not record its head model (no 'head_model' in the npz or config.yml)",
            path=ppath,
            fix="pass --head-model NAME to `vhap export`",
        )
    frames = _read_frames(run, camera_ids, timestep_ids)
    return TrackedRun(
        root=run,
        params_path=ppath,
        params=params,
        head_model=head_model,
        K=K,
        w2c=w2c,
        camera_ids=camera_ids,
        image_size=image_size,
        calibrated=calibrated,
        timestep_ids=timestep_ids,
        frames=frames,
        config=config if isinstance(config, dict) else {},
    )
