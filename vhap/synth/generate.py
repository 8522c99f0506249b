"""Write one synthetic ground-truth sequence (frames, mattes, landmarks, calibration, ground truth).

Layouts (read by :mod:`vhap.data`):

monocular  ``<output>/<sequence>/images/<ts>.jpg``, ``alpha_maps/<ts>.png``, ``landmark2d/<name>.npz``
multiview  ``<output>/<subject>/calibration/camera_params.json`` (NeRSemble v2),
           ``<output>/<subject>/sequences/<sequence>/images/cam_<serial>_<ts>.jpg``, ``alpha_maps/…png``,
           ``landmark2d/<name>/<serial>.npz``, ``<output>/<subject>/sequences/BACKGROUND/image_<serial>.jpg``

Ground truth (both) in ``<sequence folder>/ground_truth/``: ``flame_params.npz`` (tracker key layout,
VHAP_SPEC §6.2, FLAME world, plus ``world_from_flame``), ``meshes.npz`` (``verts`` (T,V,3) in the file
world, ``faces``, ``landmarks_3d``), ``landmarks_2d.npz`` (noise-free pixels (T,C,68,2)), ``cameras.npz``,
``albedo.png``, ``synth_config.yml`` and ``meta.json`` (what :mod:`bench.run` needs to track it).

Images are rendered at ``supersample``× the output size and box-filtered, so edges and mattes are
antialiased independently of the tracker's renderer. Everything is deterministic per ``seed``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vhap.config import AT_LEAST_ONE, POSITIVE, Range, config_to_dict, save_config
from vhap.errors import VhapError
from vhap.render import MeshRenderer, shade_sh
from vhap.synth.appearance import background_image, random_sh_lights, synthetic_albedo
from vhap.synth.motion import MotionConfig, random_parameters
from vhap.synth.rigs import Rig, arc_rig, monocular_rig, write_camera_params
from vhap.utils.atomic import atomic_path, write_text_atomic

Layout = Literal["monocular", "multiview"]


@dataclass
class SynthConfig:
    """Synthetic ground-truth sequence (``bench/synthetic.py``)."""

    output: Path = Path("data/synthetic")
    """dataset root the sequence is written under"""
    rig: Layout = "monocular"
    """``monocular`` (uncalibrated, one focal length) or ``multiview`` (NeRSemble-like calibrated arc)"""
    sequence: str = ""
    """sequence folder name (default ``synthetic_<rig>_s<seed>``)"""
    subject: str = "999"
    """subject id of the multi-view layout"""
    seed: int = 0
    num_frames: Annotated[int, AT_LEAST_ONE] = 8
    image_size: Annotated[tuple[int, int] | None, AT_LEAST_ONE] = None
    """(H, W) of the written frames; default 512×512 (monocular) / 802×550 (multiview, NeRSemble DS4)"""
    num_cameras: Annotated[int, AT_LEAST_ONE] = 16
    focal_length: Annotated[float | None, POSITIVE] = None
    """normalised focal f_px / max(H, W); default 2.0 (monocular: jittered ±10% per seed)"""
    head_model: str = "open"
    """``open`` or any name/folder :func:`vhap.model.load_head_assets` accepts (e.g. the FLAME-topology stand-in)"""
    n_shape: int = 300
    n_expr: int = 100
    add_teeth: bool = True
    motion: MotionConfig = field(default_factory=MotionConfig)
    supersample: Annotated[int, AT_LEAST_ONE] = 2
    background: Literal["textured", "uniform", "white", "black"] = "textured"
    albedo_resolution: Annotated[int, AT_LEAST_ONE] = 512
    light_strength: float = 1.0
    landmarks: Literal["projected", "detected"] = "projected"
    """``projected``: ground-truth landmarks plus pixel noise; ``detected``: run ``vhap landmarks`` on the frames"""
    landmark_noise_px: float = 1.0
    """std of the Gaussian noise (pixels of the written images) added to projected landmarks"""
    landmark_name: str = "synthetic"
    """file name of the landmark npz (``landmark2d/<name>.npz``); the tracker's ``data.landmark_detector``"""
    image_folder: str = ""
    """frame folder name; default ``images`` (monocular) / ``images_4`` (multiview: the written frames are the
    4× downsample of the calibration resolution, which is what ``--data.downsample 4`` reads)"""
    image_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: Annotated[int, Range(ge=1, le=100)] = 95
    batch_size: Annotated[int, AT_LEAST_ONE] = 8
    """images rendered per call"""
    device: str = "cpu"
    backend: str = "auto"
    """renderer backend (``auto`` | ``torch`` | ``nvdiffrast`` | ``cuda``)"""
    overwrite: bool = True

    def resolved(self) -> SynthConfig:
        """A copy with the rig-dependent defaults filled in."""
        cfg = dataclasses.replace(self)
        if cfg.image_size is None:
            cfg.image_size = (512, 512) if cfg.rig == "monocular" else (802, 550)
        if not cfg.image_folder:
            cfg.image_folder = "images" if cfg.rig == "monocular" else "images_4"
        if not cfg.sequence:
            cfg.sequence = f"synthetic_{'mono' if cfg.rig == 'monocular' else f'{cfg.num_cameras}view'}_s{cfg.seed}"
        if cfg.supersample < 1 or cfg.num_frames < 1:
            raise VhapError("supersample and num_frames must be ≥ 1", fix="pass positive values")
        return cfg


