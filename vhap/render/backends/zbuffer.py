"""``cuda`` backend: our own z-buffer visibility kernels (``zbuffer.cu``) + nvdiffrast's attribute operations.

nvdiffrast's CUDA rasteriser synchronises with the host on every call (it reads its bin counters back to grow
its buffers), which rules out recording a tracker step as a CUDA graph. This backend replaces only the
visibility pass: one thread per (view, face) enumerates the pixel centres of the face's snapped bounding box and
keeps the nearest through a 64-bit ``atomicMin`` (same coverage rules as the pure-PyTorch reference backend, so
its triangle ids can be tested against it on any GPU), then one thread per pixel writes nvdiffrast's raster
layout (perspective-correct ``(b0, b1, z/w, id + 1)`` and the screen derivatives). Interpolation, texture
sampling, antialiasing and the rasteriser's gradient (``rasterize_grad_db``) are nvdiffrast's own kernels, fed
with these buffers — so gradients are computed exactly as with the ``nvdiffrast`` backend.

Every kernel has a launch size fixed by the tensor shapes and nothing is read back to the host: a whole
photometric step can be captured in a CUDA graph. The clip positions are passed to nvdiffrast with y negated,
which puts image row 0 (the top) on buffer row 0: no buffer is ever flipped. nvdiffrast's ops are orientation
agnostic (barycentrics are ratios of edge functions that all change sign together; antialiasing compares each
face's orientation with its neighbour's), and culling uses the orientation of the unflipped positions.

Intended for heads and similar meshes: a face is rasterised by one thread, so a face covering a large part of a
high-resolution image (a camera inside the mesh) is slow but still correct. Faces with a vertex behind the
camera are dropped, as in the reference backend. The kernels are built on first use with
``torch.utils.cpp_extension`` (needs nvcc and ninja, like nvdiffrast's own JIT build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vhap.errors import VhapError
from vhap.render.backends.base import Fragments, face_orientation
from vhap.render.backends.nvdiffrast import NvdiffrastRasterizer
from vhap.utils.lazy import Deferred

_EXTENSION = None


def load_extension():
    """Build (first call, ~30 s) or load the ``vhap_zbuffer`` CUDA extension."""
    global _EXTENSION
    if _EXTENSION is None:
        from torch.utils.cpp_extension import load

        here = Path(__file__).parent
        source = here / "zbuffer.cu"
        try:
            _EXTENSION = load(
                name="vhap_zbuffer",
                sources=[str(source), str(here / "shade.cu"), str(here / "perturb.cu")],
                extra_cuda_cflags=["-O3"],
                verbose=False,
            )
        except Exception as e:  # compiler missing, CUDA mismatch, ...
            raise VhapError(
                f"could not build the CUDA z-buffer kernels ({source}): {e}",
                fix="install nvcc and ninja matching torch's CUDA, or use --render.backend nvdiffrast / torch",
            ) from e
    return _EXTENSION


def _nvdiffrast_plugin():
    import nvdiffrast.torch.ops as ops

    return ops._get_plugin()


class _RasterAttributes(torch.autograd.Function):
    """pos (B,V,4) y-negated clip, tri (F,3) int32, visible face (B,H,W) int32 -> rast, rast_db, depth.
    Backward: nvdiffrast's rasteriser gradient, which only needs the positions, faces and these buffers."""

    @staticmethod
    def forward(ctx, pos, tri, visible, ext):
        rast, rast_db, depth = ext.attributes(pos, tri, visible)
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
        return g_pos, None, None, None


