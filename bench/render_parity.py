"""GPU parity of the two render backends (nvdiffrast vs the pure-torch reference), both on CUDA.

Two realistic head scenes — the project's open head model ("open") and FLAME's template mesh
("flame_template", read at run time from ../shared/flame-topology or $VHAP_FLAME_TEMPLATE_OBJ; skipped and
recorded as such when absent; never committed) — each in several views, textured, SH-lit, over a grey
background, through both backends. Per scene it measures
  * triangle-id agreement over pixels covered by either backend        (>= 99.5 %)
  * mean |RGB| difference away from silhouettes (>= 2 px from any edge)  (<= 1/255)
  * cosine similarity of vertex gradients of a photometric loss          (>= 0.95)
  * recovery of a 5 mm + 5 deg rigid offset by the photometric loss alone, per backend
    (converged = translation error < 0.5 mm and rotation error < 0.5 deg)
and, as diagnostics, the gradient cosine restricted to the loss at pixels where the backends agree / disagree
on the triangle id, the vertices with the largest gradient difference, and the mesh's sliver statistics.
python bench/render_parity.py            # writes bench/results/render_parity.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as tnf

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # started as `python bench/<name>.py`: make `bench` and `vhap` importable
    sys.path.insert(0, str(REPO))
from bench.render_scene import SHARED_OBJ, checker_texture, load_scene_mesh, read_obj, ring_cameras  # noqa: E402
from vhap.render import MeshRenderer, initial_sh, render_head  # noqa: E402
from vhap.render.backends import torch_raster  # noqa: E402
from vhap.utils.atomic import atomic_path  # noqa: E402

THRESHOLDS = {"tri_id_agreement": 0.995, "rgb_mad_interior": 1 / 255, "grad_cosine": 0.95}
SCENES = ("open", "flame_template")


def flame_template_obj() -> Path:
    """FLAME's template OBJ: $VHAP_FLAME_TEMPLATE_OBJ, else ../shared/flame-topology/head_template_mesh.obj."""
    env = os.environ.get("VHAP_FLAME_TEMPLATE_OBJ")
    return Path(env) if env else SHARED_OBJ


def load_named_mesh(name: str):
    """(verts (V,3) centred, metres; uvs; faces; uv_faces) of scene ``name``, or None when its file is absent."""
    if name == "open":
        verts, uvs, faces, uv_faces, got = load_scene_mesh()
        return (verts, uvs, faces, uv_faces) if got == "open" else None
    if name == "flame_template":
        path = flame_template_obj()
        if not path.is_file():
            return None
        v, vt, f, ft = read_obj(path)
        v = v.astype("float32")
        v = v - (v.max(0) + v.min(0)) / 2
        return (
            torch.from_numpy(v),
            torch.from_numpy(vt.astype("float32")),
            torch.from_numpy(f.astype("int64")),
            torch.from_numpy(ft.astype("int64")),
        )
    raise ValueError(f"unknown parity scene {name!r} (known: {', '.join(SCENES)})")


