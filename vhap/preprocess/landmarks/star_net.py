"""The STAR landmark network (Zhou et al., "STAR Loss: Reducing Semantic Ambiguity in Facial Landmark Detection",
CVPR 2023), written here from the paper's description so that the published checkpoints load by their keys.

Architecture (as described for STAR, which builds on ADNet's stacked hourglass):

- input: a 256×256 face crop, **BGR** channel order, ``(pixel − 127.5) / 127.5``;
- stem: a CoordConv 7×7/2 (input + 3 coordinate channels → 64, batch norm, ReLU), a bottleneck residual 64→128,
  2×2 max pooling, residuals 128→128 and 128→256 (features at 64×64);
- ``nstack`` (4) hourglasses of depth 4 on 256 channels; each starts with a 1×1 CoordConv; from the second on it
  also gets two "boundary" channels: the coordinates where the previous stack's last heatmap exceeds 0.05;
- per stack: a residual + 1×1 conv/BN/ReLU feature head; 1×1 heads for the landmark heatmaps (instance norm +
  ReLU), and with the anisotropic attention module (AAM) for edge maps and point maps (sigmoid); the landmark
  heatmaps are multiplied by the point map and by the edge maps spread back onto the points of each edge
  (a fixed points×edges 0/1 matrix; points on no edge get 1);
- between stacks the features and all maps are projected back by 1×1 convs and added to the stack's input;
- output: the soft-argmax of the last stack's fused heatmaps, ``(B, P, 2)`` as (x, y) in [−1, 1], where −1 and +1
  are the centres of the first and last heatmap pixels; crop pixel (continuous) = (v + 1)·128.

Checkpoints: ``300W_STARLoss_NME_2_87.pkl`` (68 iBUG points, 9 edges) and the WFLW model (98 points, 9 edges) are
``torch.save`` dicts whose ``"net"`` entry is the state dict of this module layout (keys such as
``pre.0.conv.weight``, ``hgs.1.coordconv.conv.weight``, ``out_heatmaps.3.conv.bias``, ``e2h_transform.weight``).
WFLW's 98 points map to the 68 iBUG points with :data:`WFLW98_TO_IBUG68`.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _runs(*bounds: int) -> tuple[tuple[int, ...], ...]:
    """Consecutive index runs between ``bounds``: ``_runs(0, 3, 5)`` = ``((0, 1, 2), (3, 4))``."""
    return tuple(tuple(range(a, b)) for a, b in itertools.pairwise(bounds))


#: iBUG-68 parts as STAR groups them into edges (contour, brows, nose line, nose base, eyes, outer/inner lips)
IBUG68_EDGES: tuple[tuple[int, ...], ...] = _runs(0, 17, 22, 27, 31, 36, 42, 48, 60, 68)
#: WFLW-98 parts (contour 0-32, brows 33-41 / 42-50 incl. their lower arcs, nose 51-59, eyes 60-67 / 68-75,
#: lips 76-87 / 88-95; 96 and 97 are the pupils and lie on no edge)
WFLW98_EDGES: tuple[tuple[int, ...], ...] = _runs(0, 33, 42, 51, 55, 60, 68, 76, 88, 96)

# WFLW-98 → iBUG-68: every second contour point (33 → 17); the upper arcs of the brows; the nose as is; of each
# 8-point eye the 6 that correspond to iBUG's (corners, two upper, two lower); the 20 mouth points as is.
WFLW98_TO_IBUG68 = np.array(
    list(range(0, 33, 2))
    + [33, 34, 35, 36, 37]
    + [42, 43, 44, 45, 46]
    + list(range(51, 60))
    + [60, 61, 63, 64, 65, 67]
    + [68, 69, 71, 72, 73, 75]
    + list(range(76, 96)),
    dtype=np.int64,
)
assert len(WFLW98_TO_IBUG68) == 68 and len(set(WFLW98_TO_IBUG68.tolist())) == 68


class _Unit(nn.Module):
    """Convolution (with bias, 'same' padding) [+ batch norm] [+ ReLU]; the checkpoints name them conv / bn."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, bn: bool = False, relu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=True)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.use_relu else x


