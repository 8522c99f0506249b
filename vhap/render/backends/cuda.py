"""``cuda`` backend: vhap's z-buffer visibility kernels (``vhap/render/kernels/zbuffer.cu``) + nvdiffrast's
attribute operations, with vhap's fused shading, perturbation and image-loss kernels.

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
camera are dropped, as in the reference backend. The kernels are built when the backend is made
(:func:`vhap.render.kernels.load_kernels`; needs nvcc and ninja, like nvdiffrast's own JIT build).
"""

from __future__ import annotations

from typing import Any

import torch

from vhap.render.backends.base import BackendCaps, Fragments, face_orientation
from vhap.render.backends.nvdiffrast import NvdiffrastAttributeBackend
from vhap.render.kernels import load_kernels, raster_attributes, zbuffer_visibility


class CudaBackend(NvdiffrastAttributeBackend):
    """The ``cuda`` backend (see the module docstring): nvdiffrast's attribute operations and texture sampling
    (:class:`~vhap.render.backends.nvdiffrast.NvdiffrastAttributeBackend`) on the raster buffers of vhap's
    z-buffer kernels; no nvdiffrast rasteriser context. Making one builds (or loads) vhap's kernels and
    raises :class:`vhap.errors.VhapError` where they cannot be built."""

    #: no host synchronisation in rasterize / interpolate / sample_texture / antialias (CUDA-graph safe)
    caps = BackendCaps(name="cuda", capturable=True, mipmaps=True, fused_kernels=True)

    def __init__(self):
        super().__init__()
        load_kernels()
        self._tri_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._flip_y: dict[str, torch.Tensor] = {}
        self._hashes: dict[tuple, Any] = {}

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
            visible = zbuffer_visibility(clip.detach(), tri, keep, (H, W))  # (B,H,W) int32, -1 empty
        pos = self._flipped(clip)
        rast, rast_db, depth = raster_attributes(pos, tri, visible)

        def barycentrics():  # full-image passes that a tracker step never reads: computed on first read only
            u, v = rast[..., 0], rast[..., 1]
            return torch.stack([u, v, 1.0 - u - v], dim=-1) * (visible >= 0).unsqueeze(-1)

        native = {"pos": pos, "tri": tri, "rast": rast, "rast_db": rast_db}
        return Fragments(
            tri_id=visible.long(),
            depth=depth,
            front=front,
            faces=faces,
            image_size=(H, W),
            compute_bary=barycentrics,
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
            # accumulated with atomics into the attributes, and B views adding into a single copy contend;
            # the copy is only B × V × C floats.
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
