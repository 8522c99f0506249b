"""Pure-PyTorch twins of the fused CUDA operations in :mod:`vhap.render.kernels.ops` (any device). They define
what each kernel computes, run on the CPU and on backends without vhap's kernels, and are what the GPU tests compare
the kernels against. The rasteriser's reference is the ``torch`` backend (:mod:`vhap.render.backends.torch_raster`).
"""

from __future__ import annotations

import torch

from vhap.render.shading import composite, shade


def shade_composite_reference(
    normal: torch.Tensor,
    albedo: torch.Tensor,
    covered: torch.Tensor,
    background: torch.Tensor,
    sh: torch.Tensor | None,
    lighting: str = "SH",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shade and composite over the background (``shade.cu``).

    Args:
        normal: (B,H,W,3) unit normals (zeros where empty). albedo: (B,H,W,3). covered: (B,H,W) bool.
        background: (B,H,W,3). sh: (B|1,9,3) for ``lighting="SH"``.
    Returns:
        rgba (B,H,W,4): ``covered ? (albedo · shading, 1) : (background, 0)``; and the shading computed from
        *detached* normals, zero where empty (B,H,W,3) — its gradient reaches only the lights (§4.4 reg_diffuse).
    """
    alpha = covered.unsqueeze(-1).to(albedo.dtype)
    rgb = albedo * shade(lighting, normal, sh)
    fg = torch.cat([rgb, torch.ones_like(alpha)], dim=-1)
    bg = torch.cat([background, torch.zeros_like(alpha)], dim=-1)
    return composite(fg, alpha, bg), shade(lighting, normal.detach(), sh) * alpha


def perturb_select_reference(
    flat: torch.Tensor,
    cid: torch.Tensor,
    r: torch.Tensor,
    u: torch.Tensor,
    grouped: torch.Tensor,
    starts: torch.Tensor,
    counts: torch.Tensor,
    rate_fg: float,
    rate_bg: float,
) -> torch.Tensor:
    """The per-pixel step of :func:`vhap.render.perturb.perturb_appearance` (``perturb.cu``).

    Args:
        flat: (N,C) image pixels. cid: (N,) integer cluster ids. r, u: (N,) uniform draws (replacement, source).
        grouped: (N,) int64 pixel indices grouped by cluster; starts, counts: (K,) int64 each cluster's slice.
    Returns:
        (N,C): pixel i is replaced, with probability ``rate_bg`` (cluster 0) or ``rate_fg`` (clusters >= 2), by
        the detached value of pixel ``grouped[starts[c] + floor(u_i · counts[c])]`` of its own cluster c.
    """
    n, C = flat.shape
    cid = cid.long()
    replace = torch.where(cid == 0, r < rate_bg, r < rate_fg) & (cid != 1)
    own_count = counts[cid]
    pick = starts[cid] + (u * own_count).long().clamp(max=(own_count - 1).clamp(min=0))
    # Element indices into the flat 1-D image, not row indices: selecting (N,C) rows (``flat[rows]``, or
    # ``torch.gather`` with an expanded index) runs ATen's row-gather kernel with one thread block per row, the
    # slowest kernel of a photometric step; indexing a 1-D tensor is an elementwise kernel.
    src = grouped[pick.clamp(max=n - 1)]
    elements = src.unsqueeze(1) * C + torch.arange(C, device=flat.device)
    sample = flat.detach().reshape(-1)[elements]
    return torch.where(replace.unsqueeze(1), sample, flat)


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def image_loss_sums_reference(
    rgba: torch.Tensor,
    target: torch.Tensor,
    covered: torch.Tensor,
    matte: torch.Tensor | None = None,
    excess: bool = False,
) -> torch.Tensor:
    """Per-view sums of the tracker's image terms (``image_loss.cu``), ``(N,3)``:
    [photometric Σ|t − rgb|, #covered pixels, silhouette (0 without a matte): Σ alpha·(1 − matte), or with
    ``excess`` Σ max(0, alpha − matte)], non-finite terms ignored, for rgba (N,H,W,4), target (N,H,W,3), covered
    (N,H,W) bool, matte (N,H,W)."""
    photo = _finite((target - rgba[..., :3]).abs()).flatten(1).sum(1)
    count = covered.flatten(1).sum(1).to(rgba.dtype)
    if matte is None:
        sil = torch.zeros_like(photo)
    else:
        a = rgba[..., 3]
        sil = _finite(torch.relu(a - matte) if excess else a * (1.0 - matte)).flatten(1).sum(1)
    return torch.stack([photo, count, sil], dim=1)
