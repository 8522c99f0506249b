"""MediaPipe FaceMesh (478 points) → iBUG 300-W 68-point index map.

Written from the FaceMesh topology (the contours exposed as ``FACEMESH_FACE_OVAL``, ``_LIPS``,
``_LEFT_EYE``/``_RIGHT_EYE`` and ``_LEFT_EYEBROW``/``_RIGHT_EYEBROW`` in ``mediapipe.solutions.face_mesh``).
"Right"/"left" below are the subject's; iBUG numbers its points from the image-left side (the
subject's right) for a frontal face.

Choices:

- Jaw 0–16: iBUG's jaw runs ear → chin → ear at about eye height; FaceMesh's face oval also covers the
  forehead. We use the 21 oval vertices from 234 (subject's right, at eye height) through the chin (152)
  to 454 and keep 17 of them, dropping the same two vertices on each side (150/379 and 176/400, mirror
  pairs) so the map stays left/right symmetric; 8 = chin 152. Of the symmetric ways to drop two pairs,
  this one stays close to dlib's jaw and keeps the jaw-angle vertices 136/365.
- Brows 17–26: the upper brow contour (outer → inner on the right, inner → outer on the left). iBUG's
  brow points sit on the upper edge for most annotators.
- Nose bridge 27–30: midline vertices 168 (between the eyes), 197, 5, 4 (tip).
- Nose base 31–35: alar base 240/460 (mirror pair; 98/327 sit higher on the wing, further from dlib's
  31/35), nostril 97/326, subnasale 2.
- Eyes 36–47: corners are FaceMesh's lid-contour corners (33/133 right, 362/263 left); the two upper and
  two lower iBUG points are the lid vertices nearest one third and two thirds of the way along each lid.
- Outer lips 48–59: corners 61/291, upper lip 40, 37, 0, 267, 270, lower lip 321, 314, 17, 84, 91.
- Inner lips 60–67: corners 78/308, upper 81, 13, 311, lower 402, 14, 178.

Checked against dlib's 68-point predictor on the carphone clip
(``tests/test_preprocess_backends.py::test_dlib68_agrees_with_mediapipe_68_map``; the measured distances are in
``docs/dev/notes/mp68_mapping.md``). The jaw differs most because FaceMesh's oval is a fixed set of mesh vertices
while dlib's jaw is the 2D silhouette, which slides over the face as the head turns.
"""

from __future__ import annotations

import numpy as np

JAW = [234, 93, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 323, 454]
RIGHT_BROW = [70, 63, 105, 66, 107]
LEFT_BROW = [336, 296, 334, 293, 300]
NOSE_BRIDGE = [168, 197, 5, 4]
NOSE_BASE = [240, 97, 2, 326, 460]
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
