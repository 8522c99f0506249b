"""VHAP's appearance perturbation ("disturbance", VHAP_SPEC §3.6), fully vectorised.

Every pixel of cluster i != 1 is, with probability ``rate_fg`` (clusters >= 2) or ``rate_bg`` (cluster 0 =
background), replaced by the value of a pixel drawn uniformly (with replacement) from all pixels of the
same cluster in the **whole batch**; drawn values carry no gradient. Cluster 1 (faces in no cluster) is
never changed.

Cost (issue 6: VHAP spends ~16 ms per step here): two uniform draws per pixel, one stable radix sort of the
cluster ids (the members of each cluster become contiguous) and K binary searches for the slices — no loop
over clusters and no host synchronisation (when the caller passes the static cluster count ``num_clusters``).
The per-pixel selection is :func:`perturb_select_reference` in PyTorch, or one fused CUDA kernel
(``vhap/render/backends/perturb.cu``) with the ``cuda`` backend.
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
    num_clusters: int | None = None,
    select=None,
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
        select: a fused implementation of :func:`perturb_select_reference` with the same signature (the
            ``cuda`` backend's ``perturb_select``), used when the image is on a GPU; same values and gradients.

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
    fn = select if (select is not None and device.type == "cuda") else perturb_select_reference
    return fn(flat, key, r, u, grouped, starts, counts, rate_fg, rate_bg).view(B, H, W, C)


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
    """The per-pixel step of :func:`perturb_appearance` (pure PyTorch; the reference of ``perturb.cu``).

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
    # Element indices into the flat 1-D image, not row indices: selecting (N,C) rows (``flat[rows]``, and also
    # ``torch.gather`` with an expanded index) runs ATen's row-gather kernel with one thread block per row — on an
    # H100 4.2 ms per step for 16 × 802×550 views, the longest kernel of a photometric step. Indexing a 1-D tensor
    # is an elementwise kernel.
    src = grouped[pick.clamp(max=n - 1)]
    elements = src.unsqueeze(1) * C + torch.arange(C, device=flat.device)
    sample = flat.detach().reshape(-1)[elements]
    return torch.where(replace.unsqueeze(1), sample, flat)
