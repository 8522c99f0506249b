"""Render benchmark: ms per forward + backward of the tracker's render (``render_head``: rasterise, UV
texture, SH shading, composite, antialias, then an L2 loss backward to the vertices) for
{1, 16, 64} views x {256, 512, 1024} px, per backend.

python bench/render.py --device cpu                      # torch backend; big configs skipped (recorded)
python bench/render.py --device cuda --backends torch nvdiffrast
Writes bench/results/render_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # started as `python bench/<name>.py`: make `bench` and `vhap` importable
    sys.path.insert(0, str(REPO))
from bench.render_scene import checker_texture, load_scene_mesh, ring_cameras  # noqa: E402
from vhap.render import MeshRenderer, initial_sh, render_head  # noqa: E402
from vhap.utils.atomic import atomic_path  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_config(backend: str, views: int, size: int, device: torch.device, mesh, repeats: int) -> dict:
    verts0, uvs, faces, uv_faces, _ = mesh
    renderer = MeshRenderer(backend)
    cams = ring_cameras(views, size).to(device)
    verts = verts0.to(device)[None].clone().requires_grad_(True)
    tex = checker_texture(512).to(device)
    sh = initial_sh(1, device)
    target = torch.full((views, size, size, 4), 0.5, device=device)

    def step():
        out = render_head(verts, faces, uvs, uv_faces, cams, tex, sh, 1.0, renderer=renderer)
        loss = (out.rgba - target).square().mean()
        loss.backward()
        verts.grad = None

    step()  # warm-up (JIT, caches, allocator)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "backend": backend,
        "views": views,
        "size": size,
        "ms_median": round(statistics.median(times), 3),
        "ms_min": round(min(times), 3),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backends", nargs="+", default=None)
    ap.add_argument("--views", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--max-megapixels", type=float, default=None, help="skip configs with more pixels (default: CPU 4.5, GPU none)"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--output", default=None)
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = args.backends or (["torch"] if device.type == "cpu" else ["nvdiffrast", "torch"])
    max_mp = args.max_megapixels if args.max_megapixels is not None else (4.5 if device.type == "cpu" else 1e9)
    mesh = load_scene_mesh()
    results, skipped = [], []
    for backend in backends:
        for size in args.sizes:
            for views in args.views:
                mp = views * size * size / 1e6
                if mp > max_mp:
                    skipped.append({"backend": backend, "views": views, "size": size, "why": f"{mp:.1f} MP > {max_mp}"})
                    continue
                try:
                    r = time_config(backend, views, size, device, mesh, args.repeats)
                except torch.OutOfMemoryError:
                    skipped.append({"backend": backend, "views": views, "size": size, "why": "out of memory"})
                    torch.cuda.empty_cache()
                    continue
                print(json.dumps(r), flush=True)
                results.append(r)
    info = {
        "what": "ms per render_head forward + L2 loss backward to vertices (textured, SH, antialiased)",
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mesh": {"name": mesh[4], "vertices": int(mesh[0].shape[0]), "faces": int(mesh[2].shape[0])},
        "results": results,
        "skipped": skipped,
    }
    out = Path(args.output or Path(__file__).resolve().parent / "results" / f"render_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
