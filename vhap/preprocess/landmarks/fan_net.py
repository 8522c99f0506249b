"""face-alignment's 2D-FAN (Bulat & Tzimiropoulos, "How far are we from solving the 2D & 3D face alignment
problem?", ICCV 2017), written here from the paper's description so that the published state-dict checkpoint
(``2DFAN4-*.pth.tar``: ``{"state_dict": {...}}``, keys possibly prefixed ``module.``) loads by its keys.
face_alignment ≥ 1.3 ships the same network as a TorchScript archive, which the adapter loads as is.

- input: 256×256 RGB crop in [0, 1];
- stem: 7×7/2 conv (64, bias) + BN + ReLU, residual 64→128, 2×2 average pooling, residuals 128→128, 128→256;
- ``num_modules`` (4) hourglasses of depth 4 (modules ``b1_<l>``, ``b2_<l>``, ``b3_<l>``, innermost
  ``b2_plus_1``; 2×2 average pooling down, nearest upsampling), each followed by a residual, a 1×1 conv + BN +
  ReLU and a 1×1 heatmap head ``l<i>``; between stacks the features (``bl<i>``) and heatmaps (``al<i>``) are
  projected back and added;
- residual = three 3×3 convs (no bias) of widths out/2, out/4, out/4 on BN-ReLU inputs, concatenated; a
  BN-ReLU-1×1 conv shortcut (``downsample.0`` / ``downsample.2``) when the width changes;
- output: the last stack's heatmaps (B, 68, 64, 64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout // 2, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout // 4, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout // 4)
        self.conv3 = nn.Conv2d(cout // 4, cout // 4, 3, 1, 1, bias=False)
        self.downsample = (
            nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, 1, bias=False))
            if cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        return torch.cat([a, b, c], 1) + (x if self.downsample is None else self.downsample(x))


class _Hourglass(nn.Module):
    def __init__(self, depth: int, ch: int):
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", _Block(ch, ch))
            self.add_module(f"b2_{level}", _Block(ch, ch))
            self.add_module(f"b3_{level}", _Block(ch, ch))
        self.add_module("b2_plus_1", _Block(ch, ch))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self.get_submodule(f"b1_{level}")(x)
        low = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, 2))
        low = self._level(level - 1, low) if level > 1 else self.get_submodule("b2_plus_1")(low)
        low = self.get_submodule(f"b3_{level}")(low)
        return up + F.interpolate(low, scale_factor=2.0, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class FANNet(nn.Module):
    """2D-FAN; ``forward`` maps (B,3,256,256) RGB crops in [0,1] to (B,P,64,64) heatmaps."""

    def __init__(self, num_modules: int = 4, num_points: int = 68, depth: int = 4):
        super().__init__()
        self.num_modules = num_modules
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = _Block(64, 128)
        self.conv3 = _Block(128, 128)
        self.conv4 = _Block(128, 256)
        for i in range(num_modules):
            self.add_module(f"m{i}", _Hourglass(depth, 256))
            self.add_module(f"top_m_{i}", _Block(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, num_points, 1))
            if i < num_modules - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, 1))
                self.add_module(f"al{i}", nn.Conv2d(num_points, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.get_submodule
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, 2)))
        out = x
        for i in range(self.num_modules):
            ll = m(f"top_m_{i}")(m(f"m{i}")(x))
            ll = F.relu(m(f"bn_end{i}")(m(f"conv_last{i}")(ll)))
            out = m(f"l{i}")(ll)
            if i < self.num_modules - 1:
                x = x + m(f"bl{i}")(ll) + m(f"al{i}")(out)
        return out

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor]) -> FANNet:
        num_modules = sum(1 for k in sd if k.startswith("l") and k.endswith(".weight") and k[1:-7].isdigit())
        depth = max(int(k.split(".")[1][3:]) for k in sd if k.startswith("m0.b1_"))
        net = cls(num_modules, int(sd["l0.weight"].shape[0]), depth)
        net.load_state_dict(sd, strict=True)
        return net
