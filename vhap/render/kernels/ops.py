"""vhap's fused CUDA operations as autograd functions (the kernels of this package, loaded by
:func:`vhap.render.kernels.loader.load_kernels`). Each takes CUDA tensors only and has a pure-PyTorch twin in
:mod:`vhap.render.kernels.reference` with the same values and gradients, which the GPU tests compare against.

None of them synchronises with the host, so they can be recorded in a CUDA graph.
"""

from __future__ import annotations

import torch

from vhap.render.kernels.loader import load_kernels
from vhap.render.shading import sh_constants


# ------------------------------------------------------------------------------------------------ rasterisation
def zbuffer_visibility(clip: torch.Tensor, tri: torch.Tensor, keep: torch.Tensor, image_size: tuple[int, int]):
    """Nearest visible face per pixel (``zbuffer.cu``; same coverage rules as the pure-torch backend).

    Args:
        clip: (B,V,4) contiguous float32 clip positions (not y-negated). tri: (F,3) contiguous int32 faces.
        keep: (B,F) bool faces to rasterise, or an empty tensor for all. image_size: (H, W).
    Returns:
        (B,H,W) int32 face index, -1 where empty, row 0 = image top. Not differentiable.
    """
    return load_kernels().visibility(clip, tri, keep, int(image_size[0]), int(image_size[1]))


def _nvdiffrast_plugin():
    import nvdiffrast.torch.ops as ops

    return ops._get_plugin()


class RasterAttributes(torch.autograd.Function):
    """pos (B,V,4) y-negated clip, tri (F,3) int32, visible face (B,H,W) int32 -> nvdiffrast-layout rast (B,H,W,4),
    rast_db (B,H,W,4), depth (B,H,W) (``zbuffer.cu``). Backward: nvdiffrast's own rasteriser gradient, which needs
    only the positions, the faces and these buffers (so gradients are exactly nvdiffrast's)."""

    @staticmethod
    def forward(ctx, pos, tri, visible):
        rast, rast_db, depth = load_kernels().attributes(pos, tri, visible)
        ctx.save_for_backward(pos, tri, rast)
        ctx.mark_non_differentiable(depth)
        return rast, rast_db, depth

    @staticmethod
    def backward(ctx, d_rast, d_rast_db, _d_depth):
        pos, tri, rast = ctx.saved_tensors
        plugin = _nvdiffrast_plugin()
        d_rast = torch.zeros_like(rast) if d_rast is None else d_rast.contiguous()
        if d_rast_db is None:
            g_pos = plugin.rasterize_grad(pos, tri, rast, d_rast)
        else:
            g_pos = plugin.rasterize_grad_db(pos, tri, rast, d_rast, d_rast_db.contiguous())
        return g_pos, None, None


def raster_attributes(pos: torch.Tensor, tri: torch.Tensor, visible: torch.Tensor):
    """See :class:`RasterAttributes`; differentiable with respect to ``pos``."""
    return RasterAttributes.apply(pos, tri, visible)


# ------------------------------------------------------------------------------------------------ shading
class ShadeComposite(torch.autograd.Function):
    """Fused SH shading + compositing (``shade.cu``)."""

    @staticmethod
    def forward(ctx, normal_raw, albedo, covered, background, sh, consts):
        rgba, diffuse = load_kernels().shade_composite_fwd(normal_raw, albedo, covered, background, sh, consts)
        ctx.save_for_backward(normal_raw, albedo, covered, sh, consts)
        return rgba, diffuse

    @staticmethod
    def backward(ctx, g_rgba, g_diffuse):
        normal_raw, albedo, covered, sh, consts = ctx.saved_tensors
        B, H, W, _ = normal_raw.shape
        g_rgba = normal_raw.new_zeros(B, H, W, 4) if g_rgba is None else g_rgba.contiguous()
        g_diffuse = torch.zeros_like(normal_raw) if g_diffuse is None else g_diffuse.contiguous()
        g_n, g_a, g_sh = load_kernels().shade_composite_bwd(normal_raw, albedo, covered, sh, consts, g_rgba, g_diffuse)
        return g_n, g_a, None, None, g_sh, None


