"""Per-point confidence of detected iBUG-68 landmarks: find the points a detector got wrong.

MediaPipe (and the iBUG-68 points derived from it) fail on wide-open mouths: the whole lower face is placed too
high, the lower lip and the chin *inside* the open mouth, and a landmark term that trusts them holds the jaw shut
against the photometric term. Three checks, each giving a factor in (0, 1] per point (1 = no evidence against
the point); the stored confidence is their product (never below :data:`MIN_CONFIDENCE`):

1. **Open mouth** (:func:`mouth_interior_rows`, :func:`open_mouth_factors`): the mouth interior is much darker
   than the skin. In a vertical strip through the mouth centre (a third of the mouth width), rows darker than
   ``DARK_RATIO`` × the median luminance of the nose region form the interior (gaps up to ``GAP_IOD`` eye
   distances — teeth, tongue highlights — are bridged). When the interior reaches more than ``SLACK_IOD`` below
   the detected inner lower lip (point 66), the lower lip (55-59, 64-67) and chin/jaw (5-11) points are inside
   the mouth: their factor is ``1 / (1 + (excess / SCALE_IOD)²)`` (Cauchy weight of the excess).
2. **Matte** (:func:`matte_factors`): a point more than ``MATTE_RADIUS_IOD`` from the matte (alpha < 0.5) cannot
   be on the visible face: factor ``OUTSIDE_MATTE``.
3. **Second detector** (:func:`cross_check_factors`, optional, e.g. dlib68): per point, the Cauchy weight of
   the disagreement ``1 / (1 + (d / (SCALE_IOD · eye distance))²)``.

All distances are in units of the detected outer-eye-corner distance (points 36, 45), so the rules hold at any
resolution. Coordinates are pixels, (x right, y down).
"""

from __future__ import annotations

import numpy as np

DARK_RATIO = 0.6
GAP_IOD = 0.06
SLACK_IOD = 0.06
SCALE_IOD = 0.1
MATTE_RADIUS_IOD = 0.05
OUTSIDE_MATTE = 0.1
MIN_CONFIDENCE = 0.02

LOWER_LIP = (55, 56, 57, 58, 59, 64, 65, 66, 67)
CHIN = (5, 6, 7, 8, 9, 10, 11)

#: bit flags stored per point (``landmark_flags`` in the npz)
FLAG_IN_OPEN_MOUTH = 1
FLAG_OUTSIDE_MATTE = 2
FLAG_DISAGREES = 4


def eye_distance(lmk_px: np.ndarray) -> float:
    return float(np.linalg.norm(lmk_px[36, :2] - lmk_px[45, :2]))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def mouth_interior_rows(rgb: np.ndarray, lmk_px: np.ndarray) -> tuple[float, float] | None:
    """(top, bottom) image rows of the dark mouth interior on the mouth's centre line, or None (closed mouth,
    or not measurable). rgb (H,W,3) uint8; lmk_px (68,≥2) pixels."""
    H, W = rgb.shape[:2]
    iod = eye_distance(lmk_px)
    if not np.isfinite(lmk_px[:68, :2]).all() or iod < 4:
        return None
    lum = _luminance(rgb)
    nose = lmk_px[27:36, :2]
    x0, y0 = np.floor(nose.min(0)).astype(int)
    x1, y1 = np.ceil(nose.max(0)).astype(int)
    patch = lum[max(0, y0) : min(H, y1 + 1), max(0, x0) : min(W, x1 + 1)]
    if patch.size == 0:
        return None
    skin = float(np.median(patch))
    cx = float(np.mean(lmk_px[[51, 57, 62, 66], 0]))
    half = max(1.0, abs(lmk_px[54, 0] - lmk_px[48, 0]) / 6)
    xa, xb = int(max(0, round(cx - half))), int(min(W, round(cx + half) + 1))
    ya = int(max(0, round(lmk_px[62, 1] - 0.1 * iod)))
    yb = int(min(H, round(lmk_px[8, 1] + 0.2 * iod) + 1))
    if xb <= xa or yb <= ya + 2:
        return None
    dark = np.median(lum[ya:yb, xa:xb], axis=1) < DARK_RATIO * skin  # (rows,)
    mid = 0.5 * (lmk_px[62, 1] + lmk_px[66, 1])
    # the dark run nearest the detected lip gap
    rows = np.flatnonzero(dark)
    if rows.size == 0:
        return None
    start = int(rows[np.argmin(np.abs(rows + ya - mid))])
    if abs(start + ya - mid) > 0.25 * iod:
        return None
    gap = max(1, round(GAP_IOD * iod))
    top = bottom = start
    while True:  # grow downwards, bridging short bright gaps
        nxt = rows[(rows > bottom) & (rows <= bottom + gap + 1)]
        if nxt.size == 0:
            break
        bottom = int(nxt.max())
    while True:
        prv = rows[(rows < top) & (rows >= top - gap - 1)]
        if prv.size == 0:
            break
        top = int(prv.min())
    return float(top + ya), float(bottom + ya + 1)


