"""Scenes shared by bench/render.py, bench/render_parity.py and the GPU test: a realistic head mesh
(the project's open head model when ``vhap.model.load_head_assets("open")`` works, else FLAME's template
from ../shared, else a procedural closed head-like mesh of ~10k triangles) and cameras around it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vhap.render import Cameras, look_at_w2c

SHARED_OBJ = Path(__file__).resolve().parents[1].parent / "shared" / "flame-topology" / "head_template_mesh.obj"


def read_obj(path: Path):
    verts, uvs, faces, uv_faces = [], [], [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("vt "):
            uvs.append([float(x) for x in line.split()[1:3]])
        elif line.startswith("f "):
            corners = [c.split("/") for c in line.split()[1:4]]
            faces.append([int(c[0]) - 1 for c in corners])
            uv_faces.append([int(c[1]) - 1 if len(c) > 1 and c[1] else int(c[0]) - 1 for c in corners])
    return np.array(verts), np.array(uvs), np.array(faces), np.array(uv_faces)


def procedural_head(n_lat: int = 72, n_lon: int = 70):
    """A closed, bumpy ellipsoid (~10k triangles) with a nose so that it self-occludes; CCW outside."""
    lat = np.linspace(0, math.pi, n_lat)
    lon = np.linspace(0, 2 * math.pi, n_lon, endpoint=False)
    th, ph = np.meshgrid(lat, lon, indexing="ij")
    r = 1 + 0.05 * np.sin(5 * ph) * np.sin(3 * th)
    nose = 0.35 * np.exp(-(((th - math.pi / 2) / 0.15) ** 2 + ((ph - math.pi / 2) / 0.12) ** 2))
    r = r + nose
    x = 0.08 * r * np.sin(th) * np.cos(ph)
    z = 0.1 * r * np.sin(th) * np.sin(ph)
    y = 0.12 * r * np.cos(th)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [[a, c, b], [b, c, d]]
    faces = np.array(faces)
    # Fix the winding so faces are CCW seen from outside (normal along the radial direction).
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = (n * tri.mean(1)).sum(-1) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    uvs = np.stack([ph.reshape(-1) / (2 * math.pi), 1 - th.reshape(-1) / math.pi], -1)
    return verts, uvs, faces, faces.copy()


def load_scene_mesh(allow_flame_template: bool = False):
    """(verts (V,3) centred at the origin, metres; uvs (VT,2) OBJ v-up; faces (F,3); uv_faces (F,3); name).

    The project's open head model when it is generated, else (with ``allow_flame_template``) FLAME's template
    from ../shared (never travels to the GPU machine), else the procedural head — so that CPU and GPU numbers
    are measured on the same mesh by default."""
    try:
        from vhap.model import load_head_assets

        a = load_head_assets("open")
        verts, uvs, faces, uv_faces, name = a.v_template, a.uvs, a.faces, a.uv_faces, "open"
    except Exception:
        if allow_flame_template and SHARED_OBJ.is_file():
            verts, uvs, faces, uv_faces = read_obj(SHARED_OBJ)
            name = "flame_template"
        else:
            verts, uvs, faces, uv_faces = procedural_head()
            name = "procedural"
    verts = np.asarray(verts, dtype=np.float32)
    verts = verts - (verts.max(0) + verts.min(0)) / 2
    return (
        torch.from_numpy(verts),
        torch.from_numpy(np.asarray(uvs, dtype=np.float32)),
        torch.from_numpy(np.asarray(faces, dtype=np.int64)),
        torch.from_numpy(np.asarray(uv_faces, dtype=np.int64)),
        name,
    )


def ring_cameras(n_views: int, size: int, distance: float = 0.7, focal: float = 2.0) -> Cameras:
    """n_views cameras on an arc in front of the face (±60° yaw, ±15° pitch), looking at the origin."""
    yaw = torch.linspace(-math.pi / 3, math.pi / 3, n_views) if n_views > 1 else torch.zeros(1)
    pitch = 0.25 * torch.sin(torch.arange(n_views, dtype=torch.float32) * 1.3)
    eye = torch.stack(
        [
            distance * torch.sin(yaw) * torch.cos(pitch),
            distance * torch.sin(pitch),
            distance * torch.cos(yaw) * torch.cos(pitch),
        ],
        -1,
    )
    w2c = look_at_w2c(eye, torch.zeros(n_views, 3))
    f = focal * size
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]]).expand(n_views, 3, 3)
    return Cameras(K=K, w2c=w2c, image_size=(size, size))


def checker_texture(size: int = 256) -> torch.Tensor:
    """(3,size,size) smooth colourful texture (no aliasing-prone high frequencies)."""
    t = torch.linspace(0, 1, size)
    v, u = torch.meshgrid(t, t, indexing="ij")
    r = 0.5 + 0.4 * torch.sin(6 * math.pi * u)
    g = 0.5 + 0.4 * torch.cos(4 * math.pi * v)
    b = 0.5 + 0.3 * torch.sin(2 * math.pi * (u + v))
    return torch.stack([r, g, b])
