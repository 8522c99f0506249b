"""Geometry of the open head: a radial (star-shaped) head surface sampled on a latitude/longitude grid.

Recipe (all deterministic, numpy/scipy only):

1. **Radius map.** A base solid (smooth union of a cranium ellipsoid, a jaw block, a chin and a neck cylinder)
   is ray-cast from the head centre (the origin) on a dense (azimuth θ, elevation φ) raster. The face relief
   comes from the baked MediaPipe-478 layout (:mod:`face_layout_data`, lips closed by :func:`face_points`):
   inside the face oval the radius is the layout's radius (linear interpolation over its points in (θ, φ)); the
   difference to the base solid is extended outwards and faded over ~2 cm so the face merges into the head.
   Ears are added as radial reliefs (a rim, a bowl, a lobe) behind the face oval.
2. **Grid.** 96 columns (θ, denser on the face, columns ±8 exactly at the mouth corners and eye corners on
   columns ±7/±18) × 62 rows (φ; rows 16 = eyes, 38 = mouth, 49 = chin; the rows below are spread along each
   column's profile down to the neck cut at y = −0.15 m) plus a pole vertex on top.
3. **Slits.** The mouth (row 38, columns −7..7) and the eyes (row 16, columns 8..17 and −17..−8) are cut open
   by duplicating those vertices (upper / lower copy). A harmonic warp of φ over the grid graph moves the copies
   onto the lid margins and the inner lip lines of the layout, and rows 35/41 onto the outer lip contours.
4. **Inside parts.** The mouth opening is extruded into a closed cavity (4 rings + cap), each eye opening into
   a short tuck ring that hides the lid edge in the socket; eyeballs are separate UV spheres.
5. **UVs.** Grid vertices get u = column, v = row (face in the middle, seam at the back); cavity, tuck rings and
   eyeballs are islands at the bottom of the atlas. The band v > 0.952 is left empty for the teeth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse
from scipy.interpolate import LinearNDInterpolator, PchipInterpolator, RegularGridInterpolator
from scipy.sparse.linalg import spsolve

from tools.open_head import face_layout_data

# ------------------------------------------------------------------------------------------ constants
N_COLS = 96  # columns k = -48..47 (k = -48 is the back midline, θ = ±π)
N_ROWS = 65  # rows i = 0 (just below the pole) .. 64 (neck cut)
ROW_EYE = 16
ROW_MOUTH = 38
ROW_CHIN = 49
LIP_OUTER_ROWS = (35, 41)
MOUTH_HALF = 8  # mouth corners on columns ±8; 15 slit columns -7..7
EYE_COLS = (7, 18)  # inner / outer eye corner columns (mirrored for the right eye)
#: the neck cut (collar line) is slanted as a real collar: lowest at the front, highest at the back
NECK_CUT_Y = -0.15
NECK_CUT_TILT = 0.02
EYE_RADIUS = 0.012
#: the MediaPipe layout is moved so that the outer eye corners sit at y = 0.03 and the nose tip at z = 0.10
FACE_EYE_Y = 0.03
FACE_NOSE_Z = 0.10
RASTER_STEP = 0.006  # rad

#: MediaPipe FaceMesh face-oval silhouette, in order
MP_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
    150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# lid margins and lip lines of the subject's LEFT side features (+x); the right ones follow by mirroring
MP_LEFT_UPPER_LID = (362, 398, 384, 385, 386, 387, 388, 466, 263)
MP_LEFT_LOWER_LID = (362, 382, 381, 380, 374, 373, 390, 249, 263)
MP_UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
MP_LOWER_INNER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MP_UPPER_OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
MP_LOWER_OUTER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)


def face_points() -> np.ndarray:
    """(478, 3) MediaPipe layout in the head frame (metres), with the mouth closed (lips 1 mm apart).

    The layout was captured with the mouth slightly open; a smooth vertical field (limited to the mouth width,
    fading with the distance from the lip line) brings the inner lip lines together.
    """
    pts = np.asarray(face_layout_data.POINTS_10UM, dtype=np.float64).reshape(-1, 3) * 1e-5
    pts = pts + np.array([0.0, FACE_EYE_Y - pts[263, 1], FACE_NOSE_Z - pts[1, 2]])
    up, lo = pts[13].copy(), pts[14].copy()
    mid_y = 0.5 * (up[1] + lo[1])
    half_gap = 0.5 * (up[1] - lo[1]) - 0.0005
    half_w = abs(pts[308, 0]) + 0.006
    across = np.clip(1.0 - (pts[:, 0] / half_w) ** 2, 0.0, None)
    above = pts[:, 1] >= mid_y
    dist = np.where(above, np.maximum(pts[:, 1] - up[1], 0.0), np.maximum(lo[1] - pts[:, 1], 0.0))
    fade = np.exp(-((dist / 0.012) ** 2)) * (pts[:, 2] > 0.0)
    pts[:, 1] += np.where(above, -1.0, 1.0) * half_gap * across * fade
    return pts


def to_angles(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (..., 3) -> azimuth θ (0 = +z, +π/2 = +x), elevation φ, radius."""
    r = np.linalg.norm(p, axis=-1)
    theta = np.arctan2(p[..., 0], p[..., 2])
    phi = np.arcsin(np.clip(p[..., 1] / np.maximum(r, 1e-12), -1, 1))
    return theta, phi, r


def directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(phi) * np.sin(theta), np.sin(phi), np.cos(phi) * np.cos(theta)], axis=-1)


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ------------------------------------------------------------------------------------------ base solid
def _ellipsoid(p, c, r):
    q = (p - np.asarray(c)) / np.asarray(r)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def _superellipsoid(p, c, r_front, r_back, n):
    """Approximate signed distance of a super-ellipsoid (exponent ``n``) whose z radius differs front/back."""
    q = p - np.asarray(c)
    rz = np.where(q[..., 2] >= 0, r_front[2], r_back[2])
    ax = np.abs(q[..., 0]) / r_front[0]
    ay = np.abs(q[..., 1]) / r_front[1]
    az = np.abs(q[..., 2]) / rz
    k = (ax**n + ay**n + az**n) ** (1.0 / n)
    return (k - 1.0) * min(min(r_front), min(r_back))


def _smin(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def base_sdf(p: np.ndarray) -> np.ndarray:
    """Approximate signed distance of the base solid (negative inside)."""
    # cranium proportions measured on an adult mean head: vertex 103 mm above the eye corners, 79 mm half-width
    # at the parietal level, back of the skull 118 mm behind the eye corners; a super-ellipsoid keeps the top
    # broad (an ellipsoid that wide is a pointed dome)
    cranium = _superellipsoid(p, (0.0, 0.045, -0.010), (0.079, 0.088, 0.085), (0.079, 0.088, 0.102), 2.5)
    occiput = _ellipsoid(p, (0.0, 0.012, -0.050), (0.062, 0.060, 0.068))
    jaw = _ellipsoid(p, (0.0, -0.036, 0.012), (0.060, 0.060, 0.064))
    chin = _ellipsoid(p, (0.0, -0.072, 0.045), (0.030, 0.020, 0.026))
    # neck: elliptic cylinder, capped far below the cut
    q = (p[..., [0, 2]] - np.array([0.0, -0.02])) / np.array([0.052, 0.053])
    neck_side = (np.linalg.norm(q, axis=-1) - 1.0) * 0.055
    neck = np.maximum(neck_side, np.maximum(p[..., 1] - (-0.02), -0.4 - p[..., 1]))
    d = _smin(cranium, occiput, 0.02)
    d = _smin(d, jaw, 0.02)
    d = _smin(d, chin, 0.012)
    return _smin(d, neck, 0.018)


def _raycast(dirs: np.ndarray, r_max: float = 0.35, iters: int = 32) -> np.ndarray:
    lo = np.zeros(dirs.shape[:-1])
    hi = np.full(dirs.shape[:-1], r_max)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        inside = base_sdf(dirs * mid[..., None]) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def _ear_relief(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Radial height of both ears (metres) on the (θ, φ) raster: helix rim, concha bowl, lobe."""
    out = np.zeros_like(theta)
    for side in (1.0, -1.0):
        a = (side * theta - 1.86) / 0.24  # across the ear: -1 front (attached), +1 back rim
        b = (phi - 0.02) / 0.39  # along the ear: +1 top, -1 lobe
        # the lobe is narrower than the upper ear
        a_w = a / (1.0 - 0.25 * _smoothstep(-0.3, -0.9, b))
        rho = np.sqrt(a_w**2 + b**2)
        outline = _smoothstep(1.05, 0.8, rho)
        # the ear stands off the head towards its back rim (~22 mm), less at the lobe
        lift = 0.004 + 0.018 * _smoothstep(-0.9, 0.7, a_w) * (0.6 + 0.4 * _smoothstep(-1.0, -0.3, b))
        # helix: a rolled rim along the top and back, fading out towards the lobe
        helix = 0.004 * np.exp(-(((rho - 0.78) / 0.17) ** 2)) * _smoothstep(-0.7, -0.2, b)
        # concha: the bowl in front of the ear canal, below the middle
        concha = 0.6 * np.exp(-(((a_w + 0.05) / 0.42) ** 2 + ((b + 0.12) / 0.38) ** 2)) * _smoothstep(-0.75, -0.3, b)
        out += outline * (lift * (1.0 - concha) + helix)
    return out


def neck_flare(p: np.ndarray) -> np.ndarray:
    """Widen the lower neck towards the shoulders and deepen it towards the back (the trapezius).

    Applied to the grid after the star-shaped sampling (a flare seen from the head centre is not star-shaped).
    Measured targets on an adult mean head, relative to the eye corners: half-width 54 mm 130 mm below them,
    81 mm at 150 mm and 102 mm at 170 mm; the back of the neck recedes by ~25 mm over the same span.
    """
    y = p[:, 1]
    s_x = _smoothstep(-0.09, -0.155, y)
    s_z = _smoothstep(-0.07, -0.15, y)
    out = p.copy()
    out[:, 0] = p[:, 0] * (1.0 + 0.95 * s_x)
    axis_z = -0.02
    out[:, 2] = axis_z - 0.025 * s_z + (p[:, 2] - axis_z) * (1.0 + 0.1 * s_z)
    return out


@dataclass
class RadiusMap:
    theta: np.ndarray  # (nθ,)
    phi: np.ndarray  # (nφ,)
    radius: np.ndarray  # (nφ, nθ)
    face_weight: np.ndarray  # (nφ, nθ) 1 inside the face oval
    ear_height: np.ndarray  # (nφ, nθ)
    _interp: RegularGridInterpolator | None = field(default=None, repr=False)

    def __call__(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        if self._interp is None:
            self._interp = RegularGridInterpolator((self.phi, self.theta), self.radius, bounds_error=False)
        th = (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi
        ph = np.clip(np.asarray(phi), self.phi[0], self.phi[-1])
        return self._interp(np.stack([ph, th], axis=-1))

    def sample(self, grid: np.ndarray, theta, phi) -> np.ndarray:
        interp = RegularGridInterpolator((self.phi, self.theta), grid, bounds_error=False, fill_value=0.0)
        th = (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi
        return interp(np.stack([np.asarray(phi), th], axis=-1))


def build_radius_map(face: np.ndarray) -> RadiusMap:
    from matplotlib.path import Path as MplPath

    theta = np.arange(-np.pi, np.pi + 1e-9, RASTER_STEP)
    phi = np.arange(-np.pi / 2, np.pi / 2 + 1e-9, RASTER_STEP)
    tt, pp = np.meshgrid(theta, phi)
    r_base = _raycast(directions(tt, pp))

    ft, fp, fr = to_angles(face[:468])  # iris points (468..477) are not skin
    r_face = LinearNDInterpolator(np.stack([ft, fp], 1), fr)(tt, pp)
    oval = MplPath(np.stack([ft[list(MP_FACE_OVAL)], fp[list(MP_FACE_OVAL)]], 1))
    inside = oval.contains_points(np.stack([tt.ravel(), pp.ravel()], 1)).reshape(tt.shape) & np.isfinite(r_face)
    delta = np.where(inside, r_face - r_base, 0.0)
    # extend the face-minus-base difference outwards (nearest value) and fade it over ~0.25 rad
    dist, idx = ndimage.distance_transform_edt(~inside, return_indices=True)
    delta = delta[idx[0], idx[1]] * np.exp(-((dist * RASTER_STEP / 0.22) ** 2))
    delta = ndimage.gaussian_filter(delta, 2.2)
    ears = _ear_relief(tt, pp)
    radius = r_base + delta + ears
    face_weight = ndimage.gaussian_filter(inside.astype(np.float64), 2.0)
    return RadiusMap(theta, phi, radius, face_weight, ears)


# ------------------------------------------------------------------------------------------ grid
def column_angles() -> np.ndarray:
    """(96,) azimuth of columns k = -48..47, mirror-symmetric, exact at the feature corners."""
    face = face_points()
    th = lambda i: float(np.arctan2(face[i, 0], face[i, 2]))  # noqa: E731
    # columns 29..39 are denser over the ear (θ ≈ 1.6..2.15), the back of the head is coarser
    knots_k = [0, EYE_COLS[0], MOUTH_HALF, EYE_COLS[1], 25, 29, 39, 48]
    knots_t = [0.0, th(362), th(308), th(263), 1.25, 1.58, 2.16, np.pi]
    g = PchipInterpolator(knots_k, knots_t)
    k = np.arange(-48, 48)
    out = np.sign(k) * g(np.abs(k))
    out[0] = -np.pi  # the back midline exactly (the spline's end value may round past ±π)
    return out


def row_angles_face() -> np.ndarray:
    """(50,) elevation of rows 0..49 (pole side down to the chin row); rows below are per column."""
    face = face_points()
    ph = lambda *ids: float(np.mean([to_angles(face[i])[1] for i in ids]))  # noqa: E731
    knots_i = [-1, 4, 10, ROW_EYE, ROW_MOUTH, ROW_CHIN]
    knots_p = [np.pi / 2, 1.05, 0.70, ph(263, 362), ph(13, 14), ph(152)]
    return PchipInterpolator(knots_i, knots_p)(np.arange(ROW_CHIN + 1))


@dataclass
class HeadMesh:
    """Everything the other generator stages need to know about the mesh."""

    verts: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    uvs: np.ndarray  # (VT, 2)
    uv_faces: np.ndarray  # (F, 3)
    part: np.ndarray  # (V,) 0 skin grid, 1 pole, 2 mouth cavity, 3 eye tuck ring, 4 left eyeball, 5 right eyeball
    grid_id: np.ndarray  # (62, 96) vertex id of each grid node (upper copy on slits)
    grid_id_lower: np.ndarray  # (62, 96) lower copy on slits, else same as grid_id
    grid_theta: np.ndarray  # (62, 96)
    grid_phi: np.ndarray  # (62, 96) (upper copy)
    mouth_loop: np.ndarray  # (32,) corner(+x), upper slit +x..-x, corner(-x), lower slit -x..+x
    cavity_rings: np.ndarray  # (4, 32) vertex ids
    cavity_cap: int
    eye_loops: dict[str, np.ndarray]  # side -> loop vertex ids
    eye_tuck: dict[str, np.ndarray]  # side -> tuck ring ids
    eye_centres: dict[str, np.ndarray]  # side -> (3,)
    eyeball_ids: dict[str, np.ndarray]  # side -> vertex ids
    eyeball_angle: np.ndarray  # (V,) angle from the eyeball's front axis (NaN for other vertices)
    mirror: np.ndarray  # (V,) id of the mirror-image vertex
    face_points: np.ndarray  # (478, 3) MediaPipe layout used
    radius_map: RadiusMap


def _harmonic_fill(n: int, edges: np.ndarray, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Solve the graph Laplace equation for free nodes given fixed node values (uniform weights)."""
    i, j = edges[:, 0], edges[:, 1]
    w = np.ones(len(edges))
    a = sparse.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    lap = sparse.diags(np.asarray(a.sum(1)).ravel()) - a
    free = ~fixed
    x = np.where(fixed, values, 0.0)
    rhs = -lap[free][:, fixed] @ x[fixed]
    x[free] = spsolve(lap[free][:, free].tocsc(), rhs)
    return x


def _polyline_phi_at(face: np.ndarray, ids, theta: np.ndarray) -> np.ndarray:
    t, p, _ = to_angles(face[list(ids)])
    order = np.argsort(t)
    return np.interp(theta, t[order], p[order])


def build_mesh() -> HeadMesh:
    face = face_points()
    rmap = build_radius_map(face)
    cols = column_angles()  # (96,)
    rows = row_angles_face()  # (50,)
    kk = np.arange(-48, 48)

    # --- node bookkeeping: grid nodes, with a lower copy on slit nodes
    slit_cols_mouth = np.abs(kk) <= MOUTH_HALF - 1
    slit_cols_eye = (np.abs(kk) > EYE_COLS[0]) & (np.abs(kk) < EYE_COLS[1])
    ids = np.arange(N_ROWS * N_COLS).reshape(N_ROWS, N_COLS)
    ids_lower = ids.copy()
    n = ids.size
    for row, mask in ((ROW_MOUTH, slit_cols_mouth), (ROW_EYE, slit_cols_eye)):
        c = np.nonzero(mask)[0]
        ids_lower[row, c] = n + np.arange(len(c))
        n += len(c)
    n_grid = n
    pole = n_grid

    # --- base angles: rows 0..49 common, rows 50..61 filled later per column
    theta = np.tile(cols, (N_ROWS, 1))
    phi = np.zeros((N_ROWS, N_COLS))
    phi[: ROW_CHIN + 1] = rows[:, None]
    node_theta = np.zeros(n_grid)
    node_phi = np.zeros(n_grid)
    node_theta[ids] = theta
    node_theta[ids_lower] = theta

    # --- edges of the grid graph (with slits), used by the harmonic warp
    quads = []
    for i in range(N_ROWS - 1):
        for c in range(N_COLS):
            c1 = (c + 1) % N_COLS
            quads.append((ids_lower[i, c], ids_lower[i, c1], ids[i + 1, c1], ids[i + 1, c]))
    quads = np.asarray(quads)
    edges = np.concatenate([quads[:, [0, 1]], quads[:, [1, 2]], quads[:, [2, 3]], quads[:, [3, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)

    # --- harmonic warp of φ on the face rows: targets on feature lines, zero far away
    base_phi = np.zeros(n_grid)
    base_phi[ids[: ROW_CHIN + 1]] = rows[:, None]
    base_phi[ids_lower[: ROW_CHIN + 1]] = rows[:, None]
    fixed = np.zeros(n_grid, bool)
    target = np.zeros(n_grid)
    far = (np.arange(N_ROWS)[:, None] <= 5) | (np.arange(N_ROWS)[:, None] >= ROW_CHIN) | (np.abs(kk)[None] >= 30)
    fixed[ids[far]] = True
    fixed[ids_lower[far]] = True

    def pin(node_ids, values):
        fixed[node_ids] = True
        target[node_ids] = values - base_phi[node_ids]

    mouth_c = np.nonzero(np.abs(kk) <= MOUTH_HALF)[0]
    th_m = cols[mouth_c]
    p_up = _polyline_phi_at(face, MP_UPPER_INNER_LIP, th_m)
    p_lo = _polyline_phi_at(face, MP_LOWER_INNER_LIP, th_m)
    # keep the closed lips apart by >= ~0.25 mm (the captured layout's lines cross near the corners)
    mid, half = 0.5 * (p_up + p_lo), np.maximum(0.5 * (p_up - p_lo), 0.003)
    half[[0, -1]] = 0.0
    pin(ids[ROW_MOUTH, mouth_c], mid + half)
    pin(ids_lower[ROW_MOUTH, mouth_c], mid - half)
    inner_c = np.nonzero(np.abs(kk) <= MOUTH_HALF - 1)[0]
    th_i = cols[inner_c]
    pin(ids[LIP_OUTER_ROWS[0], inner_c], _polyline_phi_at(face, MP_UPPER_OUTER_LIP, th_i))
    pin(ids[LIP_OUTER_ROWS[1], inner_c], _polyline_phi_at(face, MP_LOWER_OUTER_LIP, th_i))
    mirror_pts = face * np.array([-1.0, 1.0, 1.0])
    for pts, sign in ((face, 1), (mirror_pts, -1)):
        eye_c = np.nonzero((sign * kk >= EYE_COLS[0]) & (sign * kk <= EYE_COLS[1]))[0]
        th_e = cols[eye_c]
        pin(ids[ROW_EYE, eye_c], _polyline_phi_at(pts, MP_LEFT_UPPER_LID, th_e))
        pin(ids_lower[ROW_EYE, eye_c], _polyline_phi_at(pts, MP_LEFT_LOWER_LID, th_e))
    dphi = _harmonic_fill(n_grid, edges, fixed, target)
    node_phi = base_phi + dphi

    # --- neck rows: spread each column's profile from the chin row to the neck cut by arc length
    for c in range(N_COLS):
        p0 = node_phi[ids[ROW_CHIN, c]]
        ph = np.linspace(p0, -np.pi / 2 + 0.02, 600)
        rr = rmap(np.full_like(ph, cols[c]), ph)
        y = rr * np.sin(ph)
        cut_y = NECK_CUT_Y - NECK_CUT_TILT * np.cos(cols[c])
        end = int(np.argmax(y < cut_y))
        ph_end = np.interp(cut_y, [y[end], y[end - 1]], [ph[end], ph[end - 1]])
        ph = np.linspace(p0, ph_end, 400)
        pts = directions(np.full_like(ph, cols[c]), ph) * rmap(np.full_like(ph, cols[c]), ph)[:, None]
        s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        n_below = N_ROWS - 1 - ROW_CHIN
        u = np.linspace(0, 1, n_below + 1)[1:]
        u = 0.6 * u + 0.4 * u**1.6  # slightly denser under the chin
        node_phi[ids[ROW_CHIN + 1 :, c]] = np.interp(u * s[-1], s, ph)

    node_r = rmap(node_theta, node_phi)
    verts = neck_flare(directions(node_theta, node_phi) * node_r[:, None])
    # exact mirror symmetry (the θ raster of the radius map is not symmetric about 0)
    for grid in (ids, ids_lower):
        for k in range(1, 48):
            left, right = grid[:, 48 + k], grid[:, 48 - k]
            avg = 0.5 * (verts[left] + verts[right] * np.array([-1.0, 1.0, 1.0]))
            verts[left] = avg
            verts[right] = avg * np.array([-1.0, 1.0, 1.0])
        verts[grid[:, 48], 0] = 0.0
        verts[grid[:, 0], 0] = 0.0
    top_phi = np.pi / 2
    pole_v = np.array([0.0, rmap(np.array([0.0]), np.array([top_phi]))[0], 0.0])

    # --- eyeballs: centre behind the middle of the lid opening
    eye_centres = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        pts = face if sign > 0 else mirror_pts
        lid_mid = 0.5 * (pts[386] + pts[374])
        eye_centres[side] = np.array([sign * abs(face[473, 0]), lid_mid[1], lid_mid[2] - (EYE_RADIUS - 0.0015)])

    # lids hug the eyeballs: skin near an eye stays >= 0.8 mm outside it; the lid margins sit on it
    for side, sign in (("left", 1.0), ("right", -1.0)):
        c = eye_centres[side]
        d = verts - c
        dist = np.linalg.norm(d, axis=1)
        near = dist < EYE_RADIUS + 0.0008
        verts[near] = c + d[near] / dist[near, None] * (EYE_RADIUS + 0.0008)
        eye_c = np.nonzero((sign * kk > EYE_COLS[0]) & (sign * kk < EYE_COLS[1]))[0]
        for node in np.r_[ids[ROW_EYE, eye_c], ids_lower[ROW_EYE, eye_c]]:
            d = verts[node] - c
            verts[node] = c + d / np.linalg.norm(d) * (EYE_RADIUS + 0.0005)

    all_verts = [verts, pole_v[None]]
    part = [np.zeros(n_grid, np.int64), np.array([1])]
    n_v = n_grid + 1

    # --- faces of the grid (+ pole fan); split diagonals mirrored at the midline
    faces = []
    for q, c in zip(quads, [c for _ in range(N_ROWS - 1) for c in range(N_COLS)], strict=True):
        a, b, cc, d = q  # (i,c) (i,c+1) (i+1,c+1) (i+1,c)
        if kk[c] >= 0:
            faces += [(a, d, cc), (a, cc, b)]
        else:
            faces += [(a, d, b), (b, d, cc)]
    for c in range(N_COLS):
        faces.append((pole, ids[0, c], ids[0, (c + 1) % N_COLS]))

    # --- mouth cavity: extrude the mouth loop (32 nodes) into 4 rings and a cap
    pos_cols = np.nonzero(kk == MOUTH_HALF)[0][0], np.nonzero(kk == -MOUTH_HALF)[0][0]
    inner_desc = inner_c[::-1]  # +x .. -x
    mouth_loop = np.r_[
        ids[ROW_MOUTH, pos_cols[0]], ids[ROW_MOUTH, inner_desc], ids[ROW_MOUTH, pos_cols[1]],
        ids_lower[ROW_MOUTH, inner_desc[::-1]],
    ]  # fmt: skip
    loop_pos = np.concatenate(all_verts)[mouth_loop]
    is_upper = np.r_[False, np.ones(15, bool), False, np.zeros(15, bool)]
    is_corner = np.r_[True, np.zeros(15, bool), True, np.zeros(15, bool)]
    lift = np.array([0.003, 0.008, 0.012, 0.013])
    depth = np.array([0.004, 0.010, 0.018, 0.026])
    pinch = np.array([0.001, 0.003, 0.006, 0.009])
    rings = []
    prev = mouth_loop
    for r_i in range(4):
        p = loop_pos.copy()
        p[:, 1] += np.where(is_corner, 0.0, np.where(is_upper, lift[r_i], -lift[r_i]))
        p[:, 2] -= depth[r_i]
        p[:, 0] -= np.sign(p[:, 0]) * np.minimum(pinch[r_i], np.abs(p[:, 0])) * np.where(is_corner, 1.0, 0.5)
        ring = n_v + np.arange(32)
        all_verts.append(p)
        part.append(np.full(32, 2))
        n_v += 32
        for j in range(32):
            j1 = (j + 1) % 32
            faces += [(prev[j], ring[j], ring[j1]), (prev[j], ring[j1], prev[j1])]
        rings.append(ring)
        prev = ring
    cap = n_v
    all_verts.append(p.mean(0, keepdims=True) - np.array([[0.0, 0.0, 0.004]]))
    part.append(np.array([2]))
    n_v += 1
    for j in range(32):
        faces.append((prev[j], cap, prev[(j + 1) % 32]))

    # --- eye tuck rings and eyeballs
    eye_loops, eye_tuck, eyeball_ids = {}, {}, {}
    eyeball_angle_parts = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        inner_col = np.nonzero(kk == sign * EYE_COLS[0])[0][0]
        outer_col = np.nonzero(kk == sign * EYE_COLS[1])[0][0]
        mid = np.nonzero((sign * kk > EYE_COLS[0]) & (sign * kk < EYE_COLS[1]))[0]  # ascending k
        mid_in_to_out = mid if sign > 0 else mid[::-1]
        loop = np.r_[
            ids[ROW_EYE, inner_col], ids[ROW_EYE, mid_in_to_out], ids[ROW_EYE, outer_col],
            ids_lower[ROW_EYE, mid_in_to_out[::-1]],
        ]  # fmt: skip
        c = eye_centres[side]
        lp = np.concatenate(all_verts)[loop]
        d = lp - c
        tuck = c + d / np.linalg.norm(d, axis=1, keepdims=True) * (EYE_RADIUS - 0.0015)
        ring = n_v + np.arange(len(loop))
        all_verts.append(tuck)
        part.append(np.full(len(loop), 3))
        n_v += len(loop)
        m = len(loop)
        for j in range(m):
            j1 = (j + 1) % m
            faces += [(loop[j], ring[j], ring[j1]), (loop[j], ring[j1], loop[j1])]
        eye_loops[side], eye_tuck[side] = loop, ring
        sv, sf, sang = _eyeball(c)
        eyeball_ids[side] = n_v + np.arange(len(sv))
        faces += [tuple(f + n_v) for f in sf]
        all_verts.append(sv)
        part.append(np.full(len(sv), 4 if side == "left" else 5))
        eyeball_angle_parts.append((eyeball_ids[side], sang))
        n_v += len(sv)

    verts = np.concatenate(all_verts)
    part = np.concatenate(part)
    faces = np.asarray(faces, dtype=np.int64)
    faces = orient_outward(verts, faces)
    eyeball_angle = np.full(len(verts), np.nan)
    for idx, ang in eyeball_angle_parts:
        eyeball_angle[idx] = ang
    _LOOPS.clear()
    _LOOPS.update(mouth=mouth_loop, **eye_loops)
    uvs, uv_faces = _uv_layout(verts, faces, part, ids, ids_lower, pole, rings, cap, eye_tuck, eyeball_ids)
    mirror = _mirror_map(verts)
    grid_phi = node_phi[ids]
    return HeadMesh(
        verts=verts,
        faces=faces,
        uvs=uvs,
        uv_faces=uv_faces,
        part=part,
        grid_id=ids,
        grid_id_lower=ids_lower,
        grid_theta=theta,
        grid_phi=grid_phi,
        mouth_loop=mouth_loop,
        cavity_rings=np.asarray(rings),
        cavity_cap=cap,
        eye_loops=eye_loops,
        eye_tuck=eye_tuck,
        eye_centres=eye_centres,
        eyeball_ids=eyeball_ids,
        eyeball_angle=eyeball_angle,
        mirror=mirror,
        face_points=face,
        radius_map=rmap,
    )


EYEBALL_LATS_DEG = (7, 14, 21, 28, 36, 46, 60, 78, 98, 120, 145, 165)
EYEBALL_LONS = 20


def _eyeball(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UV sphere looking to +z: front pole, 12 rings of 20, back pole; a slight corneal bulge."""
    lats = np.deg2rad(np.asarray(EYEBALL_LATS_DEG, dtype=np.float64))
    lons = np.arange(EYEBALL_LONS) * 2 * np.pi / EYEBALL_LONS
    ang = np.r_[0.0, np.repeat(lats, EYEBALL_LONS), np.pi]
    lon = np.r_[0.0, np.tile(lons, len(lats)), 0.0]
    radius = EYE_RADIUS + 0.0009 * np.clip(np.cos(ang * np.pi / (2 * np.deg2rad(40))), 0, None) * (ang < np.deg2rad(40))
    dirs = np.stack([np.sin(ang) * np.cos(lon), np.sin(ang) * np.sin(lon), np.cos(ang)], 1)
    v = centre + dirs * radius[:, None]
    faces = []
    L, n_r = EYEBALL_LONS, len(lats)
    ring = lambda r, j: 1 + r * L + (j % L)  # noqa: E731
    for j in range(L):
        faces.append((0, ring(0, j), ring(0, j + 1)))
        faces.append((1 + n_r * L, ring(n_r - 1, j + 1), ring(n_r - 1, j)))
    for r in range(n_r - 1):
        for j in range(L):
            faces += [
                (ring(r, j), ring(r + 1, j), ring(r + 1, j + 1)),
                (ring(r, j), ring(r + 1, j + 1), ring(r, j + 1)),
            ]
    return v, np.asarray(faces), ang


def orient_outward(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Make every connected component consistently oriented with outward normals (positive signed volume)."""
    faces = faces.copy()
    n_f = len(faces)
    # directed half-edges -> face
    he = {}
    for f, (a, b, c) in enumerate(faces):
        for u, v in ((a, b), (b, c), (c, a)):
            he.setdefault((min(u, v), max(u, v)), []).append(f)
    adj = [[] for _ in range(n_f)]
    for fs in he.values():
        for x in fs:
            for y in fs:
                if x != y:
                    adj[x].append(y)
    seen = np.zeros(n_f, bool)

    def edges_of(f):
        a, b, c = faces[f]
        return {(a, b), (b, c), (c, a)}

    components = []
    for s in range(n_f):
        if seen[s]:
            continue
        seen[s] = True
        stack, comp = [s], [s]
        while stack:
            f = stack.pop()
            ef = edges_of(f)
            for g in adj[f]:
                if seen[g]:
                    continue
                # consistent if the shared edge runs in opposite directions
                if edges_of(g) & ef:
                    faces[g] = faces[g][[0, 2, 1]]
                seen[g] = True
                stack.append(g)
                comp.append(g)
        components.append(np.asarray(comp))
    for comp in components:
        tri = verts[faces[comp]]
        centre = verts[np.unique(faces[comp])].mean(0)
        vol = np.einsum("ij,ij->i", tri[:, 0] - centre, np.cross(tri[:, 1] - centre, tri[:, 2] - centre)).sum()
        if vol < 0:
            faces[comp] = faces[comp][:, [0, 2, 1]]
    return faces


def _mirror_map(verts: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    m = verts * np.array([-1.0, 1.0, 1.0])
    _, idx = cKDTree(verts).query(m)
    return idx.astype(np.int64)


def _uv_layout(verts, faces, part, ids, ids_lower, pole, rings, cap, eye_tuck, eyeball_ids):
    """Per-face-corner UVs: grid by (column, row); islands for the cavity, the tuck rings and the eyeballs."""
    n_v = len(verts)
    vt = np.zeros((n_v, 2))  # default UV per vertex
    kk = np.arange(N_COLS)
    u_col = 0.005 + 0.99 * kk / N_COLS
    v_row = 0.94 - 0.80 * np.arange(N_ROWS) / (N_ROWS - 1)
    vt[ids] = np.stack(np.meshgrid(u_col, v_row), -1)
    vt[ids_lower] = np.stack(np.meshgrid(u_col, v_row), -1)

    # cavity strip: columns = loop position, rows = ring
    for r_i, ring in enumerate(rings):
        vt[ring] = np.stack([0.30 + 0.40 * np.arange(32) / 31, np.full(32, 0.03 + 0.02 * (r_i + 1))], 1)
    ang = np.arange(32) * 2 * np.pi / 32
    cap_ring_uv = np.stack([0.82 + 0.035 * np.cos(ang), 0.08 + 0.035 * np.sin(ang)], 1)
    vt[cap] = (0.82, 0.08)
    # eye tuck rings
    for side, u0 in (("left", 0.76), ("right", 0.88)):
        ring = eye_tuck[side]
        vt[ring] = np.stack([u0 + 0.10 * np.arange(len(ring)) / (len(ring) - 1), np.full(len(ring), 0.02)], 1)
    # eyeballs: lat/long, front pole at the top of the island
    n_lat = len(EYEBALL_LATS_DEG)
    for side, u0 in (("left", 0.02), ("right", 0.15)):
        eb = eyeball_ids[side]
        lat_v = np.r_[0.0, np.repeat(np.arange(1, n_lat + 1), EYEBALL_LONS), n_lat + 1] / (n_lat + 1)
        lon_u = np.r_[0.5, np.tile(np.arange(EYEBALL_LONS) / EYEBALL_LONS, n_lat), 0.5]
        vt[eb] = np.stack([u0 + 0.12 * lon_u, 0.125 - 0.12 * lat_v], 1)

    uv_faces = faces.copy()
    uvs = [vt]
    n_t = n_v

    def new_uv(p):
        nonlocal n_t
        uvs.append(np.asarray(p, dtype=np.float64).reshape(1, 2))
        n_t += 1
        return n_t - 1

    seam_col = ids[:, 0]
    seam_lookup = {int(v): i for i, v in enumerate(seam_col)}
    seam_uv = {}
    ring_set = [set(map(int, r)) for r in rings]
    loop_ids = set()
    for f_i, f in enumerate(faces):
        fset = set(map(int, f))
        corners = uv_faces[f_i]
        p = part[f]
        if pole in fset:  # pole fan: own UV at the pole
            others = [int(x) for x in f if x != pole]
            us = vt[others, 0]
            if us.max() - us.min() > 0.5:
                us = np.where(us < 0.5, us + 1.0, us)
            corners[list(f).index(pole)] = new_uv((us.mean(), 0.948))
        # grid faces touching the seam column from column 95 get a duplicate at u = 1
        if (p == 0).all() or pole in fset:
            cols_u = vt[f, 0]
            if cols_u.max() > 0.9:
                for j, x in enumerate(f):
                    if int(x) in seam_lookup and vt[x, 0] < 0.1:
                        key = int(x)
                        if key not in seam_uv:
                            seam_uv[key] = new_uv((vt[x, 0] + 0.99, vt[x, 1]))
                        corners[j] = seam_uv[key]
        # faces between the mouth loop (grid) and the first cavity ring use cavity-strip UVs for loop vertices
        if (p == 2).any() and (p == 0).any():
            for j, x in enumerate(f):
                if part[x] == 0:
                    loop_ids.add(int(x))
                    corners[j] = _cavity_loop_uv(int(x), rings, faces, new_uv, _CACHE)
        if (p == 2).any() and cap in fset:
            for j, x in enumerate(f):
                if x != cap:
                    pos = list(rings[-1]).index(int(x))
                    corners[j] = _cached(_CACHE, ("cap", pos), lambda pos=pos: new_uv(cap_ring_uv[pos]))
        if (p == 3).any() and (p == 0).any():
            for j, x in enumerate(f):
                if part[x] == 0:
                    corners[j] = _cached(
                        _CACHE, ("eyeloop", int(x)), lambda x=x: new_uv(_eye_loop_uv(int(x), eye_tuck, vt, _LOOPS))
                    )
        uv_faces[f_i] = corners
    del ring_set
    _CACHE.clear()
    return np.concatenate(uvs).astype(np.float32), uv_faces


_CACHE: dict = {}
_LOOPS: dict = {}


def _cached(cache, key, make):
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _cavity_loop_uv(x, rings, faces, new_uv, cache):
    loop = _LOOPS["mouth"]
    pos = int(np.nonzero(loop == x)[0][0])
    return _cached(cache, ("mouth", pos), lambda: new_uv((0.30 + 0.40 * pos / 31, 0.03)))


def _eye_loop_uv(x, eye_tuck, vt, loops):
    for side in ("left", "right"):
        loop = loops[side]
        hit = np.nonzero(loop == x)[0]
        if len(hit):
            ring = eye_tuck[side]
            return (vt[ring[hit[0]], 0], 0.045)
    raise AssertionError(x)
