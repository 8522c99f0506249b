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

from vhap.preprocess.matting.base import Matter, to_u8
from vhap.utils.torchscript import load_torchscript

SETTINGS = {"backbone_scale": 0.25, "refine_mode": "thresholding", "refine_threshold": 0.01, "refine_kernel_size": 3}


class BackgroundMattingV2(Matter):
    name = "bgmv2"
    needs_background = True

    def __init__(self, model_path: str | Path | None, device: str = "auto"):
        import torch

        self._device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self._model = load_torchscript(
            model_path,
            what="the bgmv2 matting method",
            missing_fix="download a BackgroundMattingV2 TorchScript export yourself (e.g. "
            "torchscript_resnet101_fp32.pth) and pass --bgmv2-model PATH; or use --method background (no weights)",
            export_fix="pass a TorchScript export (the repository's torchscript_*.pth), not a state-dict checkpoint",
            device=self._device,
        )
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