@dataclass
class SyntheticSequence:
    """Where a generated sequence lives and how to load / track it."""

    root: Path
    sequence: str
    subject: str | None
    layout: str
    sequence_dir: Path
    ground_truth_dir: Path
    landmark_detector: str
    timestep_ids: list[str]
    camera_ids: list[str]
    image_size: tuple[int, int]
    head_model: str
    image_folder: str = "images"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent, reproducible random stream ``stream`` of sequence ``seed``."""
    return np.random.default_rng([seed, stream])


def _build_model(cfg: SynthConfig, device: torch.device):
    from vhap.model import HeadModel, load_head_assets

    assets = load_head_assets(cfg.head_model)
    model = HeadModel(assets, n_shape=cfg.n_shape, n_expr=cfg.n_expr, add_teeth=cfg.add_teeth)
    return model.to(device).eval(), assets


def _make_rig(cfg: SynthConfig) -> Rig:
    if cfg.rig == "monocular":
        focal = cfg.focal_length
        if focal is None:
            focal = 2.0 * float(_rng(cfg.seed, 5).uniform(0.9, 1.1))
        return monocular_rig(cfg.image_size, focal)
    return arc_rig(cfg.image_size, num_cameras=cfg.num_cameras, focal_length=cfg.focal_length or 2.0)


def render_images(
    verts: torch.Tensor,
    faces: torch.Tensor,
    uvs: torch.Tensor,
    uv_faces: torch.Tensor,
    albedo: torch.Tensor,
    sh: torch.Tensor,
    K: torch.Tensor,
    w2c: torch.Tensor,
    image_size: tuple[int, int],
    background: torch.Tensor,
    *,
    supersample: int = 2,
    renderer=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render textured, SH-lit meshes over backgrounds, box-filtered from ``supersample``× resolution.

    verts (B,V,3) world; faces (F,3); uvs (VT,2); uv_faces (F,3); albedo (1,3,Ht,Wt); sh (B|1,9,3) (normals in
    the world the verts are in); K (B,3,3) at ``image_size``; w2c (B,4,4) OpenCV; background (B,H,W,3).
    Returns rgb (B,H,W,3) and alpha (B,H,W) in [0, 1].
    """
    from vhap.model.mesh_ops import vertex_normals
    from vhap.render import Cameras

    renderer = renderer or MeshRenderer(backend="auto")
    H, W = image_size
    s = supersample
    Ks = K.clone()
    Ks[:, :2] *= s  # continuous pixel coordinates scale exactly
    cams = Cameras(K=Ks, w2c=w2c, image_size=(H * s, W * s))
    clip = cams.to_clip(verts)
    frags = renderer.rasterize(clip, faces, (H * s, W * s))
    uv = renderer.interpolate(uvs, frags, uv_faces)
    # albedo rows run top (v = 1) to bottom like the model's base texture; the renderer wants row 0 = v 0
    colour = renderer.sample_texture(torch.flip(albedo, dims=[-2]), uv)
    normals = F.normalize(renderer.interpolate(vertex_normals(verts, faces), frags, faces), dim=-1)
    shading = shade_sh(normals, sh)
    alpha = (frags.tri_id >= 0).to(verts.dtype)[..., None]
    fg = (colour * shading).clamp(0.0, 1.0)
    bg = F.interpolate(background.permute(0, 3, 1, 2), size=(H * s, W * s), mode="nearest").permute(0, 2, 3, 1)
    rgb = fg * alpha + bg * (1 - alpha)
    if s > 1:
        rgb = F.avg_pool2d(rgb.permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)
        alpha = F.avg_pool2d(alpha.permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)
    return rgb, alpha[..., 0]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _write_image(path: Path, array: np.ndarray, quality: int) -> None:
    with atomic_path(path) as tmp:
        img = Image.fromarray(array)
        if path.suffix.lower() in (".jpg", ".jpeg"):
            img.save(tmp, quality=quality, subsampling=0)
        else:
            img.save(tmp)


