"""The matting interface: one camera's frames in time order → 8-bit alpha per frame."""

from __future__ import annotations

import numpy as np


class Matter:
    """``__call__(rgb (H,W,3) uint8, background (H,W,3) uint8 | None) -> alpha (H,W) uint8``."""

    name = "base"
    needs_background = False

    def reset(self) -> None:
        """Forget temporal state (called before each camera)."""

    def __call__(self, rgb: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


def to_u8(alpha: np.ndarray) -> np.ndarray:
    """Float alpha in [0,1] → uint8 (rounded)."""
    return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
