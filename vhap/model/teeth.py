"""Teeth geometry appended to a FLAME-structured head (VHAP_SPEC §2.3).

120 vertices, 168 faces and 120 UV vertices are appended after the head's own, in exactly VHAP's order, so
per-vertex quantities (static offsets) line up with VHAP / GaussianAvatars on FLAME topology
(V 5023→5143, F 9976→10144, VT 5118→5238).

The construction needs the two ordered 15-vertex outer lip rings (regions ``lip_outside_ring_upper`` and
``lip_outside_ring_lower``; column 0 is on the subject's left, +x). Eight rows of 15 points each are placed
behind the lips, in this vertex order (local ids):

====  ======  =============================================
rows  ids     what
====  ======  =============================================
UR    0–14    upper root (gum line of the upper teeth)
LR    15–29   lower root
UE    30–44   upper edge (biting edge)
LE    45–59   lower edge
URB   60–74   UR pushed back by the thickness
UEB   75–89   UE pushed back
LRB   90–104  LR pushed back
LEB   105–119 LE pushed back
====  ======  =============================================

Sagittal halves: VHAP extends ``left_half`` with columns 0–7 of every row (64 ids) and ``right_half`` with
columns 7–14 (63 ids — its hand-written list lacks the global id 5096, i.e. row URB column 13, which is
clearly an omission). We do **not** reproduce that omission by default (the halves only steer tracking
regularisation, never the exported format); pass ``reproduce_half_quirk=True`` to get VHAP's exact list.
"""

from __future__ import annotations

import numpy as np

from vhap.errors import VhapError
from vhap.model.assets import HeadAssets

NUM_COLS = 15
ROW_NAMES = ("UR", "LR", "UE", "LE", "URB", "UEB", "LRB", "LEB")
NUM_TEETH_VERTS = NUM_COLS * len(ROW_NAMES)  # 120
NUM_TEETH_FACES = 168
#: row → index into linspace(1 − 0.0083, 1 − 0.0425, 7) giving its UV v coordinate
_ROW_V_INDEX = (3, 2, 0, 1, 3, 4, 6, 5)
UPPER_ROWS = ("UR", "UE", "URB", "UEB")
LOWER_ROWS = ("LR", "LE", "LRB", "LEB")
#: local id of VHAP's omitted right-half teeth vertex (global 5096 on FLAME topology): row URB, column 13
_QUIRK_MISSING_LOCAL = ROW_NAMES.index("URB") * NUM_COLS + 13


def _row(name: str) -> np.ndarray:
    start = ROW_NAMES.index(name) * NUM_COLS
    return np.arange(start, start + NUM_COLS)


def _strip(a: np.ndarray, b: np.ndarray, pattern: str) -> list[tuple[int, int, int]]:
    """Triangulate the 14 quads between rows a and b; the diagonal is mirrored at the centre column."""
    faces = []
    for c in range(NUM_COLS - 1):
        a0, a1, b0, b1 = a[c], a[c + 1], b[c], b[c + 1]
        left = c <= 6
        if pattern == "P":
            faces += [(a0, b1, b0), (a0, a1, b1)] if left else [(a0, a1, b0), (a1, b1, b0)]
        elif pattern == "Q":
            faces += [(a0, a1, b0), (a1, b1, b0)] if left else [(a0, b1, b0), (a0, a1, b1)]
        elif pattern == "S":
            faces += [(a0, b0, b1), (a0, b1, a1)] if left else [(a0, b0, a1), (a1, b0, b1)]
        elif pattern == "T":
            faces += [(a0, b0, a1), (a1, b0, b1)] if left else [(a0, b0, b1), (a0, b1, a1)]
        else:  # pragma: no cover - internal
            raise ValueError(pattern)
    return faces


def teeth_faces_local() -> np.ndarray:
    """(168, 3) teeth faces in local teeth vertex ids (0..119); the same ids index the teeth UVs."""
    r = {name: _row(name) for name in ROW_NAMES}
    faces = (
        _strip(r["UR"], r["UE"], "P")
        + _strip(r["URB"], r["UEB"], "S")
        + _strip(r["UEB"], r["UE"], "T")
        + _strip(r["LE"], r["LR"], "Q")
        + _strip(r["LRB"], r["LEB"], "P")
        + _strip(r["LEB"], r["LE"], "Q")
    )
    return np.asarray(faces, dtype=np.int64)


def teeth_uvs() -> np.ndarray:
    """(120, 2) teeth UVs (OBJ convention, v up), in teeth vertex order."""
    u = np.linspace(0.62, 0.38, NUM_COLS)
    v_levels = np.linspace(1 - 0.0083, 1 - 0.0425, 7)
    rows = [np.stack([u, np.full(NUM_COLS, v_levels[k])], axis=1) for k in _ROW_V_INDEX]
    return np.concatenate(rows).astype(np.float32)


