"""MediaPipe selfie segmentation (weights in the mediapipe wheel; Apache-2.0). The default matter.

Fast (a few ms per frame) but a segmenter, not a matter: the mask is soft only at the edge and may
include the seat/headrest next to the head. Use ``rvm`` or ``background`` when quality matters.
"""

from __future__ import annotations

import numpy as np

from vhap.preprocess.landmarks.mediapipe_mesh import import_mediapipe
from vhap.preprocess.matting.base import Matter, to_u8


class MediaPipeSelfie(Matter):
    name = "mediapipe"

    def __init__(self, model_selection: int = 0):
        self._mp = import_mediapipe()
        self._model_selection = model_selection
        self._seg = None
        self.reset()

    def reset(self) -> None:
        self.close()
        self._seg = self._mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self._model_selection)

    def __call__(self, rgb: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
        res = self._seg.process(np.ascontiguousarray(rgb))
        if res.segmentation_mask is None:
            return np.zeros(rgb.shape[:2], np.uint8)
        return to_u8(res.segmentation_mask)

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None
