"""Regions, joints, skinning weights and landmark embeddings of the open head (all defined geometrically)."""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path as MplPath
from scipy.spatial import ConvexHull

from tools.open_head import geometry as geo
from tools.open_head.geometry import HeadMesh

_KK = np.arange(-48, 48)

#: iBUG-68 point -> MediaPipe-478 index (jaw contour 0..16 is resampled along the face oval instead)
IBUG_FROM_MP = {
    17: 70, 18: 63, 19: 105, 20: 66, 21: 107, 22: 336, 23: 296, 24: 334, 25: 293, 26: 300,
    27: 168, 28: 197, 29: 5, 30: 4, 31: 98, 32: 97, 33: 2, 34: 326, 35: 327,
    36: 33, 37: 160, 38: 158, 39: 133, 40: 153, 41: 144, 42: 362, 43: 385, 44: 387, 45: 263, 46: 373, 47: 380,
    48: 61, 49: 40, 50: 37, 51: 0, 52: 267, 53: 270, 54: 291, 55: 321, 56: 314, 57: 17, 58: 84, 59: 91,
    60: 78, 61: 81, 62: 13, 63: 311, 64: 308, 65: 402, 66: 14, 67: 178,
}  # fmt: skip
#: lower half of the MediaPipe face oval, from the subject's right (image left) to the left
MP_JAW_CONTOUR = (
    234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454,
)  # fmt: skip
MP_NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 64, 294, 48, 278, 115, 344, 122, 351, 193, 417)
MP_UPPER_LIP_POINTS = {191, 80, 81, 82, 13, 312, 311, 310, 415}
MP_LOWER_LIP_POINTS = {95, 88, 178, 87, 14, 317, 402, 318, 324}
MP_UPPER_LID_POINTS = {246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398}
MP_LOWER_LID_POINTS = {7, 163, 144, 145, 153, 154, 155, 249, 390, 373, 374, 380, 381, 382}


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _cols(lo: int, hi: int) -> np.ndarray:
    """Grid column indices for k in [lo, hi] (k = -48..47)."""
    return np.nonzero((_KK >= lo) & (_KK <= hi))[0]


def _in_polygon(theta, phi, poly_t, poly_p) -> np.ndarray:
    return MplPath(np.stack([poly_t, poly_p], 1)).contains_points(np.stack([theta, phi], 1))


def _neighbours(faces: np.ndarray, n: int) -> list[set[int]]:
    nb = [set() for _ in range(n)]
    for a, b, c in faces:
        nb[a] |= {b, c}
        nb[b] |= {a, c}
        nb[c] |= {a, b}
    return nb