class _Residual(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-1×1, BN-ReLU-3×3, BN-ReLU-1×1 at half width) plus a shortcut.

    The 1×1 shortcut projection exists in the checkpoints for every block; it is only applied when the
    channel count changes.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _Unit(cin, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), _Unit(mid, mid, 3)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), _Unit(mid, cout, 1)
        self.skip_layer = _Unit(cin, cout, 1)
        self.project = cin != cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x)))
        h = self.conv2(F.relu(self.bn2(h)))
        h = self.conv3(F.relu(self.bn3(h)))
        return h + (self.skip_layer(x) if self.project else x)


def coordinate_channels(h: int, w: int, device=None, dtype=None) -> torch.Tensor:
    """(1,3,h,w): a row coordinate, a column coordinate (each −1 … +1 over the pixel centres) and their radius
    scaled to a maximum of 1 — the channel order STAR's CoordConv uses (its "x" runs down the rows)."""
    rows = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(h, 1).expand(h, w)
    cols = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, w).expand(h, w)
    r = torch.sqrt(rows**2 + cols**2)
    return torch.stack([rows, cols, r / r.max()])[None]


class _CoordConv(nn.Module):
    """Concatenate coordinate channels (and, with ``boundary``, the coordinates where the previous heatmaps' last
    channel exceeds 0.05) to the input, then convolve."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, boundary: bool, bn: bool, relu: bool):
        super().__init__()
        self.boundary = boundary
        self.conv = nn.Conv2d(cin + 3 + (2 if boundary else 0), cout, k, stride, (k - 1) // 2, bias=True)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.use_relu = relu

    def forward(self, x: torch.Tensor, heatmaps: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        grid = coordinate_channels(h, w, x.device, x.dtype)
        parts = [x, grid.expand(b, -1, -1, -1)]
        if self.boundary:
            if heatmaps is None:
                raise ValueError("this hourglass needs the previous stack's heatmaps")
            on = heatmaps[:, -1:].clamp(0.0, 1.0) > 0.05
            parts.append(torch.where(on, grid[:, :2], torch.zeros_like(grid[:, :2])))
        x = self.conv(torch.cat(parts, 1))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.use_relu else x


class _Hourglass(nn.Module):
    """Recursive hourglass: ``up1`` at this scale + upsampled(``low3``(``low2``(``low1``(maxpool(x)))))."""

    def __init__(self, depth: int, ch: int, coord: bool = False, first: bool = False):
        super().__init__()
        self.coordconv = _CoordConv(ch, ch, 1, 1, not first, bn=False, relu=False) if coord else None
        self.up1 = _Residual(ch, ch)
        self.low1 = _Residual(ch, ch)
        self.low2 = _Hourglass(depth - 1, ch) if depth > 1 else _Residual(ch, ch)
        self.low3 = _Residual(ch, ch)

    def forward(self, x: torch.Tensor, heatmaps: torch.Tensor | None = None) -> torch.Tensor:
        if self.coordconv is not None:
            x = self.coordconv(x, heatmaps)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2, 2))))
        return self.up1(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class _EdgeToPoint(nn.Module):
    """Spreads edge maps (B,E,h,w) onto the points of each edge (B,P,h,w); points on no edge get 1."""

    def __init__(self, num_points: int, edges: tuple[tuple[int, ...], ...]):
        super().__init__()
        m = torch.zeros(num_points, len(edges))
        for e, pts in enumerate(edges):
            m[list(pts), e] = 1.0
        self.register_buffer("weight", m[:, :, None, None])
        self.register_buffer("bias", (m.sum(1) < 0.5).float())

    def forward(self, edgemaps: torch.Tensor) -> torch.Tensor:
        return F.conv2d(edgemaps, self.weight, self.bias)


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B,P,h,w) non-negative maps → (B,P,2) expected (x, y) in [−1, 1] (−1/+1 = first/last pixel centre)."""
    _, _, h, w = heatmaps.shape
    ys = torch.linspace(-1.0, 1.0, h, device=heatmaps.device, dtype=heatmaps.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=heatmaps.device, dtype=heatmaps.dtype)
    mass = heatmaps.sum((2, 3)).clamp_min(1e-6)
    x = (heatmaps.sum(2) * xs).sum(-1) / mass
    y = (heatmaps.sum(3) * ys).sum(-1) / mass
    return torch.stack([x, y], -1)


