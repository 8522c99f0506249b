"""``vhap export``: a tracking run → a NeRF/3DGS dataset that GaussianAvatars loads (VHAP_SPEC §6.3–6.5).

Layout of the export folder::

    images/<ti:05d>_<ci:02d>.{png,jpg}     frames (composited over the background, cut below the neck)
    fg_masks/<ti:05d>_<ci:02d>.png         foreground mattes (when the run has them)
    flame_param/<ti:05d>.npz               FLAME parameters per timestep (relocated translation)
    canonical_flame_param.npz              neutral pose of the tracked identity (GA's detection key)
    transforms.json                        every frame
    transforms_{train,val,test}.json       the splits of :mod:`vhap.export.splits`
    export_config.yml                      the resolved ExportConfig
    meshes/<ti:05d>.obj, flame/exp/<ti:05d>.txt, canonical.obj   (flame_mode=mesh)

Conventions (differences from VHAP marked *):

- ``transform_matrix`` = OpenGL camera-to-world (x right, y up, z backward) in the relocated world: the
  tracking world shifted so that the mean head translation is the origin.
- ``cx, cy, fl_x, fl_y`` are OpenCV pixels with a top-left origin for every dataset (* VHAP wrote a
  bottom-origin ``cy`` for calibrated data); the top-level key ``camera_convention`` says so. GaussianAvatars
  reads only ``camera_angle_x`` (and assumes a centred principal point), so it is unaffected.
- Top-level ``cx, cy, fl_x, fl_y, w, h, camera_angle_*`` are those of camera 0 — for a monocular video the
  optimised focal length (* VHAP left a placeholder there).
- No ``transforms_backup*.json`` (* intermediate files of VHAP's multi-pass writer).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vhap.config import save_config
from vhap.errors import VhapError
from vhap.export import flame as flame_io
from vhap.export import images as imgio
from vhap.export.config import ExportConfig
from vhap.export.neck_mask import NECK_LINE_REGIONS, neck_line_keep_mask
from vhap.export.paths import check_target_apart
from vhap.export.run import FrameRecord, TrackedRun, load_tracked_run
from vhap.export.splits import split_frames
from vhap.utils.atomic import atomic_dir

CAMERA_CONVENTION = {
    "transform_matrix": "opengl_c2w",
    "intrinsics": "opencv_pixels_top_left_origin",
}
SPLITS = ("train", "val", "test")


@dataclass
class ExportSummary:
    """What :func:`export_nerf_dataset` wrote."""

    tgt: Path
    num_timesteps: int
    num_cameras: int
    num_frames: int
    images_linked: int
    masks_linked: int
    split_sizes: dict[str, int]


def image_name(ti: int, ci: int) -> str:
    return f"{ti:05d}_{ci:02d}"


def camera_intrinsics_entry(K: np.ndarray, image_size: tuple[int, int]) -> dict:
    """JSON intrinsics of one OpenCV K: ``cx, cy, fl_x, fl_y, h, w, camera_angle_x, camera_angle_y``."""
    H, W = image_size
    fx, fy = float(K[0, 0]), float(K[1, 1])
    return {
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "fl_x": fx,
        "fl_y": fy,
        "h": int(H),
        "w": int(W),
        "camera_angle_x": 2.0 * math.atan(W / (2.0 * fx)),
        "camera_angle_y": 2.0 * math.atan(H / (2.0 * fy)),
    }


def opengl_c2w(K: np.ndarray, w2c: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(C,4,4) OpenGL camera-to-world of OpenCV cameras (through :class:`vhap.render.Cameras`)."""
    import torch

    from vhap.render import Cameras

    cams = Cameras(K=torch.from_numpy(K).double(), w2c=torch.from_numpy(w2c).double(), image_size=image_size)
    return cams.c2w_opengl().numpy()