def build_regions(m: HeadMesh) -> dict[str, np.ndarray]:
    v, part, ids, low = m.verts, m.part, m.grid_id, m.grid_id_lower
    n = len(v)
    th, ph, _ = geo.to_angles(v)
    face_pts = m.face_points
    ft, fp, _ = geo.to_angles(face_pts)
    skin = (part == 0) | (part == 1)
    oval = list(geo.MP_FACE_OVAL)
    face = skin & _in_polygon(th, ph, ft[oval], fp[oval])
    face |= (part == 2) | (part == 3)
    ear_h = m.radius_map.sample(m.radius_map.ear_height, th, ph)
    ears = skin & (ear_h > 0.0012) & ~face
    nb = _neighbours(m.faces, n)
    ears_d = ears.copy()
    for i in np.nonzero(ears)[0]:
        ears_d[list(nb[i])] = True
    ears = ears_d & skin & ~face
    neck = skin & ~face & ~ears & (v[:, 1] < -0.06 - 0.02 * np.cos(th))
    scalp = skin & ~face & ~neck & ~ears
    r: dict[str, np.ndarray] = {}
    mask = lambda b: np.nonzero(b)[0]  # noqa: E731
    r["face"] = mask(face)
    r["neck"] = mask(neck)
    r["scalp"] = mask(scalp)
    r["boundary"] = np.unique(np.r_[ids[-1], ids[-2]])
    r["bottomline"] = ids[-1].copy()
    r["left_eyeball"] = m.eyeball_ids["left"]
    r["right_eyeball"] = m.eyeball_ids["right"]
    r["left_ear"] = mask(ears & (v[:, 0] > 0))
    r["right_ear"] = mask(ears & (v[:, 0] < 0))
    r["forehead"] = mask(face & (v[:, 1] > 0.054))
    for side in ("left", "right"):
        c = m.eye_centres[side]
        d = v - c
        ell = (d[:, 0] / 0.03) ** 2 + (np.where(d[:, 1] > 0, d[:, 1] / 0.03, d[:, 1] / 0.018)) ** 2 < 1.0
        r[f"{side}_eye_region"] = mask((face & ell & (part != 2)) | np.isin(np.arange(n), m.eye_tuck[side]))
    r["eye_region"] = np.union1d(r["left_eye_region"], r["right_eye_region"])
    hull = ConvexHull(np.stack([ft[list(MP_NOSE)], fp[list(MP_NOSE)]], 1))
    hv = np.asarray(MP_NOSE)[hull.vertices]
    r["nose"] = mask(face & (part == 0) & _in_polygon(th, ph, ft[hv], fp[hv]))
    # lips: inside the outer lip contour (grown by ~3 mm), plus the mouth cavity
    outer = list(geo.MP_UPPER_OUTER_LIP) + list(geo.MP_LOWER_OUTER_LIP[::-1][1:-1])
    ctr = face_pts[outer].mean(0)
    grown = ctr + (face_pts[outer] - ctr) * 1.15
    gt, gp, _ = geo.to_angles(grown)
    lips = (skin & _in_polygon(th, ph, gt, gp)) | (part == 2)
    r["lips"] = mask(lips)

    # ---- custom regions (VHAP_SPEC §2.4)
    across = _cols(-7, 7)[::-1]  # +x (subject's left) .. -x
    r["lip_inside_ring_upper"] = ids[geo.ROW_MOUTH, across]
    r["lip_inside_ring_lower"] = low[geo.ROW_MOUTH, across]
    r["lip_outside_ring_upper"] = ids[geo.LIP_OUTER_ROWS[0], across]
    r["lip_outside_ring_lower"] = ids[geo.LIP_OUTER_ROWS[1], across]
    rings = m.cavity_rings  # (4, 32): [corner+, upper 15, corner-, lower 15]
    r["lip_inside_upper"] = np.sort(rings[:, 1:16].ravel())
    r["lip_inside_lower"] = np.sort(rings[:, 17:32].ravel())
    r["lip_inside"] = np.sort(np.r_[rings.ravel(), m.cavity_cap])
    tight = np.zeros(n, bool)
    mouth_cols = _cols(-geo.MOUTH_HALF, geo.MOUTH_HALF)
    tight[ids[geo.LIP_OUTER_ROWS[0] : geo.LIP_OUTER_ROWS[1] + 1][:, mouth_cols[1:-1]].ravel()] = True
    tight[low[geo.ROW_MOUTH, mouth_cols]] = True
    tight[ids[geo.ROW_MOUTH, mouth_cols]] = True
    tight[rings[0]] = True
    r["lips_tight"] = mask(tight)
    neck_top = [i for i in np.nonzero(neck)[0] if any(skin[j] and not neck[j] for j in nb[i])]
    r["neck_top"] = np.asarray(neck_top, dtype=np.int64)
    y_mid = np.median(v[neck, 1])
    r["neck_upper"] = mask(neck & (v[:, 1] >= y_mid))
    r["neck_lower"] = mask(neck & (v[:, 1] < y_mid))
    row_side = geo.ROW_CHIN + 7
    side_col = int(np.argmin(np.abs(np.abs(m.grid_theta[row_side]) - np.pi / 2) + (m.grid_theta[row_side] < 0)))
    r["neck_left_point"] = np.array([ids[row_side, side_col]])
    r["neck_right_point"] = np.array([m.mirror[ids[row_side, side_col]]])
    r["front_middle_bottom_point_boundary"] = np.array([ids[-1, 48]])
    r["back_middle_bottom_point_boundary"] = np.array([ids[-1, 0]])
    for side in ("left", "right"):
        eb = m.eyeball_ids[side]
        r[f"{side}_iris"] = eb[m.eyeball_angle[eb] < np.deg2rad(32)]
        sign = 1 if side == "left" else -1
        cols = (
            _cols(geo.EYE_COLS[0] - 1, geo.EYE_COLS[1] + 1)
            if sign > 0
            else _cols(-geo.EYE_COLS[1] - 1, -geo.EYE_COLS[0] + 1)
        )
        lid = ids[geo.ROW_EYE - 4 : geo.ROW_EYE + 4][:, cols].ravel()
        lid = np.r_[lid, low[geo.ROW_EYE, cols], m.eye_tuck[side]]
        r[f"{side}_eyelid"] = np.unique(lid)
    x = v[:, 0]
    r["left_half"] = mask(x >= -1e-6)
    r["right_half"] = mask(x <= 1e-6)
    return {k: np.asarray(val, dtype=np.int64) for k, val in r.items()}