class STARNet(nn.Module):
    """STAR's stacked hourglass; ``forward`` maps (B,3,256,256) BGR crops in [−1,1] to (B,P,2) points in [−1,1]."""

    def __init__(
        self,
        num_points: int = 68,
        edges: tuple[tuple[int, ...], ...] = IBUG68_EDGES,
        nstack: int = 4,
        depth: int = 4,
        channels: int = 256,
        aam: bool = True,
    ):
        super().__init__()
        c, p, e = channels, num_points, len(edges)
        self.nstack, self.aam = nstack, aam
        self.pre = nn.Sequential(
            _CoordConv(3, 64, 7, 2, boundary=False, bn=True, relu=True),
            _Residual(64, 128),
            nn.MaxPool2d(2, 2),
            _Residual(128, 128),
            _Residual(128, c),
        )
        self.hgs = nn.ModuleList(_Hourglass(depth, c, coord=True, first=i == 0) for i in range(nstack))
        self.features = nn.ModuleList(
            nn.Sequential(_Residual(c, c), _Unit(c, c, 1, bn=True, relu=True)) for _ in range(nstack)
        )
        self.out_heatmaps = nn.ModuleList(_Unit(c, p) for _ in range(nstack))
        self.merge_features = nn.ModuleList(_Unit(c, c) for _ in range(nstack - 1))
        self.merge_heatmaps = nn.ModuleList(_Unit(p, c) for _ in range(nstack - 1))
        if aam:
            self.e2h_transform = _EdgeToPoint(p, edges)
            self.out_edgemaps = nn.ModuleList(_Unit(c, e) for _ in range(nstack))
            self.out_pointmaps = nn.ModuleList(_Unit(c, p) for _ in range(nstack))
            self.merge_edgemaps = nn.ModuleList(_Unit(e, c) for _ in range(nstack - 1))
            self.merge_pointmaps = nn.ModuleList(_Unit(p, c) for _ in range(nstack - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        heat = fused = None
        for i in range(self.nstack):
            feat = self.features[i](self.hgs[i](x, heat))
            heat = F.relu(F.instance_norm(self.out_heatmaps[i](feat)))
            fused = heat
            if self.aam:
                edges = torch.sigmoid(self.out_edgemaps[i](feat))
                points = torch.sigmoid(self.out_pointmaps[i](feat))
                fused = self.e2h_transform(edges) * points * heat
            if i < self.nstack - 1:
                x = x + self.merge_features[i](feat) + self.merge_heatmaps[i](heat)
                if self.aam:
                    x = x + self.merge_pointmaps[i](points) + self.merge_edgemaps[i](edges)
        return soft_argmax(fused)

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor]) -> STARNet:
        """A network shaped like ``sd`` (points, edges, stacks, depth, width read from it), weights loaded strictly."""
        num_points, channels = sd["out_heatmaps.0.conv.weight"].shape[:2]
        nstack = sum(1 for k in sd if k.startswith("out_heatmaps.") and k.endswith(".conv.weight"))
        depth = 1
        while f"hgs.0{'.low2' * depth}.up1.bn1.weight" in sd:
            depth += 1
        aam = "e2h_transform.weight" in sd
        if aam:
            m = sd["e2h_transform.weight"][:, :, 0, 0]
            edges = tuple(tuple(torch.nonzero(m[:, j] > 0.5).flatten().tolist()) for j in range(m.shape[1]))
        else:
            edges = IBUG68_EDGES if num_points == 68 else WFLW98_EDGES
        net = cls(int(num_points), edges, nstack, depth, int(channels), aam)
        net.load_state_dict(sd, strict=True)
        return net
