"""dlib's 68-point shape predictor, initialised from the MediaPipe face box.

Weights: ``shape_predictor_68_face_landmarks.dat`` from the ``face-recognition-models`` package (with
``dlib-bin``). **Licence: the model was trained on iBUG 300-W, whose terms exclude commercial use** —
use it for research only; the default MediaPipe detector has no such restriction.

dlib's own HOG detector misses rolled/upturned faces; instead the MediaPipe short-range face box is
mapped to the rectangle dlib's predictor expects with a calibration fitted on carphone + astronaut:
centre = MediaPipe centre + (−0.02·w, −0.10·h), side = 1.06·max(w, h). Small frames are upsampled ×2
(the predictor is more stable on faces ≥ ~100 px).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.landmarks.base import Detection, LandmarkDetector
from vhap.preprocess.landmarks.mediapipe_mesh import MediaPipeFaceBox

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def find_dlib_predictor() -> Path:
    """Locate the 68-point model without importing face_recognition_models (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise VhapError(
            "the dlib68 detector needs the face-recognition-models package",
            fix="pip install dlib-bin face-recognition-models (non-commercial licence: iBUG 300-W)",
        )
    path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise VhapError("face-recognition-models is installed but its 68-point model is missing", path=path)
    return path


def mediapipe_box_to_dlib_rect(box: np.ndarray) -> np.ndarray:
    """MediaPipe face-detector box (x1,y1,x2,y2) → square dlib rect (x1,y1,x2,y2) (calibrated)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 - 0.02 * w, (y1 + y2) / 2 - 0.10 * h
    half = 1.06 * max(w, h) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


class Dlib68(LandmarkDetector):
    name = "dlib68"

    def __init__(self, upsample_below: int = 400):
        try:
            import dlib
        except ImportError as e:
            raise VhapError("the dlib68 detector needs dlib", fix="pip install dlib-bin face-recognition-models") from e
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(find_dlib_predictor()))
        self._boxes = MediaPipeFaceBox()
        self._upsample_below = upsample_below

    def __call__(self, rgb: np.ndarray) -> Detection:
        found = self._boxes(rgb)
        if found is None:
            return Detection(None)
        box, score = found
        s = 2 if max(rgb.shape[:2]) < self._upsample_below else 1
        img = rgb if s == 1 else cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        # dlib works in pixel-centre integer coordinates; ours are continuous (centre = +0.5)
        r = mediapipe_box_to_dlib_rect(box) * s - 0.5
        rect = self._dlib.rectangle(*(int(round(v)) for v in r))
        shape = self._predictor(np.ascontiguousarray(img), rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        pts = (pts + 0.5) / s
        return Detection(pts, box, score)

    def close(self) -> None:
        self._boxes.close()
