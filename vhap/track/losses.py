"""Data terms of the tracking energy (VHAP_SPEC §4.4): landmarks, photometric, matte silhouette.

Every function returns a 0-dim tensor and never synchronises with the host (no ``.item()``, no Python
branching on tensor values), so a step can be queued on the GPU without stalls.
"""

from __future__ import annotations

import torch

#: iBUG-68 ids: 0-16 jawline, 27-35 nose, 36/45 outer eye corners
JAWLINE = slice(0, 17)
NOSE_IDS = tuple(range(27, 36))
OUTER_EYE_CORNERS = (36, 45)


def landmark_confidence(target: torch.Tensor, mode: str = "binary") -> torch.Tensor:
    """Per-point weights ``(B,K)`` of detector landmarks ``target (B,K,3)`` (x/W, y/H, conf; −1 = failed).

    ``binary`` (VHAP): every point of a sample gets 1, or 0 if any coordinate of the sample is −1 (a failed
    detection). ``detector``: the stored confidence, 0 for failed / non-finite points.
    """
    xy = target[..., :2]
    finite = torch.isfinite(xy).all(-1)
    failed_pt = (xy == -1).any(-1) | ~finite
    if mode == "binary":
        ok = ~failed_pt.any(-1, keepdim=True)
        return ok.expand_as(failed_pt).to(target.dtype)
    conf = torch.nan_to_num(target[..., 2], nan=0.0).clamp(min=0)
    return torch.where(failed_pt, torch.zeros_like(conf), conf)


def landmark_weights(num_points: int, *, jawline: bool, nose_weight: float, device=None) -> torch.Tensor:
    """Static per-point multipliers ``(K,)`` for iBUG-68: jawline off -> 0 on points 0-16 (VHAP uses the
    51 inner points then); jawline on -> nose points 27-35 weighted ``nose_weight``."""
    w = torch.ones(num_points, device=device)
    if num_points >= 68:
        if jawline:
            w[list(NOSE_IDS)] = nose_weight
        else:
            w[JAWLINE] = 0.0
    return w


def robust_penalty(r: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    """Per-point penalty of a residual ``r`` ≥ 0: ``l1`` = r; ``geman_mcclure`` = 2c·r²/(r² + c²) (quadratic near
    0, bounded by 2c: far points stop pulling); ``cauchy`` = c·log(1 + r²/c²) (grows only logarithmically).
    Both robust forms have slope 1 at r = c, as L1 everywhere."""
    if kind == "l1":
        return r
    c2 = scale * scale
    if kind == "geman_mcclure":
        return 2.0 * scale * r.square() / (r.square() + c2)
    if kind == "cauchy":
        return scale * torch.log1p(r.square() / c2)
    raise ValueError(f"unknown robust penalty {kind!r}")


def landmark_loss(
    pred_px: torch.Tensor,
    target: torch.Tensor,
    conf: torch.Tensor,
    point_weights: torch.Tensor,
    image_size,
    robust: str = "l1",
    robust_scale: float = 0.03,
) -> torch.Tensor:
    """VHAP's landmark L1 in normalised device units (or a robust penalty of the same residual).

    pred_px (B,K,2) continuous pixel coordinates; target (B,K,≥2) normalised x/W, y/H; conf (B,K);
    point_weights (K,) (0 = point unused). Both are mapped to [−1, 1] (x_n = 2x/W − 1); the loss is the mean,
    over the used points of the batch, of ``conf · weight · ρ(|Δx| + |Δy|)`` with ρ = :func:`robust_penalty`.
    """
    H, W = image_size
    # Python-scalar arithmetic only: a tensor built from a list here would be a host→device copy per step
    tgt = torch.nan_to_num(target[..., :2], nan=0.0)
    dx = pred_px[..., 0] * (2.0 / W) - tgt[..., 0] * 2.0
    dy = pred_px[..., 1] * (2.0 / H) - tgt[..., 1] * 2.0
    l1 = robust_penalty(dx.abs() + dy.abs(), robust, robust_scale)  # (B,K)
    # where() rather than multiply: a NaN prediction of a zero-weight point must not leak into the gradient
    wc = conf * point_weights
    l1 = torch.where(wc > 0, l1, torch.zeros_like(l1))
    n_used = (point_weights > 0).sum() * pred_px.shape[0]
    return (wc * l1).sum() / n_used.clamp(min=1)


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def photometric_sums(render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) Σ over pixels and channels of |I_target − I_render|, non-finite values ignored."""
    return _finite((target - render).abs()).flatten(1).sum(1)


def silhouette_sums(alpha: torch.Tensor, matte: torch.Tensor, excess: bool = False) -> torch.Tensor:
    """(B,) Σ over pixels of rendered coverage × (1 − matte) — or, with ``excess``, of the coverage beyond the
    matte, max(0, coverage − matte) — non-finite values ignored."""
    return _finite(torch.relu(alpha - matte) if excess else alpha * (1.0 - matte)).flatten(1).sum(1)


def photometric_from_sums(photo_sum: torch.Tensor, covered_count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VHAP's photometric L1 from per-sample sums: Σ|I_target − I_render| / (3 · #covered pixels).

    Guard (VHAP #58): a sample whose render covers no pixel (empty or off-screen) contributes nothing (its
    frames fall back to the landmark term) instead of dividing by zero. Returns the loss and the per-sample
    validity ``(B,)`` bool."""
    valid = covered_count > 0
    total = torch.where(valid, photo_sum, torch.zeros_like(photo_sum)).sum()
    denom = (3 * torch.where(valid, covered_count, torch.zeros_like(covered_count)).sum()).clamp(min=1)
    return total / denom, valid


def silhouette_from_sums(silhouette_sum: torch.Tensor, covered_count: torch.Tensor) -> torch.Tensor:
    """The silhouette term from per-sample sums: Σ coverage·(1 − matte) / #covered pixels (0 for empty renders)."""
    return silhouette_sum.sum() / covered_count.sum().clamp(min=1)


def photometric_loss(
    render: torch.Tensor, target: torch.Tensor, covered: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """VHAP's photometric L1: Σ|I_target − I_render| over all pixels and channels / (3 · #covered pixels).

    render/target (B,H,W,3) in [0,1]; covered (B,H,W) bool (rendered alpha > 0). Empty samples contribute
    nothing and non-finite render values are ignored (see :func:`photometric_from_sums`). Returns the loss and
    the per-sample validity ``(B,)`` bool.
    """
    return photometric_from_sums(photometric_sums(render, target), covered.flatten(1).sum(1))


def silhouette_loss(
    alpha: torch.Tensor, matte: torch.Tensor, covered: torch.Tensor, excess: bool = False
) -> torch.Tensor:
    """One-sided matte term: rendered coverage where the matte says background, per covered pixel.

    alpha (B,H,W) antialiased rendered coverage (carries silhouette gradients); matte (B,H,W) in [0,1];
    covered (B,H,W) bool. The matte also contains hair and torso that the head model need not cover, so only
    coverage *outside* the matte is penalised. Empty renders contribute 0. ``excess``: penalise only coverage
    beyond the matte (see ``LossWeights.silhouette_form``).
    """
    return silhouette_from_sums(silhouette_sums(alpha, matte, excess), covered.flatten(1).sum(1))