def neck_line_points(run: TrackedRun, per_ts: list[dict], K: np.ndarray, w2c_rel: np.ndarray, model) -> np.ndarray:
    """(T, C, 3, 2) pixel positions of the neck-line points (left, right, bottom) for every frame.

    The head is posed from the exported (relocated) parameters and projected with the exported cameras.
    """
    import torch

    from vhap.render import Cameras

    ids = []
    for name in NECK_LINE_REGIONS:
        vid = np.asarray(model.regions.vertex_ids(name)).reshape(-1)
        if vid.size != 1:
            raise VhapError(
                f"head model region '{name}' has {vid.size} vertices, expected exactly 1",
                fix="fix the head model's regions, or export with --no-mask-below-neck",
            )
        ids.append(int(vid[0]))
    cams = Cameras(K=torch.from_numpy(K).float(), w2c=torch.from_numpy(w2c_rel).float(), image_size=run.image_size)
    T, C = len(per_ts), len(K)
    out = np.zeros((T, C, 3, 2), dtype=np.float64)
    chunk = 32
    for start in range(0, T, chunk):
        items = per_ts[start : start + chunk]
        verts = flame_io.pose_head(model, flame_io.stack_params(items)).verts[:, ids]  # (b,3,3)
        b = verts.shape[0]
        # every camera sees every posed head of the chunk: (C*b) projections
        pts = verts.unsqueeze(0).expand(C, b, 3, 3).reshape(C * b, 3, 3)
        pix = cams.repeat_interleave(b).project(pts).reshape(C, b, 3, 2)
        out[start : start + b] = pix.permute(1, 0, 2, 3).double().numpy()
    return out


def _suffix_ok(path: Path, fmt: str) -> bool:
    return path.suffix.lower() in imgio.FORMAT_SUFFIXES[fmt]


def _export_frame(
    frame: FrameRecord,
    out_root: Path,
    cfg: ExportConfig,
    image_size: tuple[int, int],
    keep_mask: np.ndarray | None,
) -> tuple[bool, bool]:
    """Write (or link) one image and its foreground mask; returns (image linked, mask linked)."""
    name = image_name(frame.timestep_index, frame.camera_index)
    ext = "jpg" if cfg.image_format == "jpg" else "png"
    img_dst = out_root / "images" / f"{name}.{ext}"
    mask_dst = out_root / "fg_masks" / f"{name}.png"
    recomposite = cfg.background != "none" or keep_mask is not None
    same_size = imgio.image_size(frame.image_path) == tuple(image_size)

    img_linked = mask_linked = False
    alpha = None
    if not recomposite and cfg.link_frames and same_size and _suffix_ok(frame.image_path, cfg.image_format):
        img_linked = imgio.link_or_copy(frame.image_path, img_dst)
    else:
        rgb = imgio.read_rgb(frame.image_path, image_size)
        if cfg.background != "none":  # _check_request made sure mattes exist (the neck cut implies a colour)
            alpha = imgio.read_alpha(frame.alpha_path, image_size)
            rgb = imgio.composite(rgb, alpha if keep_mask is None else alpha * keep_mask, cfg.background)
        imgio.write_image(img_dst, rgb, cfg.image_format, cfg.jpeg_quality)

    if frame.alpha_path is not None:
        if keep_mask is None and cfg.link_frames and frame.alpha_path.suffix.lower() == ".png":
            if imgio.image_size(frame.alpha_path) == tuple(image_size):
                mask_linked = imgio.link_or_copy(frame.alpha_path, mask_dst)
                return img_linked, mask_linked
        if alpha is None:
            alpha = imgio.read_alpha(frame.alpha_path, image_size)
        imgio.write_mask(mask_dst, alpha if keep_mask is None else alpha * keep_mask)
    return img_linked, mask_linked


def _check_request(cfg: ExportConfig, run: TrackedRun) -> None:
    if cfg.background != "none" and not run.has_alpha:
        raise VhapError(
            f"background '{cfg.background}' needs alpha mattes but frames.json lists none",
            path=run.root / "frames.json",
            fix="run `vhap matting` and re-track, or export with --background none",
        )
    if cfg.mask_below_neck and cfg.background == "none":
        raise VhapError(
            "the neck cut (--mask-below-neck) fills the removed part with the background colour",
            fix="choose --background white|black, or pass --no-mask-below-neck",
        )
    if cfg.image_format == "jpg" and not 1 <= cfg.jpeg_quality <= 100:
        raise VhapError(f"jpeg_quality must be in 1..100, got {cfg.jpeg_quality}")
    missing = sorted({(f.timestep_index) for f in run.frames} ^ set(range(run.num_timesteps)))
    if missing:
        raise VhapError(
            f"frames.json has no frames for tracked timesteps {missing[:10]}",
            path=run.root / "frames.json",
            fix="the run folder is inconsistent; re-run `vhap track`",
        )


