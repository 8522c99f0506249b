"""Score a tracking run against the ground truth of a synthetic sequence.

Reads ``<run>/tracked_flame_params.npz`` and ``<run>/cameras.npz`` (INTERFACES.md → vhap.track outputs),
rebuilds the tracked meshes with the same head model, and compares with ``<sequence>/ground_truth``:

* vertex error (mm; mean / median / p95 / max) on the ``face`` region and the whole head (teeth excluded).
  Calibrated rigs: no alignment — the ground truth is moved into the tracking world with the exact world
  change the cameras reveal (``inv(w2c_track) · w2c_file``, the data layer's axis alignment). Monocular: a
  similarity (Umeyama) per frame fitted on the face region (scale/depth/focal are ambiguous), plus one per
  sequence as a stricter secondary number.
* landmark NME (% of the outer inter-ocular distance) of the tracked 68 landmarks projected with the tracked
  cameras against the noise-free ground-truth projections;
* masked PSNR (dB) of the tracked render (base texture + residual, tracked SH) composited over the target,
  over the ground-truth matte; silhouette IoU of the tracked coverage against the ground-truth matte;
* ``breakdown`` (diagnostic, :func:`error_breakdown`): per-region errors, identity / expression / head-pose
  parts of the error, and the per-frame error distribution.

Scoring renders every (frame, view) at the tracking resolution: pass ``device="cuda"`` on a GPU machine
(the torch rasteriser on the CPU needs seconds per 802×550 view).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vhap.errors import VhapError
from vhap.model.mesh_ops import vertex_normals
from vhap.render import MeshRenderer
from vhap.synth.generate import load_ground_truth, render_images
from vhap.synth.metrics import landmark_nme, masked_psnr, silhouette_iou, summarize, umeyama, vertex_errors

_POSE_KEYS = ("rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise VhapError("tracking output missing", path=path, fix="run `vhap track` to completion first")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def build_head_model(spec: str, n_shape: int, n_expr: int, num_verts: int | None, device="cpu"):
    """HeadModel matching a params file (teeth on/off inferred from the offset's vertex count)."""
    from vhap.model import HeadModel, load_head_assets

    assets = load_head_assets(spec)
    model = HeadModel(assets, n_shape=n_shape, n_expr=n_expr, add_teeth=True)
    if num_verts is not None and model.num_verts != num_verts:
        model = HeadModel(assets, n_shape=n_shape, n_expr=n_expr, add_teeth=False)
    return model.to(device).eval()


@torch.no_grad()
def mesh_sequence(model, params: dict[str, np.ndarray], batch: int = 32, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Posed vertices (T,V,3) and landmarks (T,70,3) of a params dict in the tracker's key layout."""
    T = params["expr"].shape[0]
    verts, lmks = [], []
    shape = torch.as_tensor(params["shape"], dtype=torch.float32, device=device)
    static = params.get("static_offset")
    static_t = None if static is None else torch.as_tensor(static, dtype=torch.float32, device=device)
    dyn = params.get("dynamic_offset")
    for s in range(0, T, batch):
        sl = slice(s, min(T, s + batch))
        kw = {k: torch.as_tensor(params[k][sl], dtype=torch.float32, device=device) for k in (*_POSE_KEYS, "expr")}
        if dyn is not None:
            kw["dynamic_offset"] = torch.as_tensor(dyn[sl], dtype=torch.float32, device=device)
        out = model(shape=shape, static_offset=static_t, **kw)
        verts.append(out.verts.cpu().numpy())
        lmks.append(out.landmarks.cpu().numpy())
    return np.concatenate(verts).astype(np.float64), np.concatenate(lmks).astype(np.float64)


def _orthonormal(R: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(R)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1, 1, d]) @ vt


def track_from_file_world(w2c_track: np.ndarray, w2c_file: np.ndarray) -> np.ndarray:
    """(4,4) rigid map file world → tracking world averaged over cameras (exact when the tracker only moved
    the world, e.g. the axis alignment of the data layer)."""
    maps = np.linalg.inv(w2c_track) @ w2c_file  # (C,4,4), identical for a pure world change
    out = np.eye(4)
    out[:3, :3] = _orthonormal(maps[:, :3, :3].mean(0))
    out[:3, 3] = maps[:, :3, 3].mean(0)
    return out


def _project(K: np.ndarray, w2c: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(C,3,3), (C,4,4), (T,N,3) → (T,C,N,2)."""
    cam = np.einsum("cij,tnj->tcni", w2c[:, :3, :3], pts) + w2c[None, :, None, :3, 3]
    uvw = np.einsum("cij,tcnj->tcni", K, cam)
    return uvw[..., :2] / uvw[..., 2:3]


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    img = Image.open(path)
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def evaluate_synthetic_run(
    run_dir: str | Path,
    sequence_dir: str | Path,
    *,
    params_file: str = "tracked_flame_params.npz",
    head_model: str | None = None,
    device: str = "cpu",
    render: bool = True,
    render_batch: int = 8,
) -> dict:
    """All accuracy metrics of one run (see the module docstring). Returns a JSON-ready dict."""
    run_dir, sequence_dir = Path(run_dir), Path(sequence_dir)
    gt = load_ground_truth(sequence_dir)
    params = _load_npz(run_dir / params_file)
    cams = _load_npz(run_dir / "cameras.npz")
    spec = head_model or str(params.get("head_model", gt["meta"]["head_model"]))
    V = None if "static_offset" not in params else params["static_offset"].shape[-2]
    model = build_head_model(spec, params["shape"].shape[-1], params["expr"].shape[-1], V, device)

    # frames: match by timestep id
    gt_ts = [str(t) for t in gt["meshes"]["timestep_id"]]
    tr_ts = [str(t) for t in params.get("timestep_id", np.asarray(gt_ts[: params["expr"].shape[0]]))]
    missing = [t for t in tr_ts if t not in gt_ts]
    if missing:
        raise VhapError(f"tracked timesteps {missing[:5]} are not in the ground truth", path=run_dir)
    gidx = np.asarray([gt_ts.index(t) for t in tr_ts])

    pred_v, pred_l = mesh_sequence(model, params, device=device)
    gt_v = gt["meshes"]["verts"][gidx].astype(np.float64)
    if pred_v.shape != gt_v.shape:
        raise VhapError(
            f"tracked meshes {pred_v.shape} and ground truth {gt_v.shape} differ in topology",
            path=run_dir,
            fix="track with the head model (and teeth setting) the sequence was generated with",
        )
    calibrated = bool(np.asarray(cams.get("calibrated", gt["cameras"]["calibrated"])))
    cam_ids = [str(c) for c in cams.get("camera_ids", gt["cameras"]["camera_ids"])]
    gt_cam_ids = [str(c) for c in gt["cameras"]["camera_ids"]]
    cidx = np.asarray([gt_cam_ids.index(c) if c in gt_cam_ids else i for i, c in enumerate(cam_ids)])
    K_tr = cams["K"].astype(np.float64)
    w2c_tr = cams["w2c"].astype(np.float64)
    H, W = (int(x) for x in np.asarray(cams.get("image_size", gt["cameras"]["image_size"])).reshape(-1)[:2])
    Hg, Wg = (int(x) for x in gt["cameras"]["image_size"])

    face_ids = _vertex_ids(model, "face")
    n_head = model.num_head_verts
    regions = {"face": face_ids, "head": np.arange(n_head)}

    result: dict = {"num_frames": len(tr_ts), "num_cameras": len(cam_ids), "calibrated": calibrated}
    M = None
    if calibrated:
        M = track_from_file_world(w2c_tr, gt["cameras"]["w2c"][cidx].astype(np.float64))
        gt_v_track = gt_v @ M[:3, :3].T + M[:3, 3]
        result["vertex_error"] = vertex_errors(pred_v, gt_v_track, regions, align="none")
        result["vertex_error_similarity"] = vertex_errors(
            pred_v, gt_v_track, regions, align="similarity_frame", align_ids=face_ids
        )
    else:
        result["vertex_error"] = vertex_errors(pred_v, gt_v, regions, align="similarity_frame", align_ids=face_ids)
        result["vertex_error_sequence_similarity"] = vertex_errors(
            pred_v, gt_v, regions, align="similarity_sequence", align_ids=face_ids
        )
    result["breakdown"] = error_breakdown(
        model,
        params,
        {k: (v[gidx] if np.ndim(v) >= 2 and k in (*_POSE_KEYS, "expr") else v) for k, v in gt["params"].items()},
        pred_v,
        gt_v if M is None else gt_v_track,
        face_ids,
        calibrated,
        device=device,
    )
    if "focal_length" in params and "focal_length" in gt["params"]:
        result["focal_length"] = {
            "tracked": float(np.asarray(params["focal_length"]).reshape(-1)[0]),
            "ground_truth": float(gt["params"]["focal_length"].reshape(-1)[0]),
        }

    # landmarks: tracked projection vs noise-free ground truth (scaled to the tracking resolution)
    pred_px = _project(K_tr, w2c_tr, pred_l[:, :68])  # (T,C,68,2)
    gt_px = gt["landmarks_2d"]["pixels"][gidx][:, cidx].astype(np.float64) * np.array([W / Wg, H / Hg])
    nme = landmark_nme(pred_px.reshape(-1, 68, 2), gt_px.reshape(-1, 68, 2))
    noisy = gt["landmarks_2d"]["noisy_pixels"][gidx][:, cidx].astype(np.float64) * np.array([W / Wg, H / Hg])
    result["landmark_nme"] = {k: v for k, v in nme.items() if k != "per_entry"}
    result["landmark_nme_input_noise"] = {
        k: v for k, v in landmark_nme(noisy.reshape(-1, 68, 2), gt_px.reshape(-1, 68, 2)).items() if k != "per_entry"
    }

    if render:
        result.update(
            _photometric(
                model, params, pred_v, K_tr, w2c_tr, (H, W), sequence_dir, tr_ts, cam_ids, gt, device, render_batch
            )
        )
    return result


#: regions whose vertex error the breakdown lists (those the head model has)
BREAKDOWN_REGIONS = ("face", "forehead", "nose", "eye_region", "eyelids", "lips", "ears", "neck", "scalp")


def _vertex_ids(model, name: str) -> np.ndarray:
    ids = model.regions.vertex_ids([name])
    return ids.cpu().numpy() if torch.is_tensor(ids) else np.asarray(ids)


def _rotation_angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


@torch.no_grad()
def error_breakdown(
    model,
    params: dict[str, np.ndarray],
    gt_params: dict[str, np.ndarray],
    pred_v: np.ndarray,
    gt_v: np.ndarray,
    face_ids: np.ndarray,
    calibrated: bool,
    device="cpu",
) -> dict:
    """Where the vertex error comes from (diagnostic; all errors in mm).

    * ``regions``: mean error per region, same alignment as the headline number (none when calibrated,
      per-frame similarity on the face otherwise).
    * ``identity``: neutral meshes (shape + static offset; zero expression and pose) tracked vs ground truth —
      no alignment when calibrated (both live in the model's canonical space), one similarity otherwise.
    * ``expression``: meshes with the *ground-truth* shape and zero head/neck pose, tracked vs ground-truth
      expression, jaw and eyes — no alignment: the expression error alone.
    * ``head_pose``: per-frame rigid fit (similarity when uncalibrated) of the tracked forehead + nose (they
      move rigidly with the skull) onto the ground truth: its rotation (deg), the centroid offset (mm; for
      uncalibrated rigs depth/scale ambiguity makes it large by design) and the error left after it.
    * ``face_normal_offset_mm``: the face's error along the true normals, signed (mean: > 0 = tracked surface
      outside the true one) and unsigned.
    * ``per_frame_face``: mean face error per frame (headline alignment) → spot frames that failed.

    pred_v, gt_v (T,V,3) metres in one world (the tracking world); params / gt_params in the tracker's npz
    key layout, the ground truth's rows already matched to the tracked frames.
    """
    n_head = model.num_head_verts
    regions = {name: _vertex_ids(model, name) for name in BREAKDOWN_REGIONS if name in model.regions.names}
    align = "none" if calibrated else "similarity_frame"
    full = vertex_errors(pred_v, gt_v, regions, align=align, align_ids=face_ids)
    out: dict = {"regions": {k: full[k]["mean"] for k in regions}, "per_frame_face": full["per_frame_mean"].get("face")}
    head = {"face": face_ids, "head": np.arange(n_head)}

    def t(x, rows=None):
        a = np.asarray(x, np.float32)
        return torch.as_tensor(a if rows is None else a[rows], device=device)

    def mesh(**kw) -> np.ndarray:
        return model(**{k: v for k, v in kw.items() if v is not None}).verts.cpu().numpy().astype(np.float64)

    T = pred_v.shape[0]
    static = params.get("static_offset")
    neutral_tr = mesh(shape=t(params["shape"]), static_offset=None if static is None else t(static))
    neutral_gt = mesh(shape=t(gt_params["shape"]))
    ident = vertex_errors(
        neutral_tr[:1], neutral_gt[:1], head, align="none" if calibrated else "similarity_sequence", align_ids=face_ids
    )
    out["identity"] = {k: ident[k]["mean"] for k in head} | {"align": ident["align"]}
    gt_shape = t(gt_params["shape"])
    expr_tr = mesh(
        shape=gt_shape, expr=t(params["expr"]), jaw_pose=t(params["jaw_pose"]), eyes_pose=t(params["eyes_pose"])
    )
    expr_gt = mesh(
        shape=gt_shape,
        expr=t(gt_params["expr"]),
        jaw_pose=t(gt_params["jaw_pose"]),
        eyes_pose=t(gt_params["eyes_pose"]),
    )
    ex = vertex_errors(expr_tr, expr_gt, head, align="none")
    out["expression"] = {k: ex[k]["mean"] for k in head} | {"per_frame_face": ex["per_frame_mean"]["face"]}
    # the skull part of the face moves rigidly with the head (the jaw and lips do not)
    skull = [regions[n] for n in ("forehead", "nose") if n in regions]
    skull_ids = np.unique(np.concatenate(skull)) if skull else face_ids
    rot, off, scale = [], [], []
    for f in range(T):
        sim = umeyama(pred_v[f, skull_ids], gt_v[f, skull_ids], with_scale=not calibrated)
        rot.append(_rotation_angle_deg(sim.rotation))
        off.append(float(np.linalg.norm(gt_v[f, skull_ids].mean(0) - pred_v[f, skull_ids].mean(0)) * 1000.0))
        scale.append(sim.scale)
    rigid = vertex_errors(
        pred_v, gt_v, head, align="rigid_frame" if calibrated else "similarity_frame", align_ids=skull_ids
    )
    # signed distance along the true surface normal: > 0 = the tracked face lies outside the true one (a
    # systematic inflation or shrinkage shows here; a random error averages out)
    gt_n = vertex_normals(torch.as_tensor(gt_v, dtype=torch.float64), model.faces.cpu().long()).numpy()
    normal_off = ((pred_v - gt_v) * gt_n).sum(-1)[:, face_ids] * 1000.0
    out["face_normal_offset_mm"] = {"mean": float(normal_off.mean()), "mean_abs": float(np.abs(normal_off).mean())}
    out["head_pose"] = {
        "rotation_deg": summarize(np.asarray(rot)),
        "skull_centroid_offset_mm": summarize(np.asarray(off)),
        "scale": summarize(np.asarray(scale)),
        "nonrigid_face_mean": rigid["face"]["mean"],
        "nonrigid_head_mean": rigid["head"]["mean"],
    }
    return out


def _albedo_of(model, params: dict[str, np.ndarray]) -> torch.Tensor:
    """(1,3,R,R) tracked albedo = base texture (resized to the residual's size) + residual, rows top → bottom."""
    base = model.base_texture.detach().float()[None]
    extra = params.get("tex_extra")
    if extra is None:
        return base.clamp(0, 1)
    extra_t = torch.as_tensor(extra, dtype=torch.float32, device=base.device)[None]
    if base.shape[-2:] != extra_t.shape[-2:]:
        base = F.interpolate(base, size=extra_t.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    return (base + extra_t).clamp(0, 1)


@torch.no_grad()
def _photometric(model, params, pred_v, K, w2c, size, sequence_dir, ts, cam_ids, gt, device, batch) -> dict:
    H, W = size
    mono = gt["meta"]["layout"] == "monocular"
    lights = params.get("lights")
    sh = torch.as_tensor(lights if lights is not None else np.eye(9, 3)[:, :1].repeat(3, 1) * np.sqrt(4 * np.pi))
    sh = sh.float()[None].to(device)
    albedo = _albedo_of(model, params).to(device)
    renderer = MeshRenderer(backend="auto")
    faces, uvs, uv_faces = model.faces.to(device), model.uvs.float().to(device), model.uv_faces.to(device)
    pairs = [(t, c) for t in range(len(ts)) for c in range(len(cam_ids))]
    psnr, iou = [], []
    sse, cnt = 0.0, 0
    for s in range(0, len(pairs), batch):
        chunk = pairs[s : s + batch]
        targets, alphas = [], []
        for t, c in chunk:
            name = ts[t] if mono else f"cam_{cam_ids[c]}_{ts[t]}"
            img_path = next((sequence_dir / gt["meta"].get("image_folder", "images")).glob(f"{name}.*"))
            targets.append(_read_image(img_path, size))
            alphas.append(_read_image(sequence_dir / "alpha_maps" / f"{name}.png", size))
        target = torch.from_numpy(np.stack(targets)).to(device)
        ti = torch.tensor([p[0] for p in chunk])
        ci = torch.tensor([p[1] for p in chunk])
        rgb, alpha = render_images(
            torch.from_numpy(pred_v[ti.numpy()]).float().to(device),
            faces,
            uvs,
            uv_faces,
            albedo,
            sh,
            torch.from_numpy(K[ci.numpy()]).float().to(device),
            torch.from_numpy(w2c[ci.numpy()]).float().to(device),
            (H, W),
            target,  # composited over the target itself (VHAP's background)
            supersample=1,
            renderer=renderer,
        )
        rgb, alpha = rgb.cpu().numpy(), alpha.cpu().numpy()
        for k in range(len(chunk)):
            m = alphas[k] > 0.5
            psnr.append(masked_psnr(rgb[k], targets[k], m))
            iou.append(silhouette_iou(alpha[k], alphas[k]))
            sse += float(((rgb[k] - targets[k]) ** 2)[m].sum())
            cnt += int(m.sum()) * 3
    total = float("nan") if cnt == 0 else float(10 * np.log10(cnt / max(sse, 1e-12)))
    return {
        "masked_psnr": summarize(np.asarray(psnr)) | {"pooled": total},
        "silhouette_iou": summarize(np.asarray(iou)),
    }


def write_oracle_run(sequence_dir: str | Path, run_dir: str | Path) -> Path:
    """Write a run folder holding the *ground truth* as if a tracker had produced it (FLAME world, exact
    cameras, albedo, lights). Scoring it must give zero vertex error, ~zero NME and IoU ≈ 1: the harness's
    end-to-end self-check, usable without a tracker."""
    from vhap.model import load_head_assets
    from vhap.utils.atomic import atomic_path

    sequence_dir, run_dir = Path(sequence_dir), Path(run_dir)
    gt = load_ground_truth(sequence_dir)
    p = dict(gt["params"])
    M = p.pop("world_from_flame").astype(np.float64)
    albedo = np.asarray(Image.open(sequence_dir / "ground_truth" / "albedo.png"), np.float32) / 255.0
    base = load_head_assets(str(p["head_model"])).base_texture
    base_t = torch.as_tensor(np.asarray(base, np.float32)).permute(2, 0, 1)[None]
    base_r = F.interpolate(base_t, size=albedo.shape[:2], mode="bilinear", align_corners=False, antialias=True)[0]
    p["tex_extra"] = (albedo.transpose(2, 0, 1) - base_r.numpy()).astype(np.float32)
    cams = gt["cameras"]
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / "tracked_flame_params.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **p)
    with atomic_path(run_dir / "cameras.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            K=cams["K"],
            w2c=(cams["w2c"].astype(np.float64) @ M).astype(np.float32),
            camera_ids=cams["camera_ids"],
            image_size=cams["image_size"],
            calibrated=cams["calibrated"],
        )
    return run_dir