def sliver_stats(verts: torch.Tensor, faces: torch.Tensor) -> dict:
    """Triangle area (m^2) and aspect ratio (longest edge / height onto it) of the mesh."""
    t = verts[faces].double()
    e = torch.stack([(t[:, 1] - t[:, 0]), (t[:, 2] - t[:, 1]), (t[:, 0] - t[:, 2])], 1).norm(dim=-1)
    area = 0.5 * torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]).norm(dim=-1)
    longest = e.max(-1).values
    aspect = longest * longest / (2 * area).clamp(min=1e-30)
    return {
        "area_min": area.min().item(),
        "area_median": area.median().item(),
        "aspect_median": aspect.median().item(),
        "aspect_max": aspect.max().item(),
        "faces_aspect_over_20": int((aspect > 20).sum().item()),
    }


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(3,) axis-angle -> (3,3) rotation, differentiable (also at zero)."""
    theta2 = (aa * aa).sum()
    theta = torch.sqrt(theta2 + 1e-12)
    k = aa / theta
    K = torch.zeros(3, 3, dtype=aa.dtype, device=aa.device)
    K[0, 1], K[0, 2], K[1, 0], K[1, 2], K[2, 0], K[2, 1] = -k[2], k[1], k[2], -k[0], -k[1], k[0]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + torch.sin(theta) * K + (1 - torch.cos(theta)) * (K @ K)


class Scene:
    def __init__(self, device: torch.device, views: int, size: int, name: str = "open"):
        mesh = load_named_mesh(name)
        if mesh is None:
            raise FileNotFoundError(f"parity scene {name!r} is not available here")
        verts, uvs, faces, uv_faces = mesh
        self.name = name
        self.verts = verts.to(device)
        self.uvs, self.faces, self.uv_faces = uvs.to(device), faces.to(device), uv_faces.to(device)
        self.cams = ring_cameras(views, size).to(device)
        self.tex = checker_texture(256).to(device)
        sh = initial_sh(1, device)
        sh[0, 1] = torch.tensor([0.6, 0.5, 0.4], device=device)  # light from +x so shading depends on normals
        sh[0, 2] = torch.tensor([0.3, 0.3, 0.3], device=device)
        self.sh = sh

    def posed(self, aa: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self.verts @ axis_angle_to_matrix(aa).T + t).unsqueeze(0)

    def render(self, renderer: MeshRenderer, verts: torch.Tensor):
        return render_head(
            verts, self.faces, self.uvs, self.uv_faces, self.cams, self.tex, self.sh, 0.3,
            renderer=renderer, filter_mode="linear",
        )  # fmt: skip


def near_silhouette(alpha_a: torch.Tensor, alpha_b: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """(B,H,W) bool: pixels within ``radius`` px of a coverage edge of either rendering."""
    out = torch.zeros_like(alpha_a[..., 0], dtype=torch.bool)
    for a in (alpha_a, alpha_b):
        a = a.permute(0, 3, 1, 2)
        k = 2 * radius + 1
        hi = tnf.max_pool2d(a, k, 1, radius)
        lo = -tnf.max_pool2d(-a, k, 1, radius)
        out |= (hi != lo)[:, 0]
    return out


def pose_recovery(scene: Scene, renderer: MeshRenderer, iters: int, lr: float) -> dict:
    device = scene.verts.device
    zero = torch.zeros(3, device=device)
    with torch.no_grad():
        target = scene.render(renderer, scene.posed(zero, zero)).rgba[..., :3]
    axis = torch.tensor([0.3, 1.0, 0.2], device=device)
    aa = (axis / axis.norm() * math.radians(5.0)).requires_grad_(True)
    t = torch.tensor([0.003, -0.003, 0.0028], device=device)  # |t| = 5 mm
    t = (t / t.norm() * 0.005).requires_grad_(True)
    opt = torch.optim.Adam([aa, t], lr=lr)
    losses = []
    t0 = time.perf_counter()
    for _ in range(iters):
        out = scene.render(renderer, scene.posed(aa, t))
        loss = (out.rgba[..., :3] - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        rot_err = math.degrees(aa.norm().item())
        trans_err_mm = t.norm().item() * 1000
    return {
        "initial": {"rotation_deg": 5.0, "translation_mm": 5.0},
        "final": {"rotation_deg": round(rot_err, 4), "translation_mm": round(trans_err_mm, 4)},
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "iters": iters,
        "seconds": round(time.perf_counter() - t0, 2),
        "converged": bool(rot_err < 0.5 and trans_err_mm < 0.5),
    }


def vertex_gradients(scene: Scene, renderer: MeshRenderer, target: torch.Tensor, pixel_weight=None) -> torch.Tensor:
    """(V,3) gradient of the mean squared RGB error to ``target`` (optionally weighted per pixel (B,H,W))."""
    v = scene.verts.clone().unsqueeze(0).requires_grad_(True)
    out = scene.render(renderer, v)
    err = (out.rgba[..., :3] - target) ** 2
    if pixel_weight is not None:
        err = err * pixel_weight.unsqueeze(-1)
    err.mean().backward()
    return v.grad[0]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return tnf.cosine_similarity(a.reshape(-1), b.reshape(-1), dim=0).item()


def run_scene(scene: Scene, nv: MeshRenderer, ref: MeshRenderer, iters: int, lr: float) -> dict:
    dev = scene.verts.device
    zero = torch.zeros(3, device=dev)
    with torch.no_grad():
        a = scene.render(nv, scene.posed(zero, zero))
        b = scene.render(ref, scene.posed(zero, zero))
    covered = (a.tri_id >= 0) | (b.tri_id >= 0)
    same_id = a.tri_id == b.tri_id
    agree = (same_id & covered).sum().item() / max(covered.sum().item(), 1)
    coverage_iou = ((a.tri_id >= 0) & (b.tri_id >= 0)).sum().item() / max(covered.sum().item(), 1)
    interior = ~near_silhouette(a.alpha, b.alpha)
    rgb_diff = (a.rgba[..., :3] - b.rgba[..., :3]).abs()
    rgb_mad = rgb_diff[interior].mean().item()
    rgb_mad_all = rgb_diff.mean().item()

    # Vertex gradients of a photometric loss toward a target at a slightly different pose.
    with torch.no_grad():
        aa_t = torch.tensor([0.0, math.radians(3.0), 0.0], device=dev)
        target = scene.render(nv, scene.posed(aa_t, torch.tensor([0.002, 0.0, 0.0], device=dev))).rgba[..., :3]
    g_nv = vertex_gradients(scene, nv, target)
    g_ref = vertex_gradients(scene, ref, target)
    grad_cos = cosine(g_nv, g_ref)
    norm_ratio = (g_ref.norm() / g_nv.norm()).item()

    # Diagnostics: the same loss restricted to pixels where the tri ids agree (incl. both empty) / disagree.
    breakdown = {}
    for part, weight in (("agreeing_pixels", same_id), ("disagreeing_pixels", ~same_id)):
        w = weight.float()
        gn, gr = vertex_gradients(scene, nv, target, w), vertex_gradients(scene, ref, target, w)
        breakdown[part] = {
            "pixels": int(weight.sum().item()),
            "grad_cosine": cosine(gn, gr) if bool(weight.any()) else None,
            "grad_norm_nvdiffrast": gn.norm().item(),
            "grad_norm_torch": gr.norm().item(),
        }
    diff = (g_ref - g_nv).norm(dim=-1)
    top = diff.topk(5)
    faces = scene.faces
    top_vertices = []
    for vid, d in zip(top.indices.tolist(), top.values.tolist(), strict=True):
        incident = (faces == vid).any(1)
        top_vertices.append(
            {
                "vertex": vid,
                "diff_norm": d,
                "grad_norm_nvdiffrast": g_nv[vid].norm().item(),
                "grad_norm_torch": g_ref[vid].norm().item(),
                "max_incident_aspect": sliver_stats(scene.verts, faces[incident])["aspect_max"],
            }
        )

    recovery = {r.backend: pose_recovery(scene, r, iters, lr) for r in (nv, ref)}
    result = {
        "mesh": {
            "name": scene.name,
            "vertices": int(scene.verts.shape[0]),
            "faces": int(scene.faces.shape[0]),
            "triangles": sliver_stats(scene.verts, scene.faces),
        },
        "tri_id_agreement": agree,
        "coverage_iou": coverage_iou,
        "rgb_mad_interior": rgb_mad,
        "rgb_mad_all_pixels": rgb_mad_all,
        "interior_pixel_fraction": interior.float().mean().item(),
        "grad_cosine": grad_cos,
        "grad_norm_ratio_torch_over_nvdiffrast": norm_ratio,
        "grad_breakdown": breakdown,
        "grad_top_diff_vertices": top_vertices,
        "pose_recovery": recovery,
    }
    result["pass"] = {
        "tri_id_agreement": agree >= THRESHOLDS["tri_id_agreement"],
        "rgb_mad_interior": rgb_mad <= THRESHOLDS["rgb_mad_interior"],
        "grad_cosine": grad_cos >= THRESHOLDS["grad_cosine"],
        **{f"pose_recovery_{name}": rec["converged"] for name, rec in recovery.items()},
    }
    result["all_pass"] = all(result["pass"].values())
    return result


def run_parity(
    device: str = "cuda",
    views: int = 4,
    size: int = 512,
    iters: int = 300,
    lr: float = 2e-3,
    scenes: tuple[str, ...] = SCENES,
    backends: tuple[str, str] = ("nvdiffrast", "torch"),
) -> dict:
    """Parity of two backends (``backends[0]`` is reported under the ``*_nvdiffrast`` keys, ``backends[1]`` under
    ``*_torch``) on each available scene; absent scenes are listed under ``skipped_scenes``."""
    dev = torch.device(device)
    nv, ref = MeshRenderer(backends[0]), MeshRenderer(backends[1])
    per_scene, skipped = {}, {}
    for name in scenes:
        try:
            scene = Scene(dev, views, size, name)
        except FileNotFoundError as err:
            skipped[name] = str(err)
            continue
        per_scene[name] = run_scene(scene, nv, ref, iters, lr)
    result = {
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "nvdiffrast": __import__("nvdiffrast").__version__,
        "backends": list(backends),
        "views": views,
        "size": size,
        "torch_tie_rule": torch_raster.TIE_RULE,
        "thresholds": THRESHOLDS,
        "scenes": per_scene,
        "skipped_scenes": skipped,
    }
    result["all_pass"] = bool(per_scene) and all(r["all_pass"] for r in per_scene.values())
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=SCENES)
    ap.add_argument("--backends", nargs=2, default=["nvdiffrast", "torch"], help="the pair to compare")
    ap.add_argument("--tie-rule", default=None, help="override the torch backend's TIE_RULE (diagnostics)")
    ap.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "render_parity.json"))
    args = ap.parse_args(argv)
    if args.tie_rule:
        torch_raster.TIE_RULE = args.tie_rule
    result = run_parity(
        "cuda", args.views, args.size, args.iters, scenes=tuple(args.scenes), backends=tuple(args.backends)
    )
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text + "\n")
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
