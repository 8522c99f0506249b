"""Identity (shape) and expression blendshapes of the open head.

Identity: 100 smooth deformation fields, orthogonalised and scaled so that a coefficient of 1 is one "standard
deviation" (largest vertex displacement 9 mm for the first basis, decaying to 1.2 mm): semantic fields first
(head width/length/height, jaw width, chin, nose, eyes, lips, ears, neck, ...), then low-order polynomial fields
(per degree: symmetric, then asymmetric). Eyeballs move rigidly with the field at their centre.

Expression: 40 named, localised fields in metres per unit coefficient (a coefficient of 1–3 is a clear expression,
as with FLAME): jaw/lips, smiles, pucker, funnel, press, brows, blinks, squints, cheeks, nose, ... Eyeballs never
move with expressions.
"""

from __future__ import annotations

import numpy as np

from tools.open_head import geometry as geo
from tools.open_head.geometry import HeadMesh

N_SHAPE = 100


def _gauss(p: np.ndarray, c, s) -> np.ndarray:
    d = (p - np.asarray(c, dtype=np.float64)) / np.asarray(s, dtype=np.float64)
    return np.exp(-0.5 * np.sum(d * d, axis=1))


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _rigid_eyes(m: HeadMesh, field: np.ndarray, fn) -> np.ndarray:
    """Replace the eyeball vertices' displacement by the field at the eyeball centre (keeps them spheres)."""
    for side in ("left", "right"):
        eb = m.eyeball_ids[side]
        field[eb] = fn(m.eye_centres[side][None])[0]
    return field


