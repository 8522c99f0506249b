"""Inspection images: a few frames with their landmarks drawn (68 iBUG in colour by part, 478 in grey)."""

from __future__ import annotations

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


def draw_landmarks(rgb: np.ndarray, ibug68: np.ndarray | None, mp478: np.ndarray | None, min_height: int = 360):
    """Upscale small frames to ``min_height`` and draw points (pixel coordinates of ``rgb``)."""
    s = max(1, int(np.ceil(min_height / rgb.shape[0])))
    img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC) if s > 1 else rgb.copy()
    img = np.ascontiguousarray(img)
    if mp478 is not None:
        for x, y in mp478[:, :2] * s:
            cv2.circle(img, (int(x), int(y)), 1, (160, 160, 160), -1, cv2.LINE_AA)
    if ibug68 is not None:
        for idx, colour in _GROUP_COLOURS:
            pts = ibug68[list(idx)] * s
            for x, y in pts:
                cv2.circle(img, (int(x), int(y)), max(2, s), colour, -1, cv2.LINE_AA)
        for i, (x, y) in enumerate(ibug68 * s):
            if s >= 2:
                cv2.putText(img, str(i), (int(x) + 3, int(y) - 3), cv2.FONT_HERSHEY_PLAIN, 0.6, (255, 255, 255), 1)
    return img


def write_overlay(path: Path, tiles: list[np.ndarray]) -> None:
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0))) for t in tiles]
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR))
