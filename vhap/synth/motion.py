"""Smooth random parameter trajectories for synthetic ground truth (numpy, deterministic per generator).

A trajectory is a sum of a few sinusoids with random frequency and phase per channel, so it is smooth in
time (no frame-to-frame jumps the tracker's temporal priors would have to fight) but not periodic over a
short sequence. All sequences start at a random point of their motion, not at the rest pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np

from vhap.config.core import POSITIVE


@dataclass
class MotionConfig:
    """Amplitudes of the random motion (radians, metres, expression coefficients)."""

    fps: Annotated[float, POSITIVE] = 25.0
    #: frequency range of the sinusoids in Hz
    min_freq_hz: float = 0.15
    max_freq_hz: float = 0.8
    #: number of sinusoids summed per channel
    num_waves: int = 3
    #: std of the per-sequence identity coefficients (first ``shape_active`` components, decaying with index)
    shape_std: float = 1.0
    shape_active: int = 50
    #: amplitude of the expression coefficients (first ``expr_active`` components, decaying with index)
    expr_amplitude: float = 1.0
    expr_active: int = 20
    #: head rotation amplitude (rad) about x (pitch), y (yaw), z (roll)
    rotation_amplitude: tuple[float, float, float] = (0.15, 0.4, 0.08)
    #: head translation amplitude (m)
    translation_amplitude: tuple[float, float, float] = (0.015, 0.015, 0.02)
    neck_amplitude: tuple[float, float, float] = (0.1, 0.12, 0.05)
    #: jaw opening range (rad, x axis; +x opens) and side motion amplitude (y, z)
    jaw_open_max: float = 0.3
    jaw_side_amplitude: float = 0.02
    #: gaze amplitude (rad) about x and y, shared by both eyes
    eyes_amplitude: tuple[float, float] = (0.15, 0.25)


def smooth_signal(rng: np.random.Generator, num_frames: int, channels: int, cfg: MotionConfig) -> np.ndarray:
    """(T, channels) smooth signal with values roughly in [−1, 1] (sum of random sinusoids)."""
    t = np.arange(num_frames, dtype=np.float64) / cfg.fps
    out = np.zeros((num_frames, channels))
    for _ in range(cfg.num_waves):
        freq = rng.uniform(cfg.min_freq_hz, cfg.max_freq_hz, size=channels)
        phase = rng.uniform(0, 2 * np.pi, size=channels)
        amp = rng.uniform(0.5, 1.0, size=channels)
        out += amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
    return out / cfg.num_waves * 1.5


def random_parameters(
    rng: np.random.Generator, num_frames: int, n_shape: int, n_expr: int, cfg: MotionConfig
) -> dict[str, np.ndarray]:
    """Ground-truth head parameters in the tracker's key layout (VHAP_SPEC §2.5), float32.

    Returns shape (n_shape,), expr (T, n_expr), rotation / neck_pose / jaw_pose / translation (T, 3),
    eyes_pose (T, 6). Translation is the head's offset in the FLAME world (the rig places the cameras).
    """
    T = num_frames
    shape = np.zeros(n_shape)
    k = min(cfg.shape_active, n_shape)
    shape[:k] = rng.normal(0, cfg.shape_std, size=k) / (1.0 + np.arange(k) / 10.0)

    expr = np.zeros((T, n_expr))
    k = min(cfg.expr_active, n_expr)
    decay = 1.0 / (1.0 + np.arange(k) / 5.0)
    expr[:, :k] = smooth_signal(rng, T, k, cfg) * cfg.expr_amplitude * decay * 2.0

    rotation = smooth_signal(rng, T, 3, cfg) * np.asarray(cfg.rotation_amplitude)
    translation = smooth_signal(rng, T, 3, cfg) * np.asarray(cfg.translation_amplitude)
    neck = smooth_signal(rng, T, 3, cfg) * np.asarray(cfg.neck_amplitude)

    jaw = np.zeros((T, 3))
    # opening in [0, jaw_open_max]: squash a smooth signal through a soft positive map
    jaw[:, 0] = cfg.jaw_open_max * 0.5 * (1.0 + np.clip(smooth_signal(rng, T, 1, cfg)[:, 0], -1, 1))
    jaw[:, 1:] = smooth_signal(rng, T, 2, cfg) * cfg.jaw_side_amplitude

    gaze = smooth_signal(rng, T, 2, cfg) * np.asarray(cfg.eyes_amplitude)
    eyes = np.zeros((T, 6))
    eyes[:, 0:2] = gaze
    eyes[:, 3:5] = gaze  # both eyes look the same way (no vergence)

    f32 = np.float32
    return {
        "shape": shape.astype(f32),
        "expr": expr.astype(f32),
        "rotation": rotation.astype(f32),
        "neck_pose": neck.astype(f32),
        "jaw_pose": jaw.astype(f32),
        "eyes_pose": eyes.astype(f32),
        "translation": translation.astype(f32),
    }
