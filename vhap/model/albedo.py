"""Albedo: a fixed base texture (painted / generated) plus a learnable residual (VHAP_SPEC §2.7)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class Albedo(nn.Module):
    """albedo = base + tex_extra (``residual=True``) or tex_extra alone (``residual=False``); not clamped.

    ``base_texture`` is (3,Ht,Wt) or (Ht,Wt,3) in [0,1], row 0 = top (uv v = 1). It is resized to
    ``resolution``² with nearest-neighbour sampling only if its size differs (VHAP's behaviour).
    ``tex_extra`` (3, R, R) starts at zero. ``forward()`` returns (1, 3, R, R).
    """

    def __init__(self, base_texture, resolution: int = 2048, residual: bool = True, learnable: bool = True):
        super().__init__()
        base = torch.as_tensor(np.asarray(base_texture) if not torch.is_tensor(base_texture) else base_texture)
        base = base.to(torch.float32)
        if base.dim() == 3 and base.shape[0] != 3 and base.shape[-1] == 3:
            base = base.permute(2, 0, 1)
        if base.dim() != 3 or base.shape[0] != 3:
            raise ValueError(f"base_texture must be (3,H,W) or (H,W,3), got {tuple(base.shape)}")
        if tuple(base.shape[1:]) != (resolution, resolution):
            base = F.interpolate(base[None], size=(resolution, resolution), mode="nearest")[0]
        self.resolution = int(resolution)
        self.residual = residual
        self.register_buffer("base", base.contiguous())
        extra = torch.zeros(3, resolution, resolution)
        if learnable:
            self.tex_extra = nn.Parameter(extra)
        else:
            self.register_buffer("tex_extra", extra)

    def forward(self) -> torch.Tensor:
        tex = self.base + self.tex_extra if self.residual else self.tex_extra
        return tex[None]
