"""The "mask below the neck line" of an export (VHAP_SPEC §6.3 step 3).

Three head-model points are projected into every image: the left and right side of the neck
(regions ``neck_left_point``, ``neck_right_point``) and the front centre of the bottom boundary
(``front_middle_bottom_point_boundary``). The cut line passes through the bottom point with the slope of
the left→right neck segment (image coordinates, y down); pixels strictly above it are kept. The keep mask
is softened with a Gaussian of kernel size ``K = 2*floor(floor(0.03*W)/2) + 1`` and sigma ``K`` (mirror
border), then multiplies the foreground mask, and the image is re-composited over the background.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

#: region names (resolved through the head model, so FLAME and the open model both work)
NECK_LINE_REGIONS = ("neck_left_point", "neck_right_point", "front_middle_bottom_point_boundary")


def blur_kernel_size(width: int) -> int:
    """Odd kernel size of about 3 % of the image width (VHAP: ``2*floor(floor(0.03*W)/2) + 1``)."""
    return 2 * (int(0.03 * width) // 2) + 1


def gaussian_blur(mask: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) float image with a ``ksize``-tap kernel, mirrored borders
    (the reflect-101 border of OpenCV's ``GaussianBlur``)."""
    if ksize <= 1:
        return mask.astype(np.float32)
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    kernel = np.exp(-(x**2) / (2.0 * sigma**2))
    kernel /= kernel.sum()
    out = correlate1d(mask.astype(np.float64), kernel, axis=0, mode="mirror")
    out = correlate1d(out, kernel, axis=1, mode="mirror")
    return out.astype(np.float32)


def neck_line_keep_mask(
    p_left: np.ndarray, p_right: np.ndarray, p_bottom: np.ndarray, image_size: tuple[int, int], blur: bool = True
) -> np.ndarray:
    """(H, W) float32 in [0, 1]: 1 above the neck cut line, 0 below (softened when ``blur``).

    Points are (2,) continuous pixel coordinates (x right, y down, top-left corner = (0, 0)); the test is
    made at pixel centres (j + 0.5, i + 0.5).
    """
    H, W = image_size
    dx = float(p_right[0] - p_left[0])
    dy = float(p_right[1] - p_left[1])
    slope = dy / dx if abs(dx) > 1e-6 else 0.0  # a vertical neck segment (profile view): cut horizontally
    intercept = float(p_bottom[1]) - slope * float(p_bottom[0])
    xs = np.arange(W, dtype=np.float64) + 0.5
    ys = np.arange(H, dtype=np.float64) + 0.5
    keep = (slope * xs[None, :] + intercept - ys[:, None]) > 0
    mask = keep.astype(np.float32)
    if blur:
        k = blur_kernel_size(W)
        mask = gaussian_blur(mask, k, float(k))
    return mask
