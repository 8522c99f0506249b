"""Adapters for user-supplied STAR and FAN (face-alignment) weights. They never download anything.

Both networks take a square 256×256 face crop and return 68 points, either as heatmaps ``(1,68,h,w)`` or as
coordinates ``(1,P,2)`` normalised to [-1, 1] over the crop. ``--weights`` may be

- the **published checkpoint** as is: STAR's ``300W_STARLoss_NME_2_87.pkl`` (68 points) or its WFLW model
  (98 points, mapped to iBUG-68 by :data:`~vhap.preprocess.landmarks.star_net.WFLW98_TO_IBUG68`), whose
  ``"net"`` state dict loads into :class:`~vhap.preprocess.landmarks.star_net.STARNet`; face-alignment's
  ``2DFAN4-*.pth.tar`` (``"state_dict"``, ``module.`` prefixes) loads into
  :class:`~vhap.preprocess.landmarks.fan_net.FANNet`. Checkpoints are read with ``weights_only=True`` (no
  pickled code runs);
- or a **TorchScript** file (``torch.jit.save``/``torch.jit.trace`` of the network); face_alignment ≥ 1.3
  distributes its 2D-FAN that way (``2DFAN4-*.zip``).

Inputs: ``face-alignment`` RGB in [0,1]; crop centre = box centre shifted up by 0.12·h, side = 200·(w+h)/195
(FAN's convention). ``star`` BGR (STAR trains on OpenCV's channel order) as ``(v − 127.5)/127.5``; crop centre
= box centre, side = 1.05·min(w,h) (STAR's and VHAP's crop).

The face box comes from MediaPipe's face detector (no dlib/SFD detector is needed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.landmarks.base import Detection, LandmarkDetector
from vhap.preprocess.landmarks.mediapipe_mesh import MediaPipeFaceBox
from vhap.preprocess.landmarks.star_net import WFLW98_TO_IBUG68
from vhap.utils.torchscript import load_torchscript as _load_torchscript

CROP_SIZE = 256


def crop_params(box: np.ndarray, method: str) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop for ``method`` from a face box (x1,y1,x2,y2)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if method == "face-alignment":
        return (x1 + x2) / 2, (y1 + y2) / 2 - 0.12 * h, (w + h) / 195 * 200
    return (x1 + x2) / 2, (y1 + y2) / 2, 1.05 * min(w, h)


def crop_matrix(cx: float, cy: float, side: float, size: int = CROP_SIZE) -> np.ndarray:
    """2×3 affine mapping continuous image coordinates to continuous crop coordinates."""
    s = size / side
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float64)


def heatmap_argmax(hm: np.ndarray) -> np.ndarray:
    """(68,h,w) heatmaps → (68,2) continuous coordinates in heatmap pixels (peak + quarter-pixel shift)."""
    n, h, w = hm.shape
    flat = hm.reshape(n, -1).argmax(1)
    ys, xs = np.divmod(flat, w)
    out = np.stack([xs, ys], 1).astype(np.float64)
    for i in range(n):  # shift a quarter pixel towards the higher neighbour (FAN's sub-pixel rule)
        x, y = xs[i], ys[i]
        if 0 < x < w - 1:
            out[i, 0] += 0.25 * np.sign(hm[i, y, x + 1] - hm[i, y, x - 1])
        if 0 < y < h - 1:
            out[i, 1] += 0.25 * np.sign(hm[i, y + 1, x] - hm[i, y - 1, x])
    return out + 0.5


def load_torchscript(path: str | Path | None, method: str):
    return _load_torchscript(
        path,
        what=f"the {method} detector",
        missing_fix=f"pass --weights PATH to the published {method} checkpoint or a TorchScript export (see "
        "vhap/preprocess/landmarks/heatmap_adapters.py); nothing is downloaded",
        export_fix="export the model with torch.jit.trace(model, torch.zeros(1,3,256,256)).save(path)",
    )


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding ``<name>/code/`` and ``constants.pkl``."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def read_state_dict(path: Path) -> dict:
    """The tensors of a published checkpoint: unwraps ``"net"`` (STAR) / ``"state_dict"`` (FAN) and strips the
    ``module.`` prefix of DataParallel; read with ``weights_only=True``."""
    import collections

    import torch

    # STAR's checkpoints also hold the LR scheduler's state (milestones: a Counter); training scripts often store
    # numpy scalars (best NME) too. These are plain data; anything else is refused by weights_only.
    scalar = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor (its module moved in numpy 2)
    allowed = [collections.Counter, scalar, np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType,
               np.dtypes.Int64DType]  # fmt: skip
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a readable checkpoint"
        raise VhapError(
            f"cannot read as a checkpoint (state dict) or TorchScript file: {str(e).splitlines()[0][:300]}",
            path=path,
            fix="pass the published checkpoint file unchanged, or save one with torch.save({'net': "
            "net.state_dict()}, path)",
        ) from e
    for key in ("net", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise VhapError(f"checkpoint holds a {type(obj).__name__}, not a state dict", path=path)
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_landmark_network(path: str | Path | None, method: str):
    """The network behind ``--weights``: a TorchScript module, or STAR / FAN built here from a published checkpoint."""
    if path is None or not str(path) or is_torchscript(Path(path)) or not Path(path).is_file():
        return load_torchscript(path, method)
    from vhap.preprocess.landmarks.fan_net import FANNet
    from vhap.preprocess.landmarks.star_net import STARNet

    sd = read_state_dict(Path(path))
    kind = "star" if "out_heatmaps.0.conv.weight" in sd else "face-alignment" if "l0.weight" in sd else None
    if kind is None:
        raise VhapError(
            f"the checkpoint is neither STAR's nor 2D-FAN's (keys such as {sorted(sd)[:3]})",
            path=path,
            fix="pass STAR's 300W/WFLW .pkl, face-alignment's 2DFAN4 .pth.tar, or a TorchScript export",
        )
    if kind != method:
        raise VhapError(f"the checkpoint is a {kind} network, not {method}", path=path, fix=f"use --detector {kind}")
    try:
        net = (STARNet if kind == "star" else FANNet).from_state_dict(sd)
    except (KeyError, RuntimeError, ValueError) as e:
        raise VhapError(
            f"checkpoint does not match the published {kind} layout: {str(e).splitlines()[0][:300]}", path=path
        ) from e
    return net.eval()


class CropHeatmapDetector(LandmarkDetector):
    """MediaPipe face box → square crop → user's TorchScript network → 68 points in the image."""

    def __init__(self, method: str, weights: str | Path | None):
        if method not in ("star", "face-alignment"):
            raise VhapError(f"unknown crop detector '{method}'")
        self.name = method
        self.method = method
        self._net = load_landmark_network(weights, method)
        self._boxes = MediaPipeFaceBox()

    def run_network(self, crop: np.ndarray) -> np.ndarray:
        """(256,256,3) uint8 RGB crop → (68,2) points in continuous crop pixels."""
        import torch

        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
        if self.method == "star":
            x = x.flip(1) * 2 - 1  # BGR, (v - 127.5) / 127.5
        with torch.no_grad():
            out = self._net(x)
        while isinstance(out, (list, tuple)):
            out = out[-1]
        out = out.detach().float().cpu().numpy()[0]
        if out.shape == (98, 2):  # WFLW
            out = out[WFLW98_TO_IBUG68]
        if out.shape == (68, 2):
            return (out + 1) / 2 * CROP_SIZE
        if out.ndim == 3 and out.shape[0] == 68:
            return heatmap_argmax(out) * (CROP_SIZE / out.shape[-1])
        raise VhapError(f"{self.method} network returned shape {tuple(out.shape)}; expected (68,2) or (68,h,w)")

    def __call__(self, rgb: np.ndarray) -> Detection:
        found = self._boxes(rgb)
        if found is None:
            return Detection(None)
        box, score = found
        A = crop_matrix(*crop_params(box, self.method))
        # warpAffine samples at pixel centres: shift by 0.5 on both sides to keep continuous coordinates
        T = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]]) @ np.vstack([A, [0, 0, 1]])
        T = T @ np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        crop = cv2.warpAffine(rgb, T[:2], (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
        pts = self.run_network(crop)
        Ainv = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
        img_pts = (np.c_[pts, np.ones(68)] @ Ainv.T)[:, :2]
        return Detection(img_pts.astype(np.float32), box, score)

    def close(self) -> None:
        self._boxes.close()
