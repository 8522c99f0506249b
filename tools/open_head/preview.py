"""Shaded previews of a FLAME-structured head (numpy only): perspective camera, z-buffer, texture, Lambert.

``python -m tools.open_head.preview --out docs/open_head`` renders the committed views of the open head.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools.open_head.raster import rasterize


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for j in range(3):
        np.add.at(vn, faces[:, j], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def render(
    verts: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray | None = None,
    uv_faces: np.ndarray | None = None,
    texture: np.ndarray | None = None,
    yaw: float = 0.0,
    pitch: float = 0.0,
    size: int = 512,
    distance: float = 0.9,
    focal: float = 2.6,
    centre: tuple[float, float, float] = (0.0, -0.012, 0.0),
) -> np.ndarray:
    """(size, size, 3) float image of the mesh seen from the front rotated by yaw (deg, + = towards +x)."""
    rot = _rot_x(pitch) @ _rot_y(-yaw)
    p = (verts - np.asarray(centre)) @ rot.T
    z = distance - p[:, 2]  # camera on +z looking to -z
    f = focal * size
    xy = np.stack([f * p[:, 0] / z + size / 2, -f * p[:, 1] / z + size / 2], 1)
    # back-face culling: CCW seen from the camera (y down flips the sign)
    tri = xy[faces]
    cross = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (tri[:, 1, 1] - tri[:, 0, 1]) * (
        tri[:, 2, 0] - tri[:, 0, 0]
    )
    front = cross < 0
    fid, bary = rasterize(xy, z, faces[front], (size, size))
    fid = np.where(fid >= 0, np.nonzero(front)[0][np.maximum(fid, 0)], -1)
    normals = vertex_normals(verts, faces) @ rot.T
    img = np.ones((size, size, 3)) * np.array([0.93, 0.93, 0.95])
    hit = fid >= 0
    fh = fid[hit]
    b = bary[hit]
    n = np.einsum("kj,kjc->kc", b, normals[faces[fh]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    light = np.array([0.3, 0.4, 1.0])
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(n @ light, 0, 1)
    if texture is not None and uvs is not None:
        uv = np.einsum("kj,kjc->kc", b, uvs[uv_faces[fh]])
        th, tw = texture.shape[:2]
        col = np.clip((uv[:, 0] * tw).astype(int), 0, tw - 1)
        row = np.clip(((1.0 - uv[:, 1]) * th).astype(int), 0, th - 1)
        albedo = texture[row, col]
    else:
        albedo = np.full((len(fh), 3), 0.8)
    img[hit] = np.clip(albedo * shade[:, None], 0, 1)
    return img


def save_png(img: np.ndarray, path: str | Path) -> None:
    from PIL import Image

    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/open_head")
    parser.add_argument("--npz", default=None)
    args = parser.parse_args(argv)
    from tools.open_head.views import render_all

    render_all(Path(args.out), args.npz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