# ------------------------------------------------------------------------------------------ rig
def joint_regressor(m: HeadMesh) -> np.ndarray:
    """(5, V) rows summing to 1; each joint is the weighted mean of a symmetric set of vertices."""
    v, n = m.verts, len(m.verts)
    jr = np.zeros((5, n))
    skin = np.nonzero(m.part == 0)[0]

    def nearest_pair(target):
        t = np.asarray(target, dtype=np.float64)
        i = skin[np.argmin(np.linalg.norm(v[skin] - t, axis=1))]
        return [i, m.mirror[i]]

    # root: the neck ring nearest y = -0.13 (the base of the neck, as FLAME's root); neck joint: mid-neck,
    # ~95 mm below the eye corners and under the ear canal (where a mean head's neck joint sits)
    row = int(np.argmin(np.abs(v[m.grid_id[geo.ROW_CHIN + 1 :, 24], 1] + 0.13))) + geo.ROW_CHIN + 1
    jr[0, m.grid_id[row]] = 1.0 / geo.N_COLS
    for j, target in ((1, (0.055, -0.065, -0.005)), (2, (0.068, -0.012, -0.004))):
        pair = nearest_pair(target)
        jr[j, pair] = 0.5
    lats = np.asarray(geo.EYEBALL_LATS_DEG)
    i78, i98 = int(np.nonzero(lats == 78)[0][0]), int(np.nonzero(lats == 98)[0][0])
    w78 = -np.cos(np.deg2rad(98)) / (np.cos(np.deg2rad(78)) - np.cos(np.deg2rad(98)))
    for j, side in ((3, "left"), (4, "right")):
        eb = m.eyeball_ids[side]
        for k, wk in ((i78, w78), (i98, 1 - w78)):
            jr[j, eb[1 + k * geo.EYEBALL_LONS : 1 + (k + 1) * geo.EYEBALL_LONS]] = wk / geo.EYEBALL_LONS
    return jr


