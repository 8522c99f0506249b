"""nvdiffrast (CUDA) backend adapter, and the base of every backend that uses nvdiffrast's attribute kernels.

Works with upstream nvdiffrast 0.3.3 / 0.4.0 and the PyPI wheel ``diffrp-nvdiffrast`` (= nvdiffrast 0.3.3,
JIT-compiled on first use; needs nvcc and ninja).

On torch >= 2.9 its plugin is imported through :func:`vhap.render.kernels.loader.register_built_modules`.

Conventions: nvdiffrast puts NDC y = -1 on buffer row 0; every buffer returned here is flipped to
row 0 = top, and colours passed to ``antialias`` are flipped back. Stock nvdiffrast has no backface
culling, so with ``cull_backfaces`` only each view's front-facing faces (CCW in GL NDC) are rasterised, in
nvdiffrast's *range mode* (one concatenated list of F triangles per view, one range per view; back faces are
made degenerate, so the layout and the host-side ranges are static and no step waits for a device copy).

:class:`NvdiffrastAttributeBackend` is what this backend and the ``cuda`` backend (``backends/cuda.py``, vhap's
own visibility kernels) share: interpolation, screen derivatives and texture sampling by nvdiffrast's kernels on a
raster in nvdiffrast's layout, and the once-per-mesh face check. Each says how attributes map onto its raster's
triangles and in which row order its raster is written.
"""

from __future__ import annotations

import abc
from typing import Any

import torch

from vhap.errors import VhapError
from vhap.render.backends.base import BackendCaps, Fragments, RenderBackend, check_raster_inputs, face_orientation
from vhap.render.kernels.loader import register_built_modules


def import_nvdiffrast():
    """``nvdiffrast.torch`` or None when it is not installed."""
    register_built_modules()
    try:
        import nvdiffrast.torch as dr
    except ImportError:
        return None
    return dr


def decode_triangle_ids(value: torch.Tensor) -> torch.Tensor:
    """nvdiffrast's float-coded (triangle id + 1): exact floats up to 2**24, bit-offset integers above."""
    small = value.round().long()
    large = value.contiguous().view(torch.int32).long() - 0x4A800000
    return torch.where(value <= 16777216.0, small, large)