def _landmark_npz(
    pixels: np.ndarray, image_size: tuple[int, int], timestep_ids: list[str], mp_pixels: np.ndarray | None, mp_ids
) -> dict[str, np.ndarray]:
    """Landmark npz arrays (INTERFACES.md keys) from (T,68,2) pixels and optional (T,K,2) MediaPipe points."""
    H, W = image_size
    T = len(pixels)
    lmk = np.ones((T, 68, 3), np.float32)
    lmk[..., 0] = pixels[..., 0] / W
    lmk[..., 1] = pixels[..., 1] / H
    lo = pixels.min(axis=1)
    hi = pixels.max(axis=1)
    bbox = np.concatenate([lo, hi, np.ones((T, 1))], axis=1).astype(np.float32)
    out = {
        "face_landmark_2d": lmk,
        "bounding_box": bbox,
        "timestep_id": np.asarray(timestep_ids),
        "valid": np.ones(T, bool),
    }
    if mp_pixels is not None:
        mp = np.full((T, 478, 3), -1.0, np.float32)
        mp[:, mp_ids, 0] = mp_pixels[..., 0] / W
        mp[:, mp_ids, 1] = mp_pixels[..., 1] / H
        mp[:, mp_ids, 2] = 1.0
        out["mediapipe_478"] = mp
    return out


