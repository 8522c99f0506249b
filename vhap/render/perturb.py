"""VHAP's appearance perturbation ("disturbance", VHAP_SPEC §3.6), fully vectorised.

Every pixel of cluster i != 1 is, with probability ``rate_fg`` (clusters >= 2) or ``rate_bg`` (cluster 0 =
background), replaced by the value of a pixel drawn uniformly (with replacement) from all pixels of the
same cluster in the **whole batch**; drawn values carry no gradient. Cluster 1 (faces in no cluster) is
never changed.

Cost: two uniform draws per pixel, one stable radix sort of the cluster ids (the members of each cluster become
contiguous) and K binary searches for the slices — no loop over clusters and no host synchronisation (when the
caller passes the static cluster count ``num_clusters``). The per-pixel selection is
:func:`vhap.render.kernels.perturb_select_reference` in PyTorch, or one fused CUDA kernel
(:func:`vhap.render.kernels.perturb_select`) where the backend has vhap's kernels.
"""

from __future__ import annotations

import torch

from vhap.render.kernels import perturb_select, perturb_select_reference


def _rand(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def perturb_appearance(
    image: torch.Tensor,
    cluster_id: torch.Tensor,
    rate_fg: float = 0.5,
    rate_bg: float = 0.5,
    generator: torch.Generator | None = None,
    num_clusters: int | None = None,
    fused: bool = False,
) -> torch.Tensor:
    """Perturb a composited image by cluster.

    Args:
        image: (B,H,W,C) composited rendering (foreground over background; RGBA or RGB).
        cluster_id: (B,H,W) integer cluster ids (int16/int32/int64) — 0 background, 1 unclustered face, >= 2
            cluster k.
        rate_fg, rate_bg: Bernoulli replacement rates for foreground clusters and the background.
        generator: torch.Generator for reproducible draws (on any device).
        num_clusters: an upper bound K on ``cluster_id.max() + 1`` (static per run, e.g. 2 + number of texture
            clusters). Passing it avoids reading the maximum back from the device (a host sync per call).
        fused: select the samples with the fused CUDA kernel (same values and gradients; for CUDA tensors where
            vhap's kernels are built, ``MeshRenderer.caps(device).fused_kernels``) instead of the PyTorch reference.

    Returns:
        (B,H,W,C) perturbed image; kept pixels keep their gradient, replaced ones have none.
    """
    B, H, W, C = image.shape
    device = image.device
    flat = image.reshape(-1, C)
    cid = cluster_id.reshape(-1)
    n = cid.numel()
    if n == 0:
        return image
    K = int(num_clusters) if num_clusters is not None else int(cid.max().item()) + 1
    # One draw decides replacement (rate_bg on the background, rate_fg elsewhere: VHAP draws both masks and
    # selects one per pixel, which has the same distribution), one draw picks the source pixel.
    r = _rand((n,), generator, device)
    u = _rand((n,), generator, device)

    # Group the pixels by cluster with one stable radix sort of the (small-integer) cluster ids; each cluster's
    # slice of the sorted order is found by a binary search per cluster id (K searches, no host sync). This
    # replaces a counting sort over a (K,N) membership table plus a full-size scatter (K·N memory traffic).
    # Within a cluster the draw is uniform, so the order inside a slice is irrelevant.
    key_dtype = torch.int16 if K < 2**15 else torch.int32
    key = cid if cid.dtype == key_dtype else cid.to(key_dtype)
    sorted_cid, grouped = torch.sort(key, stable=True)
    bounds = torch.arange(K, device=device, dtype=sorted_cid.dtype)
    starts = torch.searchsorted(sorted_cid, bounds, right=False)
    counts = torch.searchsorted(sorted_cid, bounds, right=True) - starts
    fn = perturb_select if (fused and device.type == "cuda") else perturb_select_reference
    return fn(flat, key, r, u, grouped, starts, counts, rate_fg, rate_bg).view(B, H, W, C)