class NvdiffrastAttributeBackend(RenderBackend):
    """Base of the backends whose :class:`Fragments` carry a raster in nvdiffrast's layout (``native["rast"]``,
    ``native["rast_db"]``): interpolation and texture sampling are nvdiffrast's kernels. Making one imports
    nvdiffrast and raises :class:`~vhap.errors.VhapError` where it is not installed."""

    def __init__(self):
        self.dr = import_nvdiffrast()
        if self.dr is None:
            raise VhapError(
                "nvdiffrast is not installed",
                fix="pip install diffrp-nvdiffrast ninja (needs CUDA and nvcc), or use backend='torch'",
            )
        self._faces_checked: dict[str, Any] = {}

    def prepare(self, device: torch.device) -> None:
        """Build/load nvdiffrast's plugin (interpolate / texture / antialias kernels)."""
        import nvdiffrast.torch.ops as ops

        ops._get_plugin()

    def _checked_faces(self, clip: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """``faces`` as int64 on the clip's device, validated against the vertex count once per (faces tensor,
        version, V): the bounds check reads the indices back from the device, which would otherwise be two host
        syncs per rasterisation. The validated tensor is kept referenced, so an identity match is reliable."""
        faces = faces.to(device=clip.device, dtype=torch.long)
        state = (faces._version, clip.shape[1])
        if self._faces_checked.get("faces") is not faces or self._faces_checked.get("state") != state:
            check_raster_inputs(clip, faces)
            self._faces_checked = {"faces": faces, "state": state}
        return faces

    @abc.abstractmethod
    def _attr_and_tri(
        self, attr: torch.Tensor, frags: Fragments, attr_faces: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B|1,V,C)|(V,C) attributes and their faces (default: the rasterised ones) -> attributes and int32
        triangles in the layout of the native raster."""

    @staticmethod
    @abc.abstractmethod
    def _top_row_first(buffer: torch.Tensor) -> torch.Tensor:
        """A (B,H,W,C) buffer of the native raster's row order in ours (row 0 = top)."""

    def interpolate(self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None) -> torch.Tensor:
        """(B,V,C)|(V,C) -> (B,H,W,C)."""
        attr_n, tri = self._attr_and_tri(attr, frags, faces)
        out, _ = self.dr.interpolate(attr_n, frags.native["rast"], tri)
        return self._top_row_first(out)

    def interpolate_with_derivatives(
        self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,V,C)|(V,C) -> (B,H,W,C) and its screen derivatives (B,H,W,2C)."""
        nat = frags.native
        attr_n, tri = self._attr_and_tri(attr, frags, faces)
        out, out_da = self.dr.interpolate(attr_n, nat["rast"], tri, rast_db=nat["rast_db"], diff_attrs="all")
        return self._top_row_first(out), self._top_row_first(out_da)

    def sample_texture(
        self, tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None = None, filter_mode: str = "auto"
    ) -> torch.Tensor:
        """tex (B|1,C,Ht,Wt), uv (B,H,W,2) -> (B,H,W,C). Trilinear mipmapping when ``uv_da`` is given and
        ``filter_mode`` is "auto" / "linear-mipmap-linear"; bilinear otherwise."""
        tex_n = tex.float().permute(0, 2, 3, 1).contiguous()
        if uv_da is not None and filter_mode in ("auto", "linear-mipmap-linear"):
            return self.dr.texture(
                tex_n, uv.contiguous(), uv_da.contiguous(), filter_mode="linear-mipmap-linear", boundary_mode="clamp"
            )
        return self.dr.texture(tex_n, uv.contiguous(), filter_mode="linear", boundary_mode="clamp")


class NvdiffrastBackend(NvdiffrastAttributeBackend):
    """nvdiffrast with a ``RasterizeCudaContext`` per device."""

    #: not capturable: nvdiffrast's CUDA rasteriser reads its bin counters back to the host on every call
    caps = BackendCaps(name="nvdiffrast", capturable=False, mipmaps=True, fused_kernels=False)

    def __init__(self):
        super().__init__()
        self._contexts: dict[str, Any] = {}
        self._layouts: dict[tuple, dict] = {}

    def prepare(self, device: torch.device) -> None:
        """Build/load nvdiffrast's plugin and this device's rasteriser context (see ``MeshRenderer.prepare``)."""
        super().prepare(device)
        self.context(device)

    def context(self, device: torch.device):
        key = str(device)
        if key not in self._contexts:
            self._contexts[key] = self.dr.RasterizeCudaContext(device=device)
        return self._contexts[key]

    # ------------------------------------------------------------------ rasterisation
    def _range_layout(self, B: int, F: int, V: int, device: torch.device) -> dict:
        """Static layout of the culled range-mode raster: view b owns triangles [b·F, (b+1)·F). Built once per
        (B, F, V): the ranges live on the host (nvdiffrast needs them there) and never change, so culling
        costs no device→host copy."""
        key = (B, F, V, str(device))
        lay = self._layouts.get(key)
        if lay is None:
            ar_b = torch.arange(B, device=device)
            lay = {
                "ranges": torch.stack([torch.arange(B) * F, torch.full((B,), F)], 1).to(torch.int32),
                "vert_offset": (ar_b * V).view(B, 1, 1),
                "face_map": torch.arange(F, device=device).repeat(B),
                "view_map": ar_b.repeat_interleave(F),
            }
            self._layouts[key] = lay
        return lay

    def rasterize(
        self, clip: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], cull_backfaces: bool = True
    ) -> Fragments:
        if clip.ndim != 3 or faces.ndim != 2:
            check_raster_inputs(clip, faces)
        faces = self._checked_faces(clip, faces)
        B, V, _ = clip.shape
        H, W = int(image_size[0]), int(image_size[1])
        clip = clip.float()
        with torch.no_grad():
            front = face_orientation(clip.detach(), faces) > 0
        ctx = self.context(clip.device)
        native: dict[str, Any] = {"cull": cull_backfaces, "V": V}
        if cull_backfaces:
            # Every view gets all F triangles; back faces become degenerate (v0, v0, v0), which the rasteriser
            # never covers. Same pixels as dropping them, but a fixed size: no nonzero() and host copy.
            F = faces.shape[0]
            lay = self._range_layout(B, F, V, clip.device)
            tri_all = faces.unsqueeze(0) + lay["vert_offset"]  # (B,F,3)
            tri = torch.where(front.unsqueeze(-1), tri_all, tri_all[..., :1].expand(-1, -1, 3))
            tri = tri.reshape(B * F, 3).to(torch.int32).contiguous()
            pos = clip.reshape(B * V, 4).contiguous()
            rast, rast_db = self.dr.rasterize(ctx, pos, tri, (H, W), ranges=lay["ranges"], grad_db=True)
            native.update(tri=tri, face_map=lay["face_map"], view_map=lay["view_map"])
        else:
            tri = faces.to(torch.int32).contiguous()
            pos = clip.contiguous()
            rast, rast_db = self.dr.rasterize(ctx, pos, tri, (H, W), grad_db=True)
            native.update(tri=tri, face_map=torch.arange(faces.shape[0], device=clip.device))
        native.update(rast=rast, rast_db=rast_db)
        native_id = decode_triangle_ids(rast[..., 3].detach()) - 1
        covered = native_id >= 0
        tri_id = torch.where(covered, native["face_map"][native_id.clamp(min=0)], torch.full_like(native_id, -1))
        u, v = rast[..., 0], rast[..., 1]
        bary = torch.stack([u, v, 1.0 - u - v], dim=-1) * covered.unsqueeze(-1)
        with torch.no_grad():
            w_attr = pos[..., 3:4].contiguous()
            depth, _ = self.dr.interpolate(w_attr, rast.detach(), tri)
            depth = depth[..., 0] * covered
        bary = bary.flip(1)
        return Fragments(
            tri_id=tri_id.flip(1),
            depth=depth.flip(1),
            front=front,
            faces=faces,
            image_size=(H, W),
            compute_bary=lambda: bary,
            native=native,
        )

    def _attr_and_tri(self, attr: torch.Tensor, frags: Fragments, attr_faces: torch.Tensor | None):
        """Attributes and triangles in the layout of the native raster (range or instanced mode)."""
        nat = frags.native
        B = frags.tri_id.shape[0]
        same_topology = attr_faces is None or attr_faces is frags.faces
        attr_faces = frags.faces if attr_faces is None else attr_faces.to(device=attr.device, dtype=torch.long)
        n_attr = attr.shape[-2]
        attr = attr.float()
        if nat["cull"]:
            flat = attr.expand(B, n_attr, attr.shape[-1]).reshape(B * n_attr, -1).contiguous()
            if same_topology and n_attr == nat["V"]:
                return flat, nat["tri"]
            tri = (attr_faces[nat["face_map"]] + nat["view_map"].unsqueeze(1) * n_attr).to(torch.int32).contiguous()
            return flat, tri
        return attr.contiguous(), attr_faces.to(torch.int32).contiguous()

    @staticmethod
    def _top_row_first(buffer: torch.Tensor) -> torch.Tensor:
        """nvdiffrast's row 0 is the bottom: flipped."""
        return buffer.flip(1)

    def antialias(
        self, color: torch.Tensor, frags: Fragments, clip: torch.Tensor, faces: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,H,W,C) top-origin colour -> antialiased colour (nvdiffrast ``antialias``)."""
        nat = frags.native
        B, V = clip.shape[:2]
        if nat["cull"]:
            pos = clip.float().reshape(B * V, 4).contiguous()
            tri = nat["tri"]
        else:
            pos = clip.float().contiguous()
            tri = nat["tri"]
        out = self.dr.antialias(color.float().flip(1).contiguous(), nat["rast"], pos, tri)
        return out.flip(1)