def _save_npz(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def _project(K: np.ndarray, w2c: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(C,3,3), (C,4,4), (T,N,3) → (T,C,N,2) continuous OpenCV pixel coordinates."""
    cam = np.einsum("cij,tnj->tcni", w2c[:, :3, :3], pts) + w2c[None, :, None, :3, 3]
    uvw = np.einsum("cij,tcnj->tcni", K, cam)
    return uvw[..., :2] / uvw[..., 2:3]


def generate_sequence(cfg: SynthConfig, *, progress: bool = True) -> SyntheticSequence:
    """Generate and write one synthetic sequence (see the module docstring); returns where it is."""
    from tqdm import tqdm

    cfg = cfg.resolved()
    device = torch.device(cfg.device)
    model, assets = _build_model(cfg, device)
    rig = _make_rig(cfg)
    H, W = cfg.image_size
    T, C = cfg.num_frames, rig.num_cameras
    mono = cfg.rig == "monocular"

    if mono:
        seq_dir = cfg.output / cfg.sequence
        calib_path = None
    else:
        seq_dir = cfg.output / cfg.subject / "sequences" / cfg.sequence
        calib_path = cfg.output / cfg.subject / "calibration" / "camera_params.json"
    if seq_dir.exists() and not cfg.overwrite:
        raise VhapError("sequence folder exists", path=seq_dir, fix="pass --overwrite or choose another name")
    gt_dir = seq_dir / "ground_truth"
    timestep_ids = [f"{t:06d}" for t in range(T)]

    # --- ground-truth parameters, appearance, backgrounds (independent random streams) ---
    params = random_parameters(_rng(cfg.seed, 0), T, model.n_shape, model.n_expr, cfg.motion)
    base_tex = np.asarray(model.base_texture.detach().cpu().numpy(), np.float32)
    albedo = synthetic_albedo(base_tex, _rng(cfg.seed, 1), resolution=cfg.albedo_resolution)
    sh = random_sh_lights(_rng(cfg.seed, 2), cfg.light_strength)
    bg_rng = _rng(cfg.seed, 3)
    backgrounds = np.stack([background_image(bg_rng, (H, W), cfg.background) for _ in range(C)])
    noise_rng = _rng(cfg.seed, 4)

    # --- geometry ---
    with torch.no_grad():
        tp = {k: torch.from_numpy(v).to(device) for k, v in params.items()}
        out = model(
            shape=tp["shape"],
            expr=tp["expr"],
            rotation=tp["rotation"],
            neck_pose=tp["neck_pose"],
            jaw_pose=tp["jaw_pose"],
            eyes_pose=tp["eyes_pose"],
            translation=tp["translation"],
        )
    verts_flame = out.verts.detach().cpu().numpy().astype(np.float64)  # (T,V,3)
    lmk_flame = out.landmarks.detach().cpu().numpy().astype(np.float64)  # (T,70,3)
    mp_flame = None if out.landmarks_mp is None else out.landmarks_mp.detach().cpu().numpy().astype(np.float64)
    M = rig.world_from_flame
    verts_file = verts_flame @ M[:3, :3].T + M[:3, 3]
    lmk_file = lmk_flame @ M[:3, :3].T + M[:3, 3]

    lmk_px = _project(rig.K, rig.w2c, lmk_file[:, :68])  # (T,C,68,2)
    mp_px = None
    if mp_flame is not None:
        mp_px = _project(rig.K, rig.w2c, mp_flame @ M[:3, :3].T + M[:3, 3])

    # --- render ---
    faces = model.faces.to(device)
    uvs = model.uvs.to(device).float()
    uv_faces = model.uv_faces.to(device)
    albedo_t = torch.from_numpy(albedo)[None].to(device)
    sh_t = torch.from_numpy(sh)[None].to(device)
    K_t = torch.from_numpy(rig.K).float().to(device)
    w2c_flame = torch.from_numpy(rig.w2c_flame()).float().to(device)
    bg_t = torch.from_numpy(backgrounds).to(device)
    verts_t = torch.from_numpy(verts_flame).float().to(device)
    renderer = MeshRenderer(backend=cfg.backend)
    pairs = [(t, c) for t in range(T) for c in range(C)]
    ext = cfg.image_format
    coverage = []
    for start in tqdm(range(0, len(pairs), cfg.batch_size), desc="render", disable=not progress, unit="batch"):
        chunk = pairs[start : start + cfg.batch_size]
        ti = torch.tensor([p[0] for p in chunk], device=device)
        ci = torch.tensor([p[1] for p in chunk], device=device)
        with torch.no_grad():
            rgb, alpha = render_images(
                verts_t[ti],
                faces,
                uvs,
                uv_faces,
                albedo_t,
                sh_t,
                K_t[ci],
                w2c_flame[ci],
                (H, W),
                bg_t[ci],
                supersample=cfg.supersample,
                renderer=renderer,
            )
        rgb = rgb.cpu().numpy()
        alpha = alpha.cpu().numpy()
        for k, (t, c) in enumerate(chunk):
            name = timestep_ids[t] if mono else f"cam_{rig.camera_ids[c]}_{timestep_ids[t]}"
            _write_image(seq_dir / cfg.image_folder / f"{name}.{ext}", _to_uint8(rgb[k]), cfg.jpeg_quality)
            _write_image(seq_dir / "alpha_maps" / f"{name}.png", _to_uint8(alpha[k]), cfg.jpeg_quality)
            coverage.append(float((alpha[k] > 0.5).mean()))

    # --- landmarks ---
    noisy = lmk_px + noise_rng.normal(0.0, cfg.landmark_noise_px, size=lmk_px.shape)
    mp_ids = None if assets.landmarks_mediapipe is None else assets.landmarks_mediapipe.landmark_ids
    for c in range(C):
        arrays = _landmark_npz(noisy[:, c], (H, W), timestep_ids, None if mp_px is None else mp_px[:, c], mp_ids)
        path = (
            seq_dir
            / "landmark2d"
            / (f"{cfg.landmark_name}.npz" if mono else f"{cfg.landmark_name}/{rig.camera_ids[c]}.npz")
        )
        _save_npz(path, **arrays)
    detector = cfg.landmark_name
    if cfg.landmarks == "detected":
        detector = _detect_landmarks(cfg, seq_dir)

    # --- calibration and backgrounds of the multi-view layout ---
    if calib_path is not None:
        write_camera_params(rig, calib_path)
        for c, serial in enumerate(rig.camera_ids):
            _write_image(
                cfg.output / cfg.subject / "sequences" / "BACKGROUND" / f"image_{serial}.jpg",
                _to_uint8(backgrounds[c]),
                cfg.jpeg_quality,
            )

    # --- ground truth ---
    _save_npz(
        gt_dir / "flame_params.npz",
        **params,
        timestep_id=np.asarray(timestep_ids),
        n_processed_frames=np.asarray(0),
        image_size=np.asarray([H, W]),
        lights=sh,
        head_model=np.asarray(cfg.head_model),
        world_from_flame=M.astype(np.float32),
        **({"focal_length": np.asarray([rig.focal_length], np.float32)} if mono else {}),
    )
    _save_npz(
        gt_dir / "meshes.npz",
        verts=verts_file.astype(np.float32),
        faces=model.faces.cpu().numpy(),
        landmarks_3d=lmk_file.astype(np.float32),
        timestep_id=np.asarray(timestep_ids),
    )
    _save_npz(
        gt_dir / "landmarks_2d.npz",
        pixels=lmk_px.astype(np.float32),
        noisy_pixels=noisy.astype(np.float32),
        camera_ids=np.asarray(rig.camera_ids),
        timestep_id=np.asarray(timestep_ids),
    )
    _save_npz(
        gt_dir / "cameras.npz",
        K=rig.K.astype(np.float32),
        w2c=rig.w2c.astype(np.float32),
        camera_ids=np.asarray(rig.camera_ids),
        image_size=np.asarray([H, W]),
        calibrated=np.asarray(rig.calibrated),
        focal_length=np.asarray([rig.focal_length], np.float32),
        world_from_flame=M.astype(np.float32),
    )
    _write_image(gt_dir / "albedo.png", _to_uint8(albedo.transpose(1, 2, 0)), cfg.jpeg_quality)
    save_config(cfg, gt_dir / "synth_config.yml")
    seq = SyntheticSequence(
        root=cfg.output,
        sequence=cfg.sequence,
        subject=None if mono else cfg.subject,
        layout="monocular" if mono else "nersemble_v2",
        sequence_dir=seq_dir,
        ground_truth_dir=gt_dir,
        landmark_detector=detector,
        timestep_ids=timestep_ids,
        camera_ids=rig.camera_ids,
        image_size=(H, W),
        head_model=cfg.head_model,
        image_folder=cfg.image_folder,
    )
    meta = seq.to_json() | {
        "seed": cfg.seed,
        "coverage_mean": float(np.mean(coverage)),
        "config": config_to_dict(cfg),
    }
    write_text_atomic(gt_dir / "meta.json", json.dumps(meta, indent=2))
    if min(coverage) < 0.01:
        raise VhapError(
            f"the head covers only {min(coverage):.2%} of some image — the rig or the head model's scale is off",
            path=seq_dir,
            fix="check the head model units (metres) and the rig's focal length",
        )
    return seq


def _detect_landmarks(cfg: SynthConfig, seq_dir: Path) -> str:
    """Run the project's default landmark detector on the written frames; returns the detector name."""
    from vhap.preprocess.landmarks import LandmarkConfig, detect_landmarks

    m = re.fullmatch(r"images(?:_(\d+))?", cfg.image_folder)
    if m is None:
        raise VhapError(
            f"landmarks='detected' reads frames from images/ or images_<n>/, not {cfg.image_folder}/",
            fix="leave --image-folder at its default",
        )
    detect_landmarks(LandmarkConfig(folder=seq_dir, detector="mediapipe", downsample=int(m.group(1) or 1)))
    return "mediapipe"


def load_ground_truth(sequence_dir: str | Path) -> dict:
    """Read ``ground_truth/`` of a generated sequence: {'meta', 'params', 'meshes', 'landmarks_2d', 'cameras'}."""
    gt = Path(sequence_dir) / "ground_truth"
    if not (gt / "meta.json").is_file():
        raise VhapError(
            "not a synthetic sequence (ground_truth/meta.json missing)",
            path=gt,
            fix="generate it with bench/synthetic.py",
        )
    out = {"meta": json.loads((gt / "meta.json").read_text())}
    for name in ("flame_params", "meshes", "landmarks_2d", "cameras"):
        with np.load(gt / f"{name}.npz") as z:
            out[name if name != "flame_params" else "params"] = {k: z[k] for k in z.files}
    return out
