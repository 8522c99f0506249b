"""A small numpy triangle rasteriser (z-buffer) used to paint the texture atlas and to render previews."""

from __future__ import annotations

import numpy as np


def rasterize(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: tuple[int, int]):
    """Rasterise triangles given per-vertex pixel coordinates.

    ``xy`` (N, 2) continuous pixel coordinates (x right, y down; pixel (r, c) has its centre at (c+0.5, r+0.5)),
    ``depth`` (N,) smaller = closer, ``faces`` (F, 3). Returns ``face_id`` (H, W) i64 (−1 = empty) and
    ``bary`` (H, W, 3) barycentric weights of the face's corners.
    """
    h, w = size
    zbuf = np.full((h, w), np.inf)
    fid = np.full((h, w), -1, dtype=np.int64)
    bary = np.zeros((h, w, 3))
    tri = xy[faces]  # (F,3,2)
    tz = depth[faces]
    x0 = np.clip(np.floor(tri[..., 0].min(1) - 0.5).astype(int), 0, w - 1)
    x1 = np.clip(np.ceil(tri[..., 0].max(1) - 0.5).astype(int), 0, w - 1)
    y0 = np.clip(np.floor(tri[..., 1].min(1) - 0.5).astype(int), 0, h - 1)
    y1 = np.clip(np.ceil(tri[..., 1].max(1) - 0.5).astype(int), 0, h - 1)
    visible = (tri[..., 0].max(1) >= 0) & (tri[..., 0].min(1) <= w) & (tri[..., 1].max(1) >= 0)
    visible &= tri[..., 1].min(1) <= h
    for f in np.nonzero(visible)[0]:
        (ax, ay), (bx, by), (cx, cy) = tri[f]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-12:
            continue
        xs = np.arange(x0[f], x1[f] + 1) + 0.5
        ys = np.arange(y0[f], y1[f] + 1) + 0.5
        px, py = np.meshgrid(xs, ys)
        w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
        w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        if not inside.any():
            continue
        z = w0 * tz[f, 0] + w1 * tz[f, 1] + w2 * tz[f, 2]
        sub_z = zbuf[y0[f] : y1[f] + 1, x0[f] : x1[f] + 1]
        win = inside & (z < sub_z)
        if not win.any():
            continue
        sub_z[win] = z[win]
        fid[y0[f] : y1[f] + 1, x0[f] : x1[f] + 1][win] = f
        sub_b = bary[y0[f] : y1[f] + 1, x0[f] : x1[f] + 1]
        sub_b[win] = np.stack([w0[win], w1[win], w2[win]], -1)
    return fid, bary