def shape_bases(m: HeadMesh) -> np.ndarray:
    """(V, 3, 100) identity bases."""
    v = m.verts
    mp = m.face_points
    fields = []

    def add(fn):
        fields.append(_rigid_eyes(m, fn(v), fn))

    x_, y_, z_ = (np.eye(3)[i] for i in range(3))
    # global proportions
    add(lambda p: p * x_)  # width
    add(lambda p: (p - [0, -0.15, 0]) * y_)  # height (neck cut fixed)
    add(lambda p: p * z_)  # depth
    add(lambda p: (p[:, 1:2] > -0.2) * _smoothstep(-0.02, 0.08, p[:, 1:2]) * (p * [1, 0.3, 1]))  # cranium size
    # jaw width / chin / face length
    jaw = lambda p: _smoothstep(-0.01, -0.07, p[:, 1:2]) * _smoothstep(-0.12, -0.085, p[:, 1:2])  # noqa: E731
    add(lambda p: jaw(p) * p * x_ * 4)
    add(lambda p: _gauss(p, mp[152], (0.02, 0.02, 0.03))[:, None] * [0, -0.5, 0.5])  # chin forward/down
    add(lambda p: _gauss(p, mp[152], (0.025, 0.02, 0.03))[:, None] * (p - mp[152]) * x_ * 20)  # chin width
    add(
        lambda p: (
            _smoothstep(0.02, -0.08, p[:, 1:2]) * _smoothstep(-0.13, -0.08, p[:, 1:2]) * (p[:, 2:3] > -0.02) * y_ * -0.3
        )
    )
    # nose: length, width, bridge height
    nose = lambda p, s=1.0: _gauss(p, mp[4], (0.012 * s, 0.018 * s, 0.02))  # noqa: E731
    add(lambda p: nose(p)[:, None] * z_ * 0.5)
    add(lambda p: nose(p)[:, None] * (p - mp[4]) * x_ * 15)
    add(lambda p: _gauss(p, mp[6], (0.01, 0.015, 0.02))[:, None] * z_ * 0.4)
    add(lambda p: nose(p, 0.8)[:, None] * y_ * -0.3)
    # eyes: spacing, height; brow ridge; cheekbones
    eyes = lambda p: (_gauss(p, mp[473], (0.018, 0.015, 0.03)) + _gauss(p, mp[468], (0.018, 0.015, 0.03)))[:, None]  # noqa: E731
    add(lambda p: eyes(p) * np.sign(p[:, :1]) * x_ * 0.3)
    add(lambda p: eyes(p) * y_ * 0.3)
    brow = lambda p: (_gauss(p, mp[105], (0.02, 0.01, 0.03)) + _gauss(p, mp[334], (0.02, 0.01, 0.03)))[:, None]  # noqa: E731
    add(lambda p: brow(p) * z_ * 0.4)
    cheek = lambda p: (_gauss(p, mp[123], (0.02, 0.02, 0.03)) + _gauss(p, mp[352], (0.02, 0.02, 0.03)))[:, None]  # noqa: E731
    add(lambda p: cheek(p) * (p * [1, 0, 0.5]) / 0.06 * 0.4)
    # lips: fullness, mouth width, mouth height
    lips = lambda p: _gauss(p, 0.5 * (mp[13] + mp[14]), (0.025, 0.012, 0.03))[:, None]  # noqa: E731
    add(lambda p: lips(p) * z_ * 0.4)
    add(lambda p: lips(p) * (p - mp[13]) * x_ * 10)
    add(lambda p: lips(p) * y_ * 0.3)
    # ears: protrusion and height; neck thickness; forehead slope
    ears = lambda p: m.radius_map.sample(m.radius_map.ear_height, *geo.to_angles(p)[:2])[:, None]  # noqa: E731
    add(lambda p: ears(p) * (p * [1, 0, 0]) / 0.08 * 20)
    add(lambda p: ears(p) * y_ * 20)
    add(lambda p: _smoothstep(-0.08, -0.13, p[:, 1:2]) * p * [1, 0, 1] * 3)
    add(lambda p: _smoothstep(0.04, 0.1, p[:, 1:2]) * (p[:, 2:3] > 0) * z_ * 0.2)
    # low-order polynomial fields on normalised coordinates (Legendre-like), symmetric then asymmetric
    pn = lambda p: (p - [0, -0.01, -0.005]) / np.array([0.09, 0.13, 0.1])  # noqa: E731
    # per degree: the mirror-symmetric fields, then the asymmetric ones
    for total in range(1, 5):
        sym_fields, asym_fields = [], []
        for a in range(total + 1):
            for b in range(total + 1 - a):
                c = total - a - b
                for d in range(3):
                    # mirror symmetry: x-component needs an odd power of x, y/z components an even one
                    sym = (a % 2 == 1) if d == 0 else (a % 2 == 0)

                    def fn(p, a=a, b=b, c=c, d=d):
                        q = pn(p)
                        return (q[:, 0] ** a * q[:, 1] ** b * q[:, 2] ** c)[:, None] * np.eye(3)[d] * 0.3

                    (sym_fields if sym else asym_fields).append(fn)
        for fn in sym_fields + asym_fields:
            add(fn)
    mat = np.stack([f.reshape(-1) for f in fields], 1)  # (3V, K)
    mat = mat[:, :N_SHAPE] if mat.shape[1] >= N_SHAPE else mat
    q, rr = np.linalg.qr(mat)
    q *= np.sign(np.diag(rr))[None]
    k = q.shape[1]
    # scale by the largest per-vertex displacement so that localised fields do not explode: 9 mm for the first
    # basis (about one standard deviation of adult head breadth/length/height, so that ±1 stays a plausible
    # head), decaying to 1.2 mm
    amp = np.maximum(0.009 * 0.95 ** np.arange(k), 0.0012)
    norms = np.linalg.norm(q.reshape(len(v), 3, k), axis=1)
    q = q / norms.max(axis=0)[None] * amp[None]
    out = q.reshape(len(v), 3, k)
    if k < N_SHAPE:
        raise AssertionError(f"only {k} shape fields")
    return out.astype(np.float32)


EXPRESSIONS = (
    "jaw_open", "lips_part", "smile_left", "smile_right", "pucker", "funnel", "lip_press", "upper_lip_raise",
    "lower_lip_depress", "brow_raise_left", "brow_raise_right", "brow_furrow", "blink_left", "blink_right",
    "squint_left", "squint_right", "eye_wide_left", "eye_wide_right", "cheek_puff", "nose_wrinkle",
    "mouth_left", "mouth_right", "chin_raise", "frown_left", "frown_right", "mouth_stretch_left",
    "mouth_stretch_right", "dimple_left", "dimple_right", "nostril_flare", "jaw_forward", "jaw_sideways",
    "cheek_suck", "lower_lip_roll", "upper_lip_roll", "brow_inner_raise", "brow_lower_left", "brow_lower_right",
    "lip_corner_in", "neck_tense",
)  # fmt: skip