class _ShadeComposite(torch.autograd.Function):
    """Fused SH shading + compositing (``shade.cu``); see :func:`vhap.render.head.shade_composite_reference`."""

    @staticmethod
    def forward(ctx, normal_raw, albedo, covered, background, sh, consts, ext):
        rgba, diffuse = ext.shade_composite_fwd(normal_raw, albedo, covered, background, sh, consts)
        ctx.save_for_backward(normal_raw, albedo, covered, sh, consts)
        ctx.ext = ext
        return rgba, diffuse

    @staticmethod
    def backward(ctx, g_rgba, g_diffuse):
        normal_raw, albedo, covered, sh, consts = ctx.saved_tensors
        B, H, W, _ = normal_raw.shape
        g_rgba = normal_raw.new_zeros(B, H, W, 4) if g_rgba is None else g_rgba.contiguous()
        g_diffuse = torch.zeros_like(normal_raw) if g_diffuse is None else g_diffuse.contiguous()
        g_n, g_a, g_sh = ctx.ext.shade_composite_bwd(normal_raw, albedo, covered, sh, consts, g_rgba, g_diffuse)
        return g_n, g_a, None, None, g_sh, None, None


class _PerturbSelect(torch.autograd.Function):
    """Fused :func:`vhap.render.perturb.perturb_select_reference` (``perturb.cu``)."""

    @staticmethod
    def forward(ctx, flat, cid, r, u, grouped, starts, counts, rate_fg, rate_bg, ext):
        out, keep = ext.perturb_select(flat, cid, r, u, grouped, starts, counts, float(rate_fg), float(rate_bg))
        ctx.save_for_backward(keep)
        ctx.ext = ext
        return out

    @staticmethod
    def backward(ctx, g_out):
        (keep,) = ctx.saved_tensors
        return ctx.ext.perturb_keep_grad(g_out.contiguous(), keep), *([None] * 9)


