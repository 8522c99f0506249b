"""Classical background-plate matting, for captures with a clean plate per camera (NeRSemble).

Per frame:

1. colour distance to the plate in CIE Lab with lightness down-weighted (``lightness_weight``), so soft
   shadows and small exposure drifts count less than real colour changes;
2. a soft threshold between ``low`` and ``high`` (Lab units; ``low`` is raised to the noise level of
   the image border, estimated robustly as median + 3·MAD);
3. morphological open/close of the hard mask, the largest connected component (plus any other of at
   least 20 % of its area), holes filled;
4. edge-aware refinement: a guided filter (He et al. 2010) of the soft alpha with the frame's
   grey levels as guide, confined to a band around the cleaned mask's edge (solid inside, zero outside).
"""

from __future__ import annotations

import cv2
import numpy as np

from vhap.preprocess.matting.base import Matter, to_u8


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter; ``guide``/``src`` float32 (H,W) in [0,1]."""
    k = (2 * radius + 1, 2 * radius + 1)
    mean = lambda x: cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)
    mI, mp = mean(guide), mean(src)
    cov = mean(guide * src) - mI * mp
    var = mean(guide * guide) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return mean(a) * guide + mean(b)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions of a uint8 {0,1} mask that do not touch the image border."""
    h, w = mask.shape
    padded = np.pad(mask, 1)
    flood = padded.copy()
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return (mask | holes).astype(np.uint8)


def largest_components(mask: np.ndarray, min_fraction: float = 0.2) -> np.ndarray:
    """Keep the largest connected component and any other at least ``min_fraction`` of its area.

    (A raised hand or a shoulder cut off by the collar stays; specks and plate changes go.)
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= min_fraction * areas.max())
    return np.isin(labels, keep).astype(np.uint8)


class PlateMatting(Matter):
    name = "background"
    needs_background = True

    def __init__(
        self,
        low: float = 6.0,
        high: float = 16.0,
        lightness_weight: float = 0.4,
        blur_sigma: float = 1.0,
        refine_radius: int | None = None,
        refine_eps: float = 1e-3,
    ):
        self.low, self.high, self.lw = low, high, lightness_weight
        self.blur_sigma = blur_sigma
        self.refine_radius = refine_radius
        self.refine_eps = refine_eps

    def _lab(self, rgb: np.ndarray) -> np.ndarray:
        img = rgb.astype(np.float32) / 255.0
        if self.blur_sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.blur_sigma)
        return cv2.cvtColor(img, cv2.COLOR_RGB2Lab)

    def distance(self, rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
        d = self._lab(rgb) - self._lab(background)
        d[..., 0] *= self.lw
        return np.sqrt((d * d).sum(-1))

    def __call__(self, rgb: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
        if background is None:
            raise ValueError("plate matting needs a background plate")
        h, w = rgb.shape[:2]
        dist = self.distance(rgb, background)
        b = max(2, min(h, w) // 20)  # border strip: mostly background in head captures
        border = np.concatenate([dist[:b].ravel(), dist[-b:].ravel(), dist[:, :b].ravel(), dist[:, -b:].ravel()])
        med = float(np.median(border))
        noise = med + 3 * 1.4826 * float(np.median(np.abs(border - med)))
        low = max(self.low, noise)
        high = max(self.high, low + 4.0)
        t = np.clip((dist - low) / (high - low), 0, 1)
        soft = t * t * (3 - 2 * t)  # smoothstep

        size = max(h, w)
        k = max(3, (size // 150) | 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        hard = (soft > 0.5).astype(np.uint8)
        hard = cv2.morphologyEx(hard, cv2.MORPH_OPEN, kernel)
        hard = cv2.morphologyEx(hard, cv2.MORPH_CLOSE, kernel, iterations=2)
        hard = fill_holes(largest_components(hard))
        if not hard.any():
            return np.zeros((h, w), np.uint8)

        band = max(2, size // 100)
        bk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        inner = cv2.erode(hard, bk).astype(bool)
        outer = cv2.dilate(hard, bk).astype(bool)
        guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        seed = np.where(inner, 1.0, np.where(outer, np.maximum(soft, 0.5 * hard), 0.0)).astype(np.float32)
        r = self.refine_radius or max(2, size // 200)
        refined = np.clip(guided_filter(guide, seed, r, self.refine_eps), 0, 1)
        alpha = np.where(inner, 1.0, np.where(outer, refined, 0.0))
        return to_u8(alpha)
