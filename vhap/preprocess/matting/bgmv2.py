"""Adapter for a user-supplied BackgroundMattingV2 model (TorchScript export). Never downloads.

BackgroundMattingV2 (Lin et al. 2021, MIT) publishes TorchScript exports (e.g.
``torchscript_resnet101_fp32.pth``); pass one with ``--bgmv2-model PATH``. The model is called as
``model(src, bgr)`` with (1,3,H,W) float tensors in [0,1] and returns a tuple whose first item is the
alpha (1,1,H,W). VHAP's settings are applied when the export exposes them as attributes: backbone
scale 0.25, refine mode ``thresholding``, threshold 0.01, kernel size 3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vhap.errors import VhapError
from vhap.preprocess.matting.base import Matter, to_u8

SETTINGS = {"backbone_scale": 0.25, "refine_mode": "thresholding", "refine_threshold": 0.01, "refine_kernel_size": 3}


class BackgroundMattingV2(Matter):
    name = "bgmv2"
    needs_background = True

    def __init__(self, model_path: str | Path | None, device: str = "auto"):
        import torch

        fix = (
            "download a BackgroundMattingV2 TorchScript export yourself (e.g. torchscript_resnet101_fp32.pth) "
            "and pass --bgmv2-model PATH; or use --method background (no weights needed)"
        )
        if model_path is None or not str(model_path):
            raise VhapError("the bgmv2 matting method needs a model file", fix=fix)
        model_path = Path(model_path)
        if not model_path.is_file():
            raise VhapError("BackgroundMattingV2 model not found", path=model_path, fix=fix)
        self._device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self._model = torch.jit.load(str(model_path), map_location=self._device).eval()
        except Exception as e:  # noqa: BLE001
            raise VhapError(
                f"cannot load as TorchScript: {e}",
                path=model_path,
                fix="pass a TorchScript export (the repository's torchscript_*.pth), not a state-dict checkpoint",
            ) from e
        for k, v in SETTINGS.items():
            try:
                setattr(self._model, k, v)
            except Exception:  # noqa: BLE001 - exports without these attributes use their own defaults
                pass

    def __call__(self, rgb: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
        import torch

        if background is None:
            raise ValueError("bgmv2 needs a background plate")

        def t(x):
            return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float().div(255).to(self._device)

        with torch.no_grad():
            out = self._model(t(rgb), t(background))
        pha = out[0] if isinstance(out, (tuple, list)) else out
        return to_u8(pha[0, 0].float().cpu().numpy())