class ZbufferRasterizer(NvdiffrastRasterizer):
    """The ``cuda`` backend (see the module docstring); same interface as the other backends."""

    name = "cuda"
    supports_mipmaps = True
    #: no host synchronisation in rasterize / interpolate / sample_texture / antialias (CUDA-graph safe)
    capturable = True

    def __init__(self):
        super().__init__()
        self.ext = load_extension()
        self._tri_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._flip_y: dict[str, torch.Tensor] = {}
        self._hashes: dict[tuple, Any] = {}

    def prepare(self, device: torch.device) -> None:
        """Load nvdiffrast's plugin (interpolate / texture / antialias kernels); no rasteriser context needed."""
        _nvdiffrast_plugin()

    # ------------------------------------------------------------------ helpers
    def _tri32(self, faces: torch.Tensor) -> torch.Tensor:
        """int32 contiguous copy of ``faces``, cached per tensor (identity, version) so no step converts it."""
        key = (id(faces), faces._version, str(faces.device))
        hit = self._tri_cache.get(key)
        if hit is None or hit[0] is not faces:
            if len(self._tri_cache) > 32:
                self._tri_cache.clear()
            hit = (faces, faces.to(torch.int32).contiguous())
            self._tri_cache[key] = hit
        return hit[1]

    def _flipped(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip positions with y negated (see the module docstring), contiguous float32 (B,V,4)."""
        key = str(clip.device)
        sign = self._flip_y.get(key)
        if sign is None:
            sign = torch.tensor([1.0, -1.0, 1.0, 1.0], device=clip.device)
            self._flip_y[key] = sign
        return (clip.float() * sign).contiguous()

    def _topology_hash(self, tri: torch.Tensor):
        key = (tri.data_ptr(), tuple(tri.shape), str(tri.device))
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) > 16:
                self._hashes.clear()
            h = (tri, self.dr.antialias_construct_topology_hash(tri))
            self._hashes[key] = h
        return h[1]

    # ------------------------------------------------------------------ fused shading
    def shade_composite(self, normal_raw, albedo, covered, background, sh):
        """Fused :func:`vhap.render.head.shade_composite_reference` (same outputs and gradients, one kernel
        forward and one backward instead of ~15 full-image passes each)."""
        from vhap.render.shading import _sh_constants

        if background.ndim == 4 and background.stride(0) == 0 and background.stride(1) == 0:
            background = background[0, 0, 0]  # a constant colour expanded to an image
        if background.ndim == 4 and background.shape[0] != normal_raw.shape[0] and background.stride(0) == 0:
            background = background[:1]
        return _ShadeComposite.apply(
            normal_raw.float().contiguous(),
            albedo.float().contiguous(),
            covered.contiguous(),
            background.float().contiguous(),
            sh.float().contiguous(),
            _sh_constants(normal_raw.device, torch.float32),
            self.ext,
        )

    # ------------------------------------------------------------------ fused perturbation
    def perturb_select(self, flat, cid, r, u, grouped, starts, counts, rate_fg, rate_bg):
        """Fused :func:`vhap.render.perturb.perturb_select_reference` (same values and gradients; one kernel
        each way instead of ~25 full-image passes, half of them on int64 index tensors)."""
        return _PerturbSelect.apply(
            flat.float().contiguous(),
            cid.contiguous(),
            r.float().contiguous(),
            u.float().contiguous(),
            grouped.contiguous(),
            starts.contiguous(),
            counts.contiguous(),
            rate_fg,
            rate_bg,
            self.ext,
        )

    # ------------------------------------------------------------------ rasterisation
    def rasterize(
        self, clip: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], cull_backfaces: bool = True
    ) -> Fragments:
        faces = self._checked_faces(clip, faces)
        H, W = int(image_size[0]), int(image_size[1])
        clip = clip.float().contiguous()
        tri = self._tri32(faces)
        with torch.no_grad():
            front = face_orientation(clip.detach(), faces) > 0
            keep = front.contiguous() if cull_backfaces else torch.empty(0, dtype=torch.bool, device=clip.device)
            visible = self.ext.visibility(clip.detach(), tri, keep, H, W)  # (B,H,W) int32, -1 empty
        pos = self._flipped(clip)
        rast, rast_db, depth = _RasterAttributes.apply(pos, tri, visible, self.ext)

        def barycentrics():
            u, v = rast[..., 0], rast[..., 1]
            return torch.stack([u, v, 1.0 - u - v], dim=-1) * (visible >= 0).unsqueeze(-1)

        native = {"backend": "cuda", "pos": pos, "tri": tri, "rast": rast, "rast_db": rast_db}
        return Fragments(
            tri_id=visible.long(),
            bary=Deferred(barycentrics),  # full-image passes that a tracker step never reads
            depth=depth,
            alpha=Deferred(lambda: (visible >= 0).unsqueeze(-1).float()),
            front=front,
            faces=faces,
            image_size=(H, W),
            native=native,
        )

    def _attr_and_tri(self, attr: torch.Tensor, frags: Fragments, attr_faces: torch.Tensor | None):
        nat = frags.native
        tri = nat["tri"] if attr_faces is None or attr_faces is frags.faces else self._tri32(attr_faces)
        attr = attr.float()
        if attr.ndim == 2:
            attr = attr.unsqueeze(0)
        B = frags.tri_id.shape[0]
        if attr.shape[0] == 1 and B > 1:
            # One copy per view instead of nvdiffrast's minibatch broadcast: the interpolation gradient is
            # accumulated with atomics into the attributes, and B views adding into a single copy contend
            # (H100, 16 × 512²: 2 ms per step for the UVs alone); the copy is B × V × C floats.
            attr = attr.expand(B, -1, -1)
        return attr.contiguous(), tri

    @staticmethod
    def _top_row_first(buffer: torch.Tensor) -> torch.Tensor:
        return buffer  # our raster is written top row first (y negated): nothing to flip

    def antialias(
        self, color: torch.Tensor, frags: Fragments, clip: torch.Tensor, faces: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,H,W,C) top-origin colour -> antialiased colour (nvdiffrast ``antialias`` on our raster)."""
        nat = frags.native
        tri = nat["tri"]
        return self.dr.antialias(
            color.float().contiguous(),
            nat["rast"],
            self._flipped(clip),
            tri,
            topology_hash=self._topology_hash(tri),
        )
