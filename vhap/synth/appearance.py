"""Appearance of synthetic subjects: an albedo unlike the tracker's start, SH lights and backgrounds.

The tracker starts from the model's base texture and uniform light (VHAP_SPEC §2.5/§2.7); the ground truth
therefore uses a recoloured base texture (global tint, smooth low-frequency colour shifts, fine detail) and a
non-trivial second-order SH light, so that texture and lighting must actually be estimated.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def smooth_noise(rng: np.random.Generator, channels: int, size: tuple[int, int], cells: int) -> np.ndarray:
    """(channels, H, W) noise in about [−1, 1]: a random ``cells``×``cells`` grid upsampled bicubically."""
    grid = torch.from_numpy(rng.uniform(-1, 1, size=(1, channels, cells, cells)).astype(np.float32))
    up = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)
    return up[0].numpy()


def synthetic_albedo(
    base_texture: np.ndarray,
    rng: np.random.Generator,
    *,
    resolution: int = 512,
    tint: float = 0.08,
    low_freq: float = 0.08,
    detail: float = 0.04,
) -> np.ndarray:
    """(3, R, R) float32 albedo in [0, 1] (row 0 = top, uv v = 1) derived from ``base_texture`` (3, Ht, Wt).

    albedo = clip(base · gain + tint + low-frequency colour field + detail), gain ∈ [0.85, 1.1].
    """
    base = torch.as_tensor(np.asarray(base_texture, np.float32))[None]
    base = F.interpolate(base, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)[0]
    base = base.numpy()
    gain = rng.uniform(0.85, 1.1)
    shift = rng.uniform(-tint, tint, size=(3, 1, 1))
    field = smooth_noise(rng, 3, (resolution, resolution), 6) * low_freq
    fine = smooth_noise(rng, 1, (resolution, resolution), max(8, resolution // 4)) * detail
    return np.clip(base * gain + shift + field + fine, 0.0, 1.0).astype(np.float32)


def random_sh_lights(rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """(9, 3) float32 SH coefficients in VHAP's convention (row 0 = √(4π) gives uniform shading 1).

    Band 0 in [0.85, 1.05]·√(4π) with a slight colour cast; band 1 (a directional key light) and band 2
    (softer variation) random, scaled by ``strength``.
    """
    sh = np.zeros((9, 3))
    sh[0] = math.sqrt(4 * math.pi) * rng.uniform(0.85, 1.05) * (1.0 + rng.uniform(-0.06, 0.06, size=3))
    direction = rng.normal(size=3)
    direction[2] = abs(direction[2]) + 0.5  # keep the key light roughly in front of the face
    direction /= np.linalg.norm(direction)
    # SH band-1 basis order is (x, y, z) in VHAP's convention
    sh[1:4] = (direction * rng.uniform(0.25, 0.45) * strength)[:, None] * (1.0 + rng.uniform(-0.05, 0.05, size=3))
    sh[4:9] = rng.uniform(-0.08, 0.08, size=(5, 3)) * strength
    return sh.astype(np.float32)


def background_image(rng: np.random.Generator, size: tuple[int, int], kind: str = "textured") -> np.ndarray:
    """(H, W, 3) float32 background in [0, 1]: ``uniform`` (one random colour), ``textured`` (smooth colour
    gradients plus fine grain), ``white`` or ``black``."""
    H, W = size
    if kind == "white":
        return np.ones((H, W, 3), np.float32)
    if kind == "black":
        return np.zeros((H, W, 3), np.float32)
    colour = rng.uniform(0.2, 0.8, size=3)
    if kind == "uniform":
        return np.broadcast_to(colour, (H, W, 3)).astype(np.float32).copy()
    if kind != "textured":
        from vhap.errors import VhapError

        raise VhapError(f"unknown background kind {kind!r}", fix="use textured | uniform | white | black")
    field = smooth_noise(rng, 3, (H, W), 4) * 0.2
    grain = smooth_noise(rng, 1, (H, W), max(4, min(H, W) // 6)) * 0.06
    img = colour[:, None, None] + field + grain
    return np.clip(img.transpose(1, 2, 0), 0, 1).astype(np.float32)
