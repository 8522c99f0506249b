"""Base texture of the open head, painted in UV space from per-texel 3D positions (numpy only).

Every texel of the atlas is mapped back to its 3D point on the template (rasterising the UV layout), then coloured
by smooth geometric rules: skin with warmer cheeks/nose, lips inside the MediaPipe outer lip contour, brows along
the MediaPipe brow lines, hair above a hairline, white sclera with a coloured iris and a pupil, a dark red mouth
cavity, off-white teeth in the teeth band at the top of the atlas. Empty texels take the nearest painted colour.
"""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path as MplPath
from scipy import ndimage

from tools.open_head import geometry as geo
from tools.open_head.geometry import HeadMesh
from tools.open_head.raster import rasterize

SKIN = np.array([0.80, 0.60, 0.50])
LIPS = np.array([0.70, 0.38, 0.38])
BROW = np.array([0.22, 0.15, 0.11])
HAIR = np.array([0.20, 0.14, 0.10])
SCLERA = np.array([0.93, 0.91, 0.88])
IRIS = np.array([0.30, 0.36, 0.42])
PUPIL = np.array([0.04, 0.03, 0.03])
CAVITY = np.array([0.38, 0.14, 0.14])
TUCK = np.array([0.78, 0.48, 0.45])
TEETH = np.array([0.90, 0.88, 0.80])
BROW_UPPER = {"right": (70, 63, 105, 66, 107), "left": (300, 293, 334, 296, 336)}
BROW_LOWER = {"right": (46, 53, 52, 65, 55), "left": (276, 283, 282, 295, 285)}


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _dist_to_polyline(p: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points (N,3) to a polyline (M,3) and the arc-length parameter (0..1) of the closest point."""
    best = np.full(len(p), np.inf)
    best_t = np.zeros(len(p))
    seg_len = np.linalg.norm(np.diff(line, axis=0), axis=1)
    cum = np.r_[0.0, np.cumsum(seg_len)] / seg_len.sum()
    for i in range(len(line) - 1):
        a, b = line[i], line[i + 1]
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
        d = np.linalg.norm(p - (a + t[:, None] * ab), axis=1)
        better = d < best
        best[better] = d[better]
        best_t[better] = (cum[i] + t * (cum[i + 1] - cum[i]))[better]
    return best, best_t


def paint_texture(m: HeadMesh, size: int = 1024) -> np.ndarray:
    """(size, size, 3) float texture, row 0 = v = 1."""
    xy = np.stack([m.uvs[:, 0] * size, (1.0 - m.uvs[:, 1]) * size], 1).astype(np.float64)
    fid, bary = rasterize(xy, np.zeros(len(xy)), m.uv_faces, (size, size))
    hit = fid >= 0
    fh = fid[hit]
    b = bary[hit]
    pos = np.einsum("kj,kjc->kc", b, m.verts[m.faces[fh]])
    part = m.part[m.faces[fh]].max(1)
    colour = np.tile(SKIN, (len(fh), 1))
    mp = m.face_points
    th, ph, _ = geo.to_angles(pos)
    skin = part <= 1
    # warm cheeks and nose tip
    for c, s, amt in ((mp[205], 0.02, 0.10), (mp[425], 0.02, 0.10), (mp[1], 0.012, 0.06)):
        w = np.exp(-0.5 * np.sum(((pos - c) / s) ** 2, 1)) * amt
        colour += w[:, None] * (np.array([0.85, 0.45, 0.42]) - SKIN)
    # hair above a hairline that drops behind the ears to the nape
    hair_y = np.interp(
        np.abs(th), [0, 0.5, 1.0, 1.35, 1.6, 2.25, 2.6, np.pi], [0.086, 0.08, 0.062, 0.05, 0.045, 0.0, -0.05, -0.06]
    )
    ear_h = m.radius_map.sample(m.radius_map.ear_height, th, ph)
    hair = _smoothstep(hair_y - 0.004, hair_y + 0.006, pos[:, 1]) * skin * _smoothstep(0.002, 0.0, ear_h)
    colour = colour * (1 - hair[:, None]) + HAIR * hair[:, None]
    # brows: between the upper and lower MediaPipe brow lines, thicker at the inner end
    for side in ("left", "right"):
        line = 0.5 * (mp[list(BROW_UPPER[side])] + mp[list(BROW_LOWER[side])])
        half = 0.5 * np.linalg.norm(mp[list(BROW_UPPER[side])] - mp[list(BROW_LOWER[side])], axis=1).mean()
        d, t = _dist_to_polyline(pos, line)
        width = half * (0.75 + 0.35 * (t if side == "right" else 1 - t))
        w = _smoothstep(width + 0.0015, width - 0.001, d) * skin * 0.85
        colour = colour * (1 - w[:, None]) + BROW * w[:, None]
    # lips: inside the outer lip contour with a soft 1 mm edge; the mouth cavity is dark
    outer = list(geo.MP_UPPER_OUTER_LIP) + list(geo.MP_LOWER_OUTER_LIP[::-1][1:-1])
    ot, op, _ = geo.to_angles(mp[outer])
    inside = MplPath(np.stack([ot, op], 1)).contains_points(np.stack([th, ph], 1)) & skin
    lip_img = np.zeros((size, size))
    lip_img[hit] = inside
    lip_img = ndimage.gaussian_filter(lip_img, size / 1024 * 1.2)
    lw = lip_img[hit][:, None]
    colour = colour * (1 - lw) + LIPS * lw
    colour[part == 2] = CAVITY
    colour[part == 3] = TUCK
    # eyeballs: sclera, iris with a darker limbus, pupil
    for side in ("left", "right"):
        sel = part == (4 if side == "left" else 5)
        d = pos[sel] - m.eye_centres[side]
        ang = np.degrees(np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1)))
        c = np.tile(SCLERA, (len(d), 1))
        iris = _smoothstep(31, 29, ang)[:, None]
        limbus = np.exp(-0.5 * ((ang - 28) / 1.5) ** 2)[:, None] * 0.5
        c = c * (1 - iris) + (IRIS * (1 - limbus)) * iris
        pupil = _smoothstep(12.5, 11, ang)[:, None]
        colour[sel] = c * (1 - pupil) + PUPIL * pupil
    tex = np.zeros((size, size, 3))
    tex[hit] = np.clip(colour, 0, 1)
    # fill empty texels with the nearest painted colour (no dark seams under bilinear sampling)
    _, (ri, ci) = ndimage.distance_transform_edt(~hit, return_indices=True)
    tex = tex[ri, ci]
    # teeth band (VHAP's teeth UVs: u 0.38..0.62, v 0.9575..0.9917)
    r0, r1 = 0, int((1 - 0.952) * size)
    c0, c1 = int(0.36 * size), int(np.ceil(0.64 * size))
    tex[r0:r1, c0:c1] = TEETH
    return tex.astype(np.float32)