def shade_composite(
    normal_raw: torch.Tensor, albedo: torch.Tensor, covered: torch.Tensor, background: torch.Tensor, sh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused :func:`vhap.render.kernels.reference.shade_composite_reference` with SH lighting: the same outputs
    and gradients, one kernel forward and one backward instead of ~15 full-image passes each.

    Unlike the reference it takes the *interpolated* normals ``normal_raw`` (B,H,W,3) and normalises them itself.
    albedo (B,H,W,3), covered (B,H,W) bool, background (B,H,W,3) (a constant colour may be an expanded (3,)),
    sh (B|1,9,3). Returns rgba (B,H,W,4) and the shading of the detached normals (B,H,W,3), zero where empty.
    """
    if background.ndim == 4 and background.stride(0) == 0 and background.stride(1) == 0:
        background = background[0, 0, 0]  # a constant colour expanded to an image
    if background.ndim == 4 and background.shape[0] != normal_raw.shape[0] and background.stride(0) == 0:
        background = background[:1]
    return ShadeComposite.apply(
        normal_raw.float().contiguous(),
        albedo.float().contiguous(),
        covered.contiguous(),
        background.float().contiguous(),
        sh.float().contiguous(),
        sh_constants(normal_raw.device, torch.float32),
    )


# ------------------------------------------------------------------------------------------------ perturbation
class PerturbSelect(torch.autograd.Function):
    """Fused per-pixel step of the appearance perturbation (``perturb.cu``)."""

    @staticmethod
    def forward(ctx, flat, cid, r, u, grouped, starts, counts, rate_fg, rate_bg):
        out, keep = load_kernels().perturb_select(
            flat, cid, r, u, grouped, starts, counts, float(rate_fg), float(rate_bg)
        )
        ctx.save_for_backward(keep)
        return out

    @staticmethod
    def backward(ctx, g_out):
        (keep,) = ctx.saved_tensors
        return load_kernels().perturb_keep_grad(g_out.contiguous(), keep), *([None] * 8)


def perturb_select(flat, cid, r, u, grouped, starts, counts, rate_fg: float, rate_bg: float) -> torch.Tensor:
    """Fused :func:`vhap.render.kernels.reference.perturb_select_reference` (same arguments, values and gradients;
    one kernel each way instead of ~25 full-image passes, half of them on int64 index tensors)."""
    return PerturbSelect.apply(
        flat.float().contiguous(),
        cid.contiguous(),
        r.float().contiguous(),
        u.float().contiguous(),
        grouped.contiguous(),
        starts.contiguous(),
        counts.contiguous(),
        rate_fg,
        rate_bg,
    )


# ------------------------------------------------------------------------------------------------ image loss
class ImageLossSums(torch.autograd.Function):
    """Fused per-view sums of the tracker's image terms (``image_loss.cu``)."""

    @staticmethod
    def forward(ctx, rgba, target, covered, matte, excess):
        sums = load_kernels().image_loss_fwd(rgba, target, covered, matte, excess)
        ctx.save_for_backward(rgba, target, matte)
        ctx.excess = excess
        return sums  # the count column has no gradient; the backward ignores its incoming one

    @staticmethod
    def backward(ctx, grad_sums):
        rgba, target, matte = ctx.saved_tensors
        grad = load_kernels().image_loss_bwd(rgba, target, matte, ctx.excess, grad_sums.contiguous())
        return grad, None, None, None, None


def image_loss_sums(
    rgba: torch.Tensor,
    target: torch.Tensor,
    covered: torch.Tensor,
    matte: torch.Tensor | None = None,
    excess: bool = False,
) -> torch.Tensor:
    """Fused :func:`vhap.render.kernels.reference.image_loss_sums_reference` (CUDA tensors; same arguments, sums
    and gradient): one kernel forward and one backward instead of ~20 full-image passes."""
    rgba = rgba.contiguous()
    if rgba.data_ptr() % 16:  # the kernels read pixels as float4
        rgba = rgba.clone()
    return ImageLossSums.apply(
        rgba, target.contiguous(), covered.contiguous(), None if matte is None else matte.contiguous(), excess
    )
