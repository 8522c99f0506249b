"""MediaPipe FaceMesh (478 points) → iBUG 300-W 68-point index map.

Written from the FaceMesh topology (the contours exposed as ``FACEMESH_FACE_OVAL``, ``_LIPS``,
``_LEFT_EYE``/``_RIGHT_EYE`` and ``_LEFT_EYEBROW``/``_RIGHT_EYEBROW`` in ``mediapipe.solutions.face_mesh``).
"Right"/"left" below are the subject's; iBUG numbers its points from the image-left side (the
subject's right) for a frontal face.

Choices:

- Jaw 0–16: iBUG's jaw runs ear → chin → ear at about eye height; FaceMesh's face oval also covers the
  forehead. We use the 21 oval vertices from 234 (subject's right, at eye height) through the chin (152)
  to 454, and keep 17 of them so that spacing along the contour is as even as possible (dropping two
  vertices per side near the lower jaw where the oval is densest); 8 = chin 152.
- Brows 17–26: the upper brow contour (outer → inner on the right, inner → outer on the left). iBUG's
  brow points sit on the upper edge for most annotators.
- Nose bridge 27–30: midline vertices 168 (between the eyes), 197, 5, 4 (tip).
- Nose base 31–35: alar base and subnasale, 98, 97, 2, 326, 327.
- Eyes 36–47: corners are FaceMesh's lid-contour corners (33/133 right, 362/263 left); the two upper and
  two lower iBUG points are the lid vertices nearest one third and two thirds of the way along each lid.
- Outer lips 48–59: corners 61/291, upper lip 40, 37, 0, 267, 270, lower lip 321, 314, 17, 84, 91.
- Inner lips 60–67: corners 78/308, upper 81, 13, 311, lower 402, 14, 178.

Checked on the carphone clip by an overlay (``vhap landmarks`` writes one) and against dlib's 68-point
predictor (``tests/test_preprocess_landmarks.py`` bounds the mean distance per group).
"""

from __future__ import annotations

import numpy as np

JAW = [234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454]
RIGHT_BROW = [70, 63, 105, 66, 107]
LEFT_BROW = [336, 296, 334, 293, 300]
NOSE_BRIDGE = [168, 197, 5, 4]
NOSE_BASE = [98, 97, 2, 326, 327]
RIGHT_EYE = [33, 160, 158, 133, 153, 144]
LEFT_EYE = [362, 385, 387, 263, 373, 380]
OUTER_LIPS = [61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91]
INNER_LIPS = [78, 81, 13, 311, 308, 402, 14, 178]

MEDIAPIPE_TO_IBUG68 = np.array(
    JAW + RIGHT_BROW + LEFT_BROW + NOSE_BRIDGE + NOSE_BASE + RIGHT_EYE + LEFT_EYE + OUTER_LIPS + INNER_LIPS,
    dtype=np.int64,
)
assert MEDIAPIPE_TO_IBUG68.shape == (68,)

#: iBUG-68 index ranges by part (for tests and visualisation)
IBUG_GROUPS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}


def mediapipe_to_ibug68(points: np.ndarray) -> np.ndarray:
    """(..., 478, D) FaceMesh points → (..., 68, D) iBUG-ordered points."""
    return points[..., MEDIAPIPE_TO_IBUG68, :]