def _json_doc(frames: list[dict], top: dict) -> dict:
    doc = dict(top)
    doc["timestep_indices"] = sorted({f["timestep_index"] for f in frames})
    doc["camera_indices"] = sorted({f["camera_index"] for f in frames})
    doc["frames"] = frames
    return doc


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2))


def export_nerf_dataset(cfg: ExportConfig) -> ExportSummary:
    """Export the tracking run ``cfg.src`` into ``cfg.tgt`` (module docstring); atomic as a whole."""
    tgt = Path(cfg.tgt)
    if str(cfg.tgt) in ("", ".") or str(cfg.src) in ("", "."):
        raise VhapError("both --src (tracking run) and --tgt (export folder) are required")
    check_target_apart(tgt, [cfg.src], what="tracking run")
    if tgt.exists() and not cfg.overwrite:
        raise VhapError("the export folder already exists", path=tgt, fix="pass --overwrite or choose another --tgt")
    run = load_tracked_run(cfg.src, cfg.epoch, require_done=not cfg.allow_incomplete, head_model=cfg.head_model)
    check_target_apart(tgt, [run.root], what="tracking run")
    # the input frames and mattes too: a target holding one of them would delete it on --overwrite
    inputs = {p.parent for f in run.frames for p in (f.image_path, f.alpha_path) if p is not None}
    for folder in inputs:
        if folder.resolve().is_relative_to(tgt.resolve()):
            check_target_apart(tgt, [folder], what="folder of input frames")
    _check_request(cfg, run)
    H, W = run.image_size
    T, C = run.num_timesteps, run.num_cameras

    # world relocation: the mean head translation becomes the origin
    offset = flame_io.relocation_offset(run.params["translation"])
    w2c_rel = flame_io.relocate_w2c(run.w2c, offset)
    c2w_gl = opengl_c2w(run.K, w2c_rel, run.image_size)
    intrinsics = [camera_intrinsics_entry(run.K[c], run.image_size) for c in range(C)]
    per_ts = [flame_io.timestep_params(run.params, t, offset) for t in range(T)]

    # head model: needed for the neck cut and meshes; otherwise only its size is recorded (when loadable)
    so = run.params.get("static_offset")
    num_offset_verts = None if so is None else int(so.shape[1])
    default_teeth = bool(run.config_value("model.add_teeth", True))
    model = None
    model_name = None
    num_base_verts = None
    if cfg.mask_below_neck or cfg.flame_mode == "mesh":
        from vhap.model import load_head_assets

        assets = load_head_assets(run.head_model)
        num_base_verts = assets.num_verts
        teeth = flame_io.infer_teeth(num_offset_verts, num_base_verts, default_teeth)
        from vhap.model import HeadModel

        model = HeadModel(
            assets, n_shape=run.params["shape"].shape[-1], n_expr=run.params["expr"].shape[-1], add_teeth=teeth
        )
        num_verts = int(model.num_verts)
    else:
        try:
            from vhap.model import load_head_assets

            loaded = load_head_assets(run.head_model)
            num_base_verts, model_name = loaded.num_verts, loaded.name
        except (VhapError, ImportError):
            num_base_verts = None
        if num_base_verts is not None:
            teeth = flame_io.infer_teeth(num_offset_verts, num_base_verts, default_teeth)
            num_verts = num_base_verts + (flame_io.NUM_TEETH_VERTS if teeth else 0)
        else:
            teeth = default_teeth
            num_verts = num_offset_verts
    head_info = {"name": run.head_model, "teeth": teeth, "num_verts": num_verts}
    if model is not None:
        head_info["model_name"] = model.assets_name
    elif model_name is not None:
        head_info["model_name"] = model_name
    if num_base_verts is not None:
        head_info["num_verts_base"] = num_base_verts

    neck_pts = neck_line_points(run, per_ts, run.K, w2c_rel, model) if cfg.mask_below_neck else None

    ext = "jpg" if cfg.image_format == "jpg" else "png"
    frames_json: list[dict] = []
    for fr in run.frames:
        ti, ci = fr.timestep_index, fr.camera_index
        entry = {
            "timestep_index": ti,
            "timestep_index_original": ti,
            "timestep_id": fr.timestep_id,
            "camera_index": ci,
            "camera_id": fr.camera_id,
            **intrinsics[ci],
            "transform_matrix": c2w_gl[ci].tolist(),
            "file_path": f"images/{image_name(ti, ci)}.{ext}",
        }
        if fr.alpha_path is not None:
            entry["fg_mask_path"] = f"fg_masks/{image_name(ti, ci)}.png"
        entry["flame_param_path"] = f"flame_param/{ti:05d}.npz"
        if cfg.flame_mode == "mesh":
            entry["exp_path"] = f"flame/exp/{ti:05d}.txt"
            entry["mesh_path"] = f"meshes/{ti:05d}.obj"
        frames_json.append(entry)

    top = {
        "camera_convention": CAMERA_CONVENTION,
        **intrinsics[0],
        "head_model": head_info,
        "relocation_translation": offset.tolist(),
        "source_run": str(run.root.resolve()),
        "source_params": run.params_path.name,
    }
    splits = split_frames(frames_json, cfg.train_ratio, cfg.val_camera)

    with atomic_dir(tgt) as out:
        (out / "images").mkdir()
        if run.has_alpha:
            (out / "fg_masks").mkdir()
        (out / "flame_param").mkdir()

        def job(fr: FrameRecord) -> tuple[bool, bool]:
            keep = None
            if neck_pts is not None:
                p = neck_pts[fr.timestep_index, fr.camera_index]
                keep = neck_line_keep_mask(p[0], p[1], p[2], run.image_size)
            return _export_frame(fr, out, cfg, run.image_size, keep)

        n_img_linked = n_mask_linked = 0
        with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
            results = pool.map(job, run.frames)
            for img_l, mask_l in tqdm(results, total=len(run.frames), desc="export frames", unit="img"):
                n_img_linked += int(img_l)
                n_mask_linked += int(mask_l)

        for t in range(T):
            np.savez(out / "flame_param" / f"{t:05d}.npz", **per_ts[t])
        np.savez(out / "canonical_flame_param.npz", **flame_io.canonical_params(run.params))

        if cfg.flame_mode == "mesh":
            _write_meshes(out, model, per_ts, run.params)

        write_json(out / "transforms.json", _json_doc(frames_json, top))
        for split in SPLITS:
            write_json(out / f"transforms_{split}.json", _json_doc(splits[split], top))
        save_config(cfg, out / "export_config.yml")
    return ExportSummary(
        tgt=tgt,
        num_timesteps=T,
        num_cameras=C,
        num_frames=len(run.frames),
        images_linked=n_img_linked,
        masks_linked=n_mask_linked,
        split_sizes={k: len(v) for k, v in splits.items()},
    )


def _write_meshes(out: Path, model, per_ts: list[dict], params: dict) -> None:
    """``meshes/<t>.obj`` (posed, incl. teeth, no UVs), ``flame/exp/<t>.txt`` and ``canonical.obj``."""
    from vhap.model.mesh_io import write_obj

    (out / "meshes").mkdir()
    (out / "flame" / "exp").mkdir(parents=True)
    faces = np.asarray(model.faces)
    chunk = 32
    for start in range(0, len(per_ts), chunk):
        items = per_ts[start : start + chunk]
        verts = flame_io.pose_head(model, flame_io.stack_params(items)).verts.numpy()
        for i, v in enumerate(verts):
            t = start + i
            write_obj(out / "meshes" / f"{t:05d}.obj", v, faces)
            np.savetxt(out / "flame" / "exp" / f"{t:05d}.txt", per_ts[t]["expr"].reshape(-1), fmt="%.8f")
    canon = flame_io.canonical_params(params)
    verts = flame_io.pose_head(model, flame_io.stack_params([canon])).verts[0].numpy()
    write_obj(out / "canonical.obj", verts, faces)