def open_mouth_factors(rgb: np.ndarray, lmk_px: np.ndarray) -> tuple[np.ndarray, float]:
    """(68,) factors and the excess (eye distances) by which the image's mouth interior reaches below the
    detected inner lower lip (0 when it does not)."""
    f = np.ones(68, np.float32)
    rows = mouth_interior_rows(rgb, lmk_px)
    if rows is None:
        return f, 0.0
    iod = eye_distance(lmk_px)
    excess = (rows[1] - lmk_px[66, 1]) / iod - SLACK_IOD
    if excess <= 0:
        return f, 0.0
    w = 1.0 / (1.0 + (excess / SCALE_IOD) ** 2)
    f[list(LOWER_LIP + CHIN)] = w
    return f, float(excess)


def matte_factors(matte: np.ndarray, lmk_px: np.ndarray) -> np.ndarray:
    """(68,) :data:`OUTSIDE_MATTE` for points farther than ``MATTE_RADIUS_IOD`` from the matte (> 0.5), else 1.
    matte (H,W) in [0,1]."""
    import cv2

    H, W = matte.shape
    r = max(1, round(MATTE_RADIUS_IOD * eye_distance(lmk_px)))
    grown = cv2.dilate((matte > 0.5).astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    x = np.clip(np.floor(lmk_px[:68, 0]).astype(int), 0, W - 1)
    y = np.clip(np.floor(lmk_px[:68, 1]).astype(int), 0, H - 1)
    inside = grown[y, x] > 0
    out_of_frame = (lmk_px[:68, 0] < 0) | (lmk_px[:68, 0] >= W) | (lmk_px[:68, 1] < 0) | (lmk_px[:68, 1] >= H)
    return np.where(inside & ~out_of_frame, 1.0, OUTSIDE_MATTE).astype(np.float32)


def cross_check_factors(lmk_px: np.ndarray, other_px: np.ndarray) -> np.ndarray:
    """(68,) Cauchy weights of the per-point disagreement with a second detector (1 where it has no point)."""
    d = np.linalg.norm(lmk_px[:68, :2] - other_px[:68, :2], axis=1) / max(eye_distance(lmk_px), 1e-6)
    w = 1.0 / (1.0 + (d / SCALE_IOD) ** 2)
    return np.where(np.isfinite(w), w, 1.0).astype(np.float32)


def frame_confidence(
    rgb: np.ndarray, lmk_px: np.ndarray, matte: np.ndarray | None = None, other_px: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-point confidence (68,) in [MIN_CONFIDENCE, 1], flags (68,) uint8 and the open-mouth excess of one frame."""
    mouth, excess = open_mouth_factors(rgb, lmk_px)
    conf = mouth.copy()
    flags = np.where(mouth < 1, FLAG_IN_OPEN_MOUTH, 0).astype(np.uint8)
    if matte is not None:
        m = matte_factors(matte, lmk_px)
        conf *= m
        flags |= np.where(m < 1, FLAG_OUTSIDE_MATTE, 0).astype(np.uint8)
    if other_px is not None:
        c = cross_check_factors(lmk_px, other_px)
        conf *= c
        flags |= np.where(c < 0.5, FLAG_DISAGREES, 0).astype(np.uint8)
    return np.clip(conf, MIN_CONFIDENCE, 1.0), flags, excess
