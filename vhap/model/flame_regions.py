"""The custom region vocabulary of VHAP_SPEC §2.4 on FLAME topology.

Short lists (lip rings, neck points, ``neck_top``, ``bottomline``) are the vertex ids of Appendix A
(facts about FLAME's topology). VHAP's larger lists are hand-painted selections; we re-derive them from the
FLAME_masks regions plus simple, documented geometric rules on the template (Appendix A allows this — they
only steer tracking regularisation, never an exported format). Sizes therefore differ somewhat from VHAP's.

Rules (template in FLAME's canonical frame, +x = subject's left, +y up, +z forward):

- ``lip_inside_upper`` / ``lip_inside_lower``: the mouth-side lip surfaces next to the inner lip ring, i.e. the
  non-ring vertices within 3 edge hops of ``lip_inside_ring`` that lie within the mouth's x extent; each goes to
  the ring (upper/lower) it is closer to (edge hops, ties broken by y). ``lip_inside`` = both ∪
  ``lip_inside_ring`` (128 vertices on FLAME, VHAP's count; UV-footprint IoU with VHAP's mask 0.84).
- ``neck_upper`` / ``neck_lower``: ``neck`` ∪ ``boundary`` split at the height halfway between the mean height of
  ``neck_top`` and that of ``bottomline`` (``neck_top`` always counts as upper).
- ``left_iris`` / ``right_iris``: the 97 eyeball vertices whose direction from the eyeball centroid is closest
  to +z (the front cap of the eyeball).
- ``left_eyelid`` / ``right_eyelid``: the 146 vertices of ``<side>_eye_region`` closest to the eyeball centroid.
- ``lips_tight``: vertices of ``lips`` ∪ ``lip_inside`` ∪ outer rings whose (x, y) lies inside (or on) the outer lip
  contour (outer upper ring followed by the reversed outer lower ring), plus the outer rings themselves.
- ``left_half`` / ``right_half``: x ≥ −0.1 mm / x ≤ +0.1 mm (midline vertices belong to both).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

LIP_OUTSIDE_RING_UPPER = [1713, 1715, 1716, 1735, 1696, 1694, 1657, 3543, 2774, 2811, 2813, 2850, 2833, 2832, 2830]
LIP_OUTSIDE_RING_LOWER = [1576, 1577, 1773, 1774, 1795, 1802, 1865, 3503, 2948, 2905, 2898, 2881, 2880, 2713, 2712]
LIP_INSIDE_RING_UPPER = [1595, 1746, 1747, 1742, 1739, 1665, 1666, 3514, 2783, 2782, 2854, 2857, 2862, 2861, 2731]
LIP_INSIDE_RING_LOWER = [1572, 1573, 1860, 1862, 1830, 1835, 1852, 3497, 2941, 2933, 2930, 2945, 2943, 2709, 2708]
LIP_RING_CORNERS = [1594, 2730]
BOTTOMLINE = [3218, 3219, 3226, 3272, 3273, 3229, 3228, 3261, 3260, 3248, 3359, 3360, 3329, 3330, 3372, 3371, 3327]
BOTTOMLINE += [3322, 3321, 3355, 3354, 3356, 3357, 3379, 3285, 3289, 3258, 3257, 3255, 3256]
NECK_TOP = [10, 11, 111, 112, 784, 795, 1325, 1901, 2115, 2162, 2251, 2254, 2483, 2979, 3142, 3174]
NECK_TOP += list(range(3441, 3450)) + [3562, 3673] + list(range(3676, 3682)) + [3685]
POINTS = {
    "neck_left_point": [3193],
    "neck_right_point": [3296],
    "front_middle_bottom_point_boundary": [3285],
    "back_middle_bottom_point_boundary": [3248],
}
FLAME_NUM_VERTS = 5023
NUM_IRIS = 97
NUM_EYELID = 146
MIDLINE_TOL = 1e-4
LIP_INSIDE_HOPS = 3


def _adjacency(faces: np.ndarray, num_verts: int) -> sp.csr_matrix:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adj = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_verts, num_verts))
    return (adj + adj.T).tocsr()


def _hops(adj: sp.csr_matrix, sources: list[int]) -> np.ndarray:
    return csgraph.shortest_path(adj, unweighted=True, indices=sources, directed=False).min(axis=0)


def _inside_polygon(points: np.ndarray, polygon: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Even-odd point-in-polygon test in 2D, points on an edge count as inside."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0][None], polygon[:, 1][None]
    x1, y1 = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / np.where(y1 == y0, 1e-30, y1 - y0) + x0)
    inside = crosses.sum(axis=1) % 2 == 1
    # on-edge test
    ex, ey = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * ex + (y - y0) * ey) / np.maximum(ex * ex + ey * ey, 1e-30), 0, 1)
    dist = np.hypot(x0 + t * ex - x, y0 + t * ey - y).min(axis=1)
    return inside | (dist < tol)


def flame_custom_regions(v_template: np.ndarray, faces: np.ndarray, masks: dict[str, np.ndarray]) -> dict:
    """All custom regions of §2.4 for the FLAME topology (see module docstring for the rules)."""
    v = np.asarray(v_template, dtype=np.float64)
    num_verts = v.shape[0]
    adj = _adjacency(np.asarray(faces), num_verts)
    regions: dict[str, np.ndarray] = {k: np.asarray(ids, dtype=np.int64) for k, ids in POINTS.items()}
    regions["lip_outside_ring_upper"] = np.array(LIP_OUTSIDE_RING_UPPER)
    regions["lip_outside_ring_lower"] = np.array(LIP_OUTSIDE_RING_LOWER)
    regions["lip_inside_ring_upper"] = np.array(LIP_INSIDE_RING_UPPER)
    regions["lip_inside_ring_lower"] = np.array(LIP_INSIDE_RING_LOWER)
    regions["lip_inside_ring"] = np.array(LIP_INSIDE_RING_UPPER + LIP_INSIDE_RING_LOWER + LIP_RING_CORNERS)
    regions["bottomline"] = np.array(BOTTOMLINE)
    regions["neck_top"] = np.array(NECK_TOP)

    # inner lip surfaces
    ring_all = LIP_INSIDE_RING_UPPER + LIP_INSIDE_RING_LOWER + LIP_RING_CORNERS
    hops_upper = _hops(adj, LIP_INSIDE_RING_UPPER)
    hops_lower = _hops(adj, LIP_INSIDE_RING_LOWER)
    hops_ring = np.minimum(hops_upper, _hops(adj, LIP_INSIDE_RING_LOWER + LIP_RING_CORNERS))
    mouth_halfwidth = np.abs(v[ring_all, 0]).max()
    candidate = (hops_ring >= 1) & (hops_ring <= LIP_INSIDE_HOPS) & (np.abs(v[:, 0]) <= mouth_halfwidth + 1e-6)
    candidate[ring_all] = False
    ids = np.flatnonzero(candidate)
    ring_mid_y = 0.5 * (v[LIP_INSIDE_RING_UPPER, 1].mean() + v[LIP_INSIDE_RING_LOWER, 1].mean())
    upper_side = (hops_upper[ids] < hops_lower[ids]) | ((hops_upper[ids] == hops_lower[ids]) & (v[ids, 1] > ring_mid_y))
    regions["lip_inside_upper"] = ids[upper_side]
    regions["lip_inside_lower"] = ids[~upper_side]
    regions["lip_inside"] = np.unique(np.concatenate([ids, ring_all]))

    # neck split
    neck = np.union1d(masks.get("neck", []), masks.get("boundary", [])).astype(np.int64)
    y_split = 0.5 * (v[NECK_TOP, 1].mean() + v[BOTTOMLINE, 1].mean())
    regions["neck_upper"] = np.union1d(neck[v[neck, 1] >= y_split], NECK_TOP)
    regions["neck_lower"] = np.setdiff1d(neck[v[neck, 1] < y_split], NECK_TOP)

    # irises and eyelids
    for side in ("left", "right"):
        ball = np.asarray(masks.get(f"{side}_eyeball", []), dtype=np.int64)
        if ball.size == 0:
            continue
        centre = v[ball].mean(axis=0)
        direction = v[ball] - centre
        cos_to_front = direction[:, 2] / np.maximum(np.linalg.norm(direction, axis=1), 1e-12)
        regions[f"{side}_iris"] = np.sort(ball[np.argsort(-cos_to_front, kind="stable")[:NUM_IRIS]])
        eye_region = np.asarray(masks.get(f"{side}_eye_region", []), dtype=np.int64)
        eye_region = np.setdiff1d(eye_region, ball)
        dist = np.linalg.norm(v[eye_region] - centre, axis=1)
        regions[f"{side}_eyelid"] = np.sort(eye_region[np.argsort(dist, kind="stable")[:NUM_EYELID]])

    # tight lips: inside the outer lip contour seen from the front
    contour = np.concatenate([v[LIP_OUTSIDE_RING_UPPER, :2], v[LIP_OUTSIDE_RING_LOWER[::-1], :2]])
    pool = np.unique(
        np.concatenate([masks.get("lips", []), regions["lip_inside"], LIP_OUTSIDE_RING_UPPER, LIP_OUTSIDE_RING_LOWER])
    ).astype(np.int64)
    inside = _inside_polygon(v[pool, :2], contour)
    regions["lips_tight"] = np.union1d(pool[inside], LIP_OUTSIDE_RING_UPPER + LIP_OUTSIDE_RING_LOWER)

    regions["left_half"] = np.flatnonzero(v[:, 0] >= -MIDLINE_TOL)
    regions["right_half"] = np.flatnonzero(v[:, 0] <= MIDLINE_TOL)
    return regions