def expression_bases(m: HeadMesh, lbs_weights: np.ndarray, regions: dict[str, np.ndarray]) -> np.ndarray:
    """(V, 3, 40) expression bases in the order of :data:`EXPRESSIONS`."""
    v = m.verts
    n = len(v)
    mp = m.face_points
    part = m.part
    ids, low = m.grid_id, m.grid_id_lower
    jaw_w = lbs_weights[:, 2]
    face = np.zeros(n)
    face[regions["face"]] = 1.0
    face[regions["neck"]] = 0.3
    mouth_c = 0.5 * (mp[13] + mp[14])
    corner = {"left": mp[308], "right": mp[78]}
    kk = np.arange(-48, 48)
    # which side of the mouth slit a vertex is on: +1 upper lip, -1 lower lip, 0 elsewhere
    lip_side = np.zeros(n)
    mc = np.nonzero(np.abs(kk) <= 8)[0]
    lip_side[ids[28 : geo.ROW_MOUTH + 1][:, mc].ravel()] = 1.0
    lip_side[low[geo.ROW_MOUTH, mc]] = -1.0
    lip_side[ids[geo.ROW_MOUTH + 1 : 48][:, mc].ravel()] = -1.0
    lip_side[m.cavity_rings[:, 1:16].ravel()] = 1.0
    lip_side[m.cavity_rings[:, 17:32].ravel()] = -1.0
    g = lambda c, s: _gauss(v, c, s)  # noqa: E731
    lips_w = g(mouth_c, (0.024, 0.011, 0.03))
    out = {}

    def rot_x_disp(pivot, angle, weight):
        p = v - pivot
        c, s = np.cos(angle), np.sin(angle)
        q = np.stack([p[:, 0], c * p[:, 1] - s * p[:, 2], s * p[:, 1] + c * p[:, 2]], 1)
        return (q - p) * weight[:, None]

    hinge = np.array([0.0, -0.012, -0.004])
    out["jaw_open"] = rot_x_disp(hinge, 0.09, jaw_w)
    out["lips_part"] = lips_w[:, None] * lip_side[:, None] * [0, 0.0025, 0.0005]
    for side, sx in (("left", 1.0), ("right", -1.0)):
        cw = g(corner[side], (0.014, 0.012, 0.03)) * face
        cheek = g(corner[side] + [sx * 0.012, 0.022, -0.01], (0.016, 0.014, 0.03)) * face
        out[f"smile_{side}"] = cw[:, None] * [sx * 0.004, 0.004, -0.003] + cheek[:, None] * [0, 0.002, 0.001]
        out[f"frown_{side}"] = cw[:, None] * [sx * 0.001, -0.004, -0.001]
        out[f"mouth_stretch_{side}"] = cw[:, None] * [sx * 0.005, -0.001, -0.002]
        out[f"dimple_{side}"] = cw[:, None] * [0, 0, -0.003]
        eye = m.eye_centres[side]
        brow = g(eye + [sx * 0.004, 0.022, 0.008], (0.022, 0.012, 0.03)) * face
        out[f"brow_raise_{side}"] = brow[:, None] * [0, 0.005, 0.0005]
        out[f"brow_lower_{side}"] = brow[:, None] * [0, -0.004, 0.0005]
        # blink: the upper lid moves down to the lower lid (coefficient 2 closes the eye)
        sign = 1 if side == "left" else -1
        cols = np.nonzero((sign * kk >= geo.EYE_COLS[0]) & (sign * kk <= geo.EYE_COLS[1]))[0]
        blink = np.zeros((n, 3))
        for col in cols:
            gap = v[low[geo.ROW_EYE, col]] - v[ids[geo.ROW_EYE, col]]
            for dr, wgt in ((0, 1.0), (1, 0.85), (2, 0.55), (3, 0.3), (4, 0.12)):
                blink[ids[geo.ROW_EYE - dr, col]] += 0.5 * wgt * gap
        tuck = m.eye_tuck[side]
        loop = m.eye_loops[side]
        half = len(loop) // 2
        blink[tuck[1:half]] = blink[loop[1:half]]
        out[f"blink_{side}"] = blink
        lower = np.zeros((n, 3))
        wide = np.zeros((n, 3))
        for col in cols:
            for dr, wgt in ((0, 1.0), (1, 0.7), (2, 0.4), (3, 0.15)):
                lower[low[geo.ROW_EYE, col] if dr == 0 else ids[geo.ROW_EYE + dr, col]] += wgt * np.array(
                    [0, 0.0022, 0.0005]
                )
                wide[ids[geo.ROW_EYE - dr, col]] += wgt * np.array([0, 0.0018, 0.0003])
        out[f"squint_{side}"] = lower + (g(eye + [0, -0.02, 0.01], (0.02, 0.012, 0.03)) * face)[:, None] * [
            0,
            0.002,
            0.001,
        ]
        out[f"eye_wide_{side}"] = wide
    pucker_w = lips_w * face
    out["pucker"] = pucker_w[:, None] * np.stack([-v[:, 0] * 0.2, np.zeros(n), np.full(n, 0.005)], 1)
    out["funnel"] = pucker_w[:, None] * np.stack([-v[:, 0] * 0.1, lip_side * 0.003, np.full(n, 0.003)], 1)
    out["lip_press"] = pucker_w[:, None] * np.stack([np.zeros(n), -lip_side * 0.0015, np.full(n, -0.002)], 1)
    up_w = g(mp[0], (0.02, 0.008, 0.03)) * (lip_side >= 0) * face
    lo_w = g(mp[17], (0.02, 0.009, 0.03)) * (lip_side <= 0) * face
    out["upper_lip_raise"] = up_w[:, None] * [0, 0.003, 0.001]
    out["lower_lip_depress"] = lo_w[:, None] * [0, -0.003, 0.001]
    out["upper_lip_roll"] = up_w[:, None] * [0, -0.001, -0.002]
    out["lower_lip_roll"] = lo_w[:, None] * [0, 0.001, -0.002]
    glab = g(mp[9], (0.014, 0.012, 0.03)) * face
    out["brow_furrow"] = glab[:, None] * np.stack(
        [-np.sign(v[:, 0]) * 0.002, np.full(n, -0.002), np.full(n, 0.0005)], 1
    )
    out["brow_inner_raise"] = glab[:, None] * [0, 0.004, 0]
    cheeks = (g(mp[205], (0.018, 0.018, 0.03)) + g(mp[425], (0.018, 0.018, 0.03))) * face
    normal_xz = v * [1, 0, 0.3]
    normal_xz /= np.maximum(np.linalg.norm(normal_xz, axis=1, keepdims=True), 1e-9)
    out["cheek_puff"] = cheeks[:, None] * normal_xz * 0.006
    out["cheek_suck"] = -cheeks[:, None] * normal_xz * 0.004
    nose_side = (g(mp[129], (0.008, 0.008, 0.02)) + g(mp[358], (0.008, 0.008, 0.02))) * face
    out["nose_wrinkle"] = nose_side[:, None] * [0, 0.003, 0.0005] + (g(mp[6], (0.008, 0.008, 0.02)) * face)[:, None] * [
        0,
        -0.0015,
        0,
    ]
    out["nostril_flare"] = nose_side[:, None] * np.stack([np.sign(v[:, 0]) * 0.0025, np.zeros(n), np.zeros(n)], 1)
    out["mouth_left"] = (lips_w * face)[:, None] * [0.005, 0, 0]
    out["mouth_right"] = (lips_w * face)[:, None] * [-0.005, 0, 0]
    chin = g(mp[152] + [0, 0.015, 0], (0.02, 0.015, 0.03)) * face
    out["chin_raise"] = chin[:, None] * [0, 0.003, 0.001]
    out["jaw_forward"] = jaw_w[:, None] * [0, 0, 0.004]
    out["jaw_sideways"] = jaw_w[:, None] * [0.004, 0, 0]
    corners_w = (g(corner["left"], (0.008, 0.008, 0.03)) + g(corner["right"], (0.008, 0.008, 0.03))) * face
    out["lip_corner_in"] = corners_w[:, None] * np.stack([-np.sign(v[:, 0]) * 0.003, np.zeros(n), np.zeros(n)], 1)
    neck = np.zeros(n)
    neck[regions["neck"]] = 1.0
    out["neck_tense"] = (neck * _smoothstep(-0.15, -0.09, v[:, 1]) * np.clip(v[:, 2] / 0.05, 0, 1))[:, None] * [
        0,
        0,
        0.003,
    ]
    bases = np.stack([out[name] for name in EXPRESSIONS], 2)
    bases[part >= 4] = 0.0  # eyeballs stay rigid
    bases[part == 1] = 0.0
    return bases.astype(np.float32)
