"""Inspection images at a readable size: frames with their landmarks drawn (68 iBUG in colour by part, 478 in
grey), and the panels of the tracker's overlays (error colour map, mesh edges, titles).

Small inputs (the 176×144 carphone clip) are upscaled by an integer factor so that the longest side is at least
512 pixels: points, numbers and mesh edges are readable and stay on the pixel grid of the input.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from vhap.utils.atomic import atomic_path

_GROUP_COLOURS = [  # (index range, RGB)
    (range(0, 17), (255, 220, 0)),
    (range(17, 27), (255, 80, 0)),
    (range(27, 36), (0, 200, 255)),
    (range(36, 48), (0, 255, 0)),
    (range(48, 68), (255, 0, 200)),
]
MIN_SIZE = 512


def upscale_factor(h: int, w: int, min_size: int = MIN_SIZE) -> int:
    """Smallest integer factor that brings the longest side of an (h, w) image to ``min_size`` or more."""
    return max(1, math.ceil(min_size / max(h, w)))


def draw_landmarks(rgb: np.ndarray, ibug68: np.ndarray | None, mp478: np.ndarray | None, min_size: int = MIN_SIZE):
    """Upscale ``rgb`` (H,W,3) to a longest side ≥ ``min_size`` and draw points given in pixels of ``rgb``."""
    s = upscale_factor(*rgb.shape[:2], min_size)
    img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC) if s > 1 else rgb.copy()
    img = np.ascontiguousarray(img)
    unit = max(img.shape[:2]) / 512  # marks scale with the picture, not with the input
    if mp478 is not None:
        for x, y in mp478[:, :2] * s:
            cv2.circle(img, (int(x), int(y)), max(1, round(unit)), (160, 160, 160), -1, cv2.LINE_AA)
    if ibug68 is not None:
        r = max(2, round(2.5 * unit))
        for idx, colour in _GROUP_COLOURS:
            for x, y in ibug68[list(idx)] * s:
                cv2.circle(img, (int(x), int(y)), r, colour, -1, cv2.LINE_AA)
        for i, (x, y) in enumerate(ibug68 * s):
            cv2.putText(img, str(i), (int(x) + r + 1, int(y) - r), cv2.FONT_HERSHEY_PLAIN, 0.8 * unit,
                        (255, 255, 255), max(1, round(unit)), cv2.LINE_AA)  # fmt: skip
    return img


def write_overlay(path: Path, tiles: list[np.ndarray]) -> None:
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0))) for t in tiles]
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR))


def wire_edges(tri_id: np.ndarray) -> np.ndarray:
    """(H,W) bool: pixels where the visible triangle changes to the right or below (mesh edges, silhouette)."""
    e = np.zeros(tri_id.shape, bool)
    e[:, :-1] |= tri_id[:, :-1] != tri_id[:, 1:]
    e[:-1] |= tri_id[:-1] != tri_id[1:]
    return e


def error_panel(err: np.ndarray, mask: np.ndarray, vmax: float = 0.25) -> np.ndarray:
    """(H,W) absolute error → (H,W,3) uint8 colour map (inferno, 0…``vmax``) where ``mask``, dark grey elsewhere."""
    v = np.clip(err / vmax, 0, 1)
    colour = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    out = np.full(err.shape + (3,), 48, np.uint8)
    out[mask] = colour[mask]
    return np.ascontiguousarray(out)


def panel_title(img: np.ndarray, text: str) -> None:
    """Write ``text`` in the top-left corner of ``img`` (uint8 RGB, in place) on a dark band."""
    scale = max(img.shape[:2]) / 1100
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    img[: th + base + 8, : min(img.shape[1], tw + 10)] //= 3
    cv2.putText(img, text, (5, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
