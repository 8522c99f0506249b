"""VHAP's appearance perturbation ("disturbance", VHAP_SPEC §3.6), fully vectorised.

Every pixel of cluster i != 1 is, with probability ``rate_fg`` (clusters >= 2) or ``rate_bg`` (cluster 0 =
background), replaced by the value of a pixel drawn uniformly (with replacement) from all pixels of the
same cluster in the **whole batch**; drawn values carry no gradient. Cluster 1 (faces in no cluster) is
never changed. One sort groups the pixels by cluster, so there is no loop over clusters or pixels.
"""

from __future__ import annotations

import torch


def _rand(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def perturb_appearance(
    image: torch.Tensor,
    cluster_id: torch.Tensor,
    rate_fg: float = 0.5,
    rate_bg: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Perturb a composited image by cluster.

    Args:
        image: (B,H,W,C) composited rendering (foreground over background; RGBA or RGB).
        cluster_id: (B,H,W) int64 — 0 background, 1 unclustered face, >= 2 cluster k.
        rate_fg, rate_bg: Bernoulli replacement rates for foreground clusters and the background.
        generator: torch.Generator for reproducible draws (on any device).

    Returns:
        (B,H,W,C) perturbed image; kept pixels keep their gradient, replaced ones have none.
    """
    B, H, W, C = image.shape
    device = image.device
    flat = image.reshape(-1, C)
    cid = cluster_id.reshape(-1)
    n = cid.numel()
    # Two independent Bernoulli masks over all pixels (VHAP draws both and selects per cluster).
    w_fg = _rand((n,), generator, device) < rate_fg
    w_bg = _rand((n,), generator, device) < rate_bg
    u = _rand((n,), generator, device)

    order = torch.argsort(cid, stable=True)
    n_clusters = int(cid.max().item()) + 1 if n else 1
    counts = torch.bincount(cid, minlength=n_clusters)
    starts = counts.cumsum(0) - counts
    own_count = counts[cid]
    pick = starts[cid] + (u * own_count).long().clamp(max=(own_count - 1).clamp(min=0))
    sample = flat.detach()[order[pick.clamp(max=n - 1)]]

    replace = torch.where(cid == 0, w_bg, w_fg) & (cid != 1)
    out = torch.where(replace.unsqueeze(1), sample, flat)
    return out.view(B, H, W, C)
