"""Per-sample quality metrics of a tracking run, computed on the device in batches (no host syncs)."""

from __future__ import annotations

import torch

from vhap.track.losses import OUTER_EYE_CORNERS


def landmark_nme(pred_px: torch.Tensor, target: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Mean landmark error normalised by the inter-ocular distance (outer eye corners 36/45 of the target).

    pred_px (B,68,2) pixels; target (B,68,2) pixels; conf (B,68) > 0 where the detection is usable.
    Returns (B,) — NaN for samples without a usable detection.
    """
    err = (pred_px - target).norm(dim=-1)
    used = conf > 0
    a, b = OUTER_EYE_CORNERS
    iod = (target[:, a] - target[:, b]).norm(dim=-1)
    mean_err = torch.where(used, err, torch.zeros_like(err)).sum(1) / used.sum(1).clamp(min=1)
    ok = used.any(1) & (iod > 0)
    return torch.where(ok, mean_err / iod.clamp(min=1e-6), torch.full_like(mean_err, float("nan")))


def masked_sse(render: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors over masked pixels and the number of masked values (pixels × 3), per sample.

    render/target (B,H,W,3) in [0,1]; mask (B,H,W) bool. PSNR = 10·log10(count / sse).
    """
    m = mask.unsqueeze(-1).to(render.dtype)
    sse = ((render - target).square() * m).flatten(1).sum(1)
    count = m.flatten(1).sum(1) * render.shape[-1]
    return sse, count


def psnr_from_sse(sse: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (peak 1) per entry; NaN where nothing was masked."""
    mse = sse / count.clamp(min=1)
    out = 10 * torch.log10(1.0 / mse.clamp(min=1e-10))
    return torch.where(count > 0, out, torch.full_like(out, float("nan")))


def silhouette_iou(alpha: torch.Tensor, matte: torch.Tensor) -> torch.Tensor:
    """IoU of (alpha > 0.5) and (matte > 0.5), per sample (B,); NaN where both are empty."""
    a = alpha > 0.5
    m = matte > 0.5
    inter = (a & m).flatten(1).sum(1).float()
    union = (a | m).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(union, float("nan")))