def skinning_weights(m: HeadMesh, regions: dict[str, np.ndarray]) -> np.ndarray:
    """(V, 5): root at the neck base, neck joint (head) above, jaw below the mouth, eyeballs rigid."""
    v, n, part = m.verts, len(m.verts), m.part
    y, z = v[:, 1], v[:, 2]
    corner_y = v[m.mouth_loop[0], 1]
    jaw = _smoothstep(corner_y + 0.006, corner_y - 0.014, y)
    jaw *= _smoothstep(-0.02, 0.02, z + 0.35 * (y + 0.02))  # ramus: behind the hinge no jaw
    jaw *= _smoothstep(-0.118, -0.086, y)
    nb = _neighbours(m.faces[(part[m.faces] <= 1).all(1)], n)
    locked = np.zeros(n, bool)
    locked[regions["lips_tight"]] = True
    locked[part >= 2] = True
    # lips: exact split at the mouth slit
    ids, low = m.grid_id, m.grid_id_lower
    mouth_cols = _cols(-7, 7)
    for row in range(geo.LIP_OUTER_ROWS[0] - 1, geo.ROW_MOUTH + 1):
        jaw[ids[row, mouth_cols]] = 0.0
        locked[ids[row, mouth_cols]] = True
    jaw[low[geo.ROW_MOUTH, mouth_cols]] = 1.0
    for row in range(geo.ROW_MOUTH + 1, geo.LIP_OUTER_ROWS[1] + 2):
        jaw[ids[row, mouth_cols]] = 1.0
        locked[ids[row, mouth_cols]] = True
    corners = ids[geo.ROW_MOUTH, _cols(-8, -8)[0]], ids[geo.ROW_MOUTH, _cols(8, 8)[0]]
    jaw[list(corners)] = 0.5
    for _ in range(6):
        new = jaw.copy()
        for i in np.nonzero(~locked & (part <= 1))[0]:
            if nb[i]:
                new[i] = 0.5 * jaw[i] + 0.5 * np.mean(jaw[list(nb[i])])
        jaw = new
    rings = m.cavity_rings
    jaw[rings[:, 1:16].ravel()] = 0.0
    jaw[rings[:, 17:32].ravel()] = 1.0
    jaw[rings[:, [0, 16]].ravel()] = 0.5
    jaw[m.cavity_cap] = 0.5
    jaw[part == 3] = 0.0
    head = _smoothstep(-0.14, -0.07, y)
    w = np.zeros((n, 5))
    w[:, 2] = jaw
    w[:, 1] = (1 - jaw) * head
    w[:, 0] = (1 - jaw) * (1 - head)
    for j, side in ((3, "left"), (4, "right")):
        eb = m.eyeball_ids[side]
        w[eb] = 0.0
        w[eb, j] = 1.0
    return w / w.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------------ landmarks
def closest_points(points: np.ndarray, verts: np.ndarray, faces: np.ndarray, candidates: np.ndarray):
    """Closest point on the candidate faces for each point -> (face ids (K,), barycentric (K, 3))."""
    tri = verts[faces[candidates]]  # (C,3,3)
    out_f = np.zeros(len(points), np.int64)
    out_b = np.zeros((len(points), 3))
    for k, p in enumerate(points):
        a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
        ab, ac, ap = b - a, c - a, p - a
        # project onto the plane, clamp the barycentrics by solving the 2x2 system then clipping to the triangle
        d00 = np.einsum("ij,ij->i", ab, ab)
        d01 = np.einsum("ij,ij->i", ab, ac)
        d11 = np.einsum("ij,ij->i", ac, ac)
        d20 = np.einsum("ij,ij->i", ap, ab)
        d21 = np.einsum("ij,ij->i", ap, ac)
        den = np.maximum(d00 * d11 - d01 * d01, 1e-20)
        bv = (d11 * d20 - d01 * d21) / den
        bw = (d00 * d21 - d01 * d20) / den
        bary = np.stack([1 - bv - bw, bv, bw], 1)
        bary = np.clip(bary, 0, None)
        bary /= bary.sum(1, keepdims=True)
        q = np.einsum("ij,ijk->ik", bary, tri)
        best = int(np.argmin(np.linalg.norm(q - p, axis=1)))
        out_f[k] = candidates[best]
        out_b[k] = bary[best]
    return out_f, out_b


def _face_set(faces: np.ndarray, vertex_set: np.ndarray, n: int) -> np.ndarray:
    inside = np.zeros(n, bool)
    inside[vertex_set] = True
    return np.nonzero(inside[faces].all(1))[0]


