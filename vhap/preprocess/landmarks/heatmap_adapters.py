"""Adapters for user-supplied STAR and FAN (face-alignment) weights. They never download anything.

Both networks take a square face crop and return 68 points, either as heatmaps ``(1,68,h,w)`` or as
coordinates ``(1,68,2)`` normalised to [-1, 1] over the crop. The weights must be a **TorchScript**
file (``torch.jit.save``/``torch.jit.trace`` of the network), so no third-party model code is needed:

- ``face-alignment``: face_alignment ≥ 1.3 distributes its 2D-FAN as TorchScript archives
  (``2DFAN4-*.zip``); pass that file. Input RGB in [0,1], 256×256; crop centre = box centre shifted up
  by 0.12·h, side = 200·(w+h)/195 (FAN's convention).
- ``star``: export STAR's 300-W model (``300W_STARLoss_NME_2_87.pkl``) with ``torch.jit.trace`` on a
  (1,3,256,256) input; input RGB normalised to [-1,1]; crop centre = box centre, side =
  200·1.05·min(w,h)/200 = 1.05·min(w,h) (VHAP's crop).

The face box comes from MediaPipe's face detector (no dlib/SFD detector is needed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.landmarks.base import Detection, LandmarkDetector
from vhap.preprocess.landmarks.mediapipe_mesh import MediaPipeFaceBox
from vhap.utils.torchscript import load_torchscript as _load_torchscript

CROP_SIZE = 256


def crop_params(box: np.ndarray, method: str) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop for ``method`` from a face box (x1,y1,x2,y2)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if method == "face-alignment":
        return (x1 + x2) / 2, (y1 + y2) / 2 - 0.12 * h, (w + h) / 195 * 200
    return (x1 + x2) / 2, (y1 + y2) / 2, 1.05 * min(w, h)


def crop_matrix(cx: float, cy: float, side: float, size: int = CROP_SIZE) -> np.ndarray:
    """2×3 affine mapping continuous image coordinates to continuous crop coordinates."""
    s = size / side
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float64)


def heatmap_argmax(hm: np.ndarray) -> np.ndarray:
    """(68,h,w) heatmaps → (68,2) continuous coordinates in heatmap pixels (peak + quarter-pixel shift)."""
    n, h, w = hm.shape
    flat = hm.reshape(n, -1).argmax(1)
    ys, xs = np.divmod(flat, w)
    out = np.stack([xs, ys], 1).astype(np.float64)
    for i in range(n):  # shift a quarter pixel towards the higher neighbour (FAN's sub-pixel rule)
        x, y = xs[i], ys[i]
        if 0 < x < w - 1:
            out[i, 0] += 0.25 * np.sign(hm[i, y, x + 1] - hm[i, y, x - 1])
        if 0 < y < h - 1:
            out[i, 1] += 0.25 * np.sign(hm[i, y + 1, x] - hm[i, y - 1, x])
    return out + 0.5


def load_torchscript(path: str | Path | None, method: str):
    return _load_torchscript(
        path,
        what=f"the {method} detector",
        missing_fix=f"pass --weights PATH to a TorchScript export of the {method} network (see "
        "vhap/preprocess/landmarks/heatmap_adapters.py); nothing is downloaded",
        export_fix="export the model with torch.jit.trace(model, torch.zeros(1,3,256,256)).save(path)",
    )


class CropHeatmapDetector(LandmarkDetector):
    """MediaPipe face box → square crop → user's TorchScript network → 68 points in the image."""

    def __init__(self, method: str, weights: str | Path | None):
        if method not in ("star", "face-alignment"):
            raise VhapError(f"unknown crop detector '{method}'")
        self.name = method
        self.method = method
        self._net = load_torchscript(weights, method)
        self._boxes = MediaPipeFaceBox()

    def run_network(self, crop: np.ndarray) -> np.ndarray:
        """(256,256,3) uint8 crop → (68,2) points in continuous crop pixels."""
        import torch

        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
        if self.method == "star":
            x = x * 2 - 1
        with torch.no_grad():
            out = self._net(x)
        while isinstance(out, (list, tuple)):
            out = out[-1]
        out = out.detach().float().cpu().numpy()[0]
        if out.shape == (68, 2):
            return (out + 1) / 2 * CROP_SIZE
        if out.ndim == 3 and out.shape[0] == 68:
            return heatmap_argmax(out) * (CROP_SIZE / out.shape[-1])
        raise VhapError(f"{self.method} network returned shape {tuple(out.shape)}; expected (68,2) or (68,h,w)")

    def __call__(self, rgb: np.ndarray) -> Detection:
        found = self._boxes(rgb)
        if found is None:
            return Detection(None)
        box, score = found
        A = crop_matrix(*crop_params(box, self.method))
        # warpAffine samples at pixel centres: shift by 0.5 on both sides to keep continuous coordinates
        T = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]]) @ np.vstack([A, [0, 0, 1]])
        T = T @ np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        crop = cv2.warpAffine(rgb, T[:2], (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
        pts = self.run_network(crop)
        Ainv = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
        img_pts = (np.c_[pts, np.ones(68)] @ Ainv.T)[:, :2]
        return Detection(img_pts.astype(np.float32), box, score)

    def close(self) -> None:
        self._boxes.close()