def teeth_vertices(upper_ring: np.ndarray, lower_ring: np.ndarray) -> np.ndarray:
    """(120, 3) teeth vertices from the ordered outer lip rings (15, 3) each (VHAP_SPEC §2.3 steps 2–4)."""
    upper_ring = np.asarray(upper_ring, dtype=np.float64)
    lower_ring = np.asarray(lower_ring, dtype=np.float64)
    d = np.linalg.norm(upper_ring - lower_ring, axis=1).mean()
    mid = (upper_ring + lower_ring) / 2
    mid[:, 1] = mid[:, 1].mean()
    mid[:, 2] -= 1.5 * d
    ue = mid + np.array([0.0, 0.1 * d, 0.0])
    ur = ue + np.array([0.0, 2.0 * d, 0.0])
    le = mid - np.array([0.0, 0.1 * d, 0.0]) - np.array([0.0, 0.0, 0.4 * d])
    lr = le - np.array([0.0, 2.0 * d, 0.0])
    back = np.array([0.0, 0.0, 1.0 * d])
    rows = {"UR": ur, "LR": lr, "UE": ue, "LE": le, "URB": ur - back, "UEB": ue - back, "LRB": lr - back}
    rows["LEB"] = le - back
    return np.concatenate([rows[name] for name in ROW_NAMES]).astype(np.float32)


def add_teeth(assets: HeadAssets, reproduce_half_quirk: bool = False) -> HeadAssets:
    """Return a copy of ``assets`` with the teeth appended (vertices, faces, UVs, bases, weights, regions).

    Adds regions ``teeth_upper``, ``teeth_lower``, ``teeth`` and extends ``left_half`` / ``right_half`` when
    present. Landmark embeddings stay valid because teeth faces are appended after the head's faces.
    """
    missing = [n for n in ("lip_outside_ring_upper", "lip_outside_ring_lower") if n not in assets.regions]
    if missing:
        raise VhapError(
            f"head model '{assets.name}' has no region(s) {missing}; the teeth are built from the ordered outer "
            "lip rings",
            fix="use a head model with lip rings, or disable the teeth (add_teeth=False)",
        )
    upper = assets.regions["lip_outside_ring_upper"]
    lower = assets.regions["lip_outside_ring_lower"]
    if upper.shape != (NUM_COLS,) or lower.shape != (NUM_COLS,):
        raise VhapError(
            f"head model '{assets.name}': lip rings must have {NUM_COLS} ordered vertices each, got "
            f"{upper.shape[0]} and {lower.shape[0]}",
            fix="regenerate the head model's lip ring regions",
        )
    v0, vt0 = assets.num_verts, assets.uvs.shape[0]
    local_rows = {name: _row(name) for name in ROW_NAMES}
    column = np.arange(NUM_TEETH_VERTS) % NUM_COLS  # lip column of every teeth vertex

    verts = teeth_vertices(assets.v_template[upper], assets.v_template[lower])
    faces = teeth_faces_local()

    def extend_basis(basis: np.ndarray, averaged: bool) -> np.ndarray:
        if averaged:
            per_col = 0.5 * (basis[upper] + basis[lower])  # (15, 3, K)
            extra = per_col[column]
        else:
            extra = np.zeros((NUM_TEETH_VERTS, *basis.shape[1:]), dtype=basis.dtype)
        return np.concatenate([basis, extra.astype(basis.dtype)], axis=0)

    weights = np.zeros((NUM_TEETH_VERTS, assets.lbs_weights.shape[1]), dtype=np.float32)
    upper_local = np.concatenate([local_rows[n] for n in UPPER_ROWS])
    lower_local = np.concatenate([local_rows[n] for n in LOWER_ROWS])
    weights[upper_local, 1] = 1.0  # neck
    weights[lower_local, 2] = 1.0  # jaw

    regions = dict(assets.regions)
    regions["teeth_upper"] = np.sort(upper_local) + v0
    regions["teeth_lower"] = np.sort(lower_local) + v0
    regions["teeth"] = np.arange(NUM_TEETH_VERTS) + v0
    left_local = np.flatnonzero(column <= 7)
    right_local = np.flatnonzero(column >= 7)
    if reproduce_half_quirk:
        right_local = right_local[right_local != _QUIRK_MISSING_LOCAL]
    if "left_half" in regions:
        regions["left_half"] = np.concatenate([regions["left_half"], left_local + v0])
    if "right_half" in regions:
        regions["right_half"] = np.concatenate([regions["right_half"], right_local + v0])

    return assets.replace(
        v_template=np.concatenate([assets.v_template, verts]),
        faces=np.concatenate([assets.faces, faces + v0]),
        uvs=np.concatenate([assets.uvs, teeth_uvs()]),
        uv_faces=np.concatenate([assets.uv_faces, faces + vt0]),
        shapedirs=extend_basis(assets.shapedirs, averaged=True),
        exprdirs=extend_basis(assets.exprdirs, averaged=False),
        posedirs=extend_basis(assets.posedirs, averaged=False),
        J_regressor=np.concatenate([assets.J_regressor, np.zeros((assets.J_regressor.shape[0], NUM_TEETH_VERTS))], 1),
        lbs_weights=np.concatenate([assets.lbs_weights, weights]),
        regions=regions,
    )