def _jaw_contour_points(face_pts: np.ndarray) -> np.ndarray:
    pts = face_pts[list(MP_JAW_CONTOUR)]
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    t = np.linspace(0.0, s[-1], 17)
    return np.stack([np.interp(t, s, pts[:, d]) for d in range(3)], 1)


def landmark_embeddings(m: HeadMesh):
    """(iBUG 68+2 (face_idx, bary), MediaPipe 478 (face_idx, bary))."""
    v, f, n, part = m.verts, m.faces, len(m.verts), m.part
    ids, low = m.grid_id, m.grid_id_lower
    skin_faces = np.nonzero((part[f] <= 1).all(1))[0]
    mouth_cols = _cols(-8, 8)
    upper_lip = _face_set(f, ids[30 : geo.ROW_MOUTH + 1][:, mouth_cols].ravel(), n)
    lower_lip = _face_set(
        f, np.r_[low[geo.ROW_MOUTH, mouth_cols], ids[geo.ROW_MOUTH + 1 : 46][:, mouth_cols].ravel()], n
    )
    eye_cols = np.r_[_cols(-geo.EYE_COLS[1], -geo.EYE_COLS[0]), _cols(geo.EYE_COLS[0], geo.EYE_COLS[1])]
    upper_lid = _face_set(f, ids[10 : geo.ROW_EYE + 1][:, eye_cols].ravel(), n)
    lower_lid = _face_set(f, np.r_[low[geo.ROW_EYE, eye_cols], ids[geo.ROW_EYE + 1 : 23][:, eye_cols].ravel()], n)
    eyeball_faces = {s: _face_set(f, m.eyeball_ids[s], n) for s in ("left", "right")}
    fp = m.face_points

    def candidates_for_mp(i: int) -> np.ndarray:
        if i in MP_UPPER_LIP_POINTS:
            return upper_lip
        if i in MP_LOWER_LIP_POINTS:
            return lower_lip
        if i in MP_UPPER_LID_POINTS:
            return upper_lid
        if i in MP_LOWER_LID_POINTS:
            return lower_lid
        return skin_faces

    # MediaPipe: all 478 points; iris points go onto the eyeballs' front (pupil + iris rim)
    mp_f = np.zeros(478, np.int64)
    mp_b = np.zeros((478, 3))
    for i in range(468):
        mp_f[i], mp_b[i] = (a[0] for a in closest_points(fp[i : i + 1], v, f, candidates_for_mp(i)))
    for start in (468, 473):
        side = "left" if fp[start, 0] > 0 else "right"
        c = m.eye_centres[side]
        pts = fp[start : start + 5].copy()
        d = pts - pts[0]
        # iris centre straight ahead of the eyeball centre; rim points keep their direction, iris radius 5.8 mm
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9) * 0.0058
        front = c + np.array([0.0, 0.0, geo.EYE_RADIUS + 0.001])
        target = front + d
        ff, bb = closest_points(target, v, f, eyeball_faces[side])
        mp_f[start : start + 5], mp_b[start : start + 5] = ff, bb
    # iBUG 68 + 2 eye centres (68 = subject's right eye, 69 = left, like iBUG's right-to-left order)
    ib_f = np.zeros(70, np.int64)
    ib_b = np.zeros((70, 3))
    jf, jb = closest_points(_jaw_contour_points(fp), v, f, skin_faces)
    ib_f[:17], ib_b[:17] = jf, jb
    for k, mp_i in IBUG_FROM_MP.items():
        ib_f[k], ib_b[k] = mp_f[mp_i], mp_b[mp_i]
    for k, side in ((68, "right"), (69, "left")):
        c = m.eye_centres[side]
        ff, bb = closest_points((c + np.array([0, 0, 0.02]))[None], v, f, eyeball_faces[side])
        ib_f[k], ib_b[k] = ff[0], bb[0]
    return (ib_f, ib_b), (mp_f, mp_b)
