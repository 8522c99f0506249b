"""The detector interface shared by all landmark backends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    """One frame's result in pixel coordinates (continuous, top-left origin).

    ``ibug68`` (68,2) or None when no face; ``mediapipe478`` (478,3) (x, y, z-in-pixels) or None;
    ``box`` (4,) x1,y1,x2,y2; ``score`` detector confidence.
    """

    ibug68: np.ndarray | None
    box: np.ndarray | None = None
    score: float = 0.0
    mediapipe478: np.ndarray | None = None


class LandmarkDetector:
    """Processes the frames of one camera in time order; ``reset()`` before another camera."""

    name = "base"
    gives_mediapipe = False

    def reset(self) -> None:  # pragma: no cover - trivial default
        pass

    def __call__(self, rgb: np.ndarray) -> Detection:
        raise NotImplementedError

    def close(self) -> None:
        pass
