"""``MeshRenderer``: one rasterisation API over the nvdiffrast (CUDA) and pure-PyTorch backends."""

from __future__ import annotations

import torch

from vhap.errors import VhapError
from vhap.render.backends.base import Fragments
from vhap.render.backends.torch_raster import TorchRasterizer

BACKENDS = ("auto", "torch", "nvdiffrast", "cuda")


def nvdiffrast_available() -> bool:
    """True when CUDA is present and the nvdiffrast adapter imports."""
    if not torch.cuda.is_available():
        return False
    try:
        from vhap.render.backends import nvdiffrast as _nv  # noqa: F401

        return _nv.import_nvdiffrast() is not None
    except Exception:  # pragma: no cover - any import problem means "not available"
        return False


class MeshRenderer:
    """Batched instanced rasterisation of one mesh topology in B views (B = views x frames).

    Args:
        backend: ``"torch"`` (any device), ``"nvdiffrast"`` (CUDA), ``"cuda"`` (our z-buffer visibility kernels +
            nvdiffrast's attribute ops: no host synchronisation, so tracker steps can be recorded as CUDA graphs;
            ``vhap.render.backends.zbuffer``) or ``"auto"`` (for CUDA tensors: ``cuda`` when nvdiffrast imports and
            our kernels build, else ``nvdiffrast`` with a warning; torch otherwise; decided per call from the
            tensors' device).

    All buffers are channels-last (B,H,W,C) with row 0 = top.
    """

    def __init__(self, backend: str = "auto"):
        if backend not in BACKENDS:
            raise VhapError(f"unknown render backend {backend!r}", fix=f"use one of {', '.join(BACKENDS)}")
        self.backend = backend
        self._torch = TorchRasterizer()
        self._nv = None
        self._zb = None
        if backend == "nvdiffrast":
            self._nv = self._make_nvdiffrast()
        elif backend == "cuda":
            from vhap.render.backends.zbuffer import ZbufferRasterizer

            self._zb = ZbufferRasterizer()

    @staticmethod
    def _make_nvdiffrast():
        from vhap.render.backends.nvdiffrast import NvdiffrastRasterizer

        return NvdiffrastRasterizer()

    def backend_for(self, device: torch.device) -> object:
        """The backend object used for tensors on ``device``."""
        if self.backend == "torch":
            return self._torch
        if self.backend in ("nvdiffrast", "cuda"):
            if device.type != "cuda":
                raise VhapError(
                    f"the {self.backend} backend needs CUDA tensors",
                    fix="move the inputs to CUDA or use backend='torch'",
                )
            return self._nv if self.backend == "nvdiffrast" else self._zb
        if device.type == "cuda":
            if self._zb is None and self._nv is None and nvdiffrast_available():
                self._zb, self._nv = self._make_auto_cuda()
            if self._zb is not None:
                return self._zb
            if self._nv is not None:
                return self._nv
        return self._torch

    def _make_auto_cuda(self):
        """(cuda backend, None), or (None, nvdiffrast backend) when our kernels do not build here."""
        from vhap.render.backends.zbuffer import ZbufferRasterizer

        try:
            return ZbufferRasterizer(), None
        except VhapError as e:
            import warnings

            warnings.warn(f"{e}; render backend 'auto' falls back to nvdiffrast (slower: no CUDA graphs)", stacklevel=3)
            return None, self._make_nvdiffrast()

    def prepare(self, device: torch.device) -> None:
        """Load what the backend for ``device`` needs (nvdiffrast's compiled plugin, a rasteriser context) now
        rather than inside the first render: a run then books that start-up to its set-up, not to its first
        stage, and a missing or broken build fails before any work is done."""
        backend = self.backend_for(torch.device(device))
        prepare = getattr(backend, "prepare", None)
        if prepare is not None:
            prepare(torch.device(device))

    def capturable(self, device: torch.device) -> bool:
        """True when rendering on ``device`` never synchronises with the host (CUDA-graph safe)."""
        return bool(getattr(self.backend_for(device), "capturable", False))

    def _for_frags(self, frags: Fragments):
        if frags.native.get("backend") == "cuda":
            return self._zb
        if frags.native.get("backend") == "nvdiffrast":
            return self.backend_for(frags.tri_id.device) if self._nv is not None else self._torch
        return self._torch

    # ------------------------------------------------------------------ API
    def rasterize(
        self, clip: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], cull_backfaces: bool = True
    ) -> Fragments:
        """(B,V,4) OpenGL clip positions (``Cameras.to_clip``), (F,3) faces -> :class:`Fragments` at (H, W).

        With ``cull_backfaces`` only faces counter-clockwise in GL NDC (front-facing) are rasterised.
        """
        return self.backend_for(clip.device).rasterize(clip, faces, image_size, cull_backfaces=cull_backfaces)

    def interpolate(self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None) -> torch.Tensor:
        """(B,V,C) or (V,C) vertex attributes -> (B,H,W,C) perspective-correct interpolation (0 where empty)."""
        return self._for_frags(frags).interpolate(attr, frags, faces)

    def sample_texture(
        self, tex: torch.Tensor, uv: torch.Tensor, frags: Fragments | None = None, filter_mode: str = "auto"
    ) -> torch.Tensor:
        """(B|1,C,Ht,Wt) texture (row 0 = v 0), (B,H,W,2) uv in [0,1] -> (B,H,W,C).

        ``filter_mode``: ``"linear"`` (bilinear) or ``"auto"`` (trilinear mipmapping where the backend has it:
        nvdiffrast with ``frags`` given, using the UV screen derivatives; else bilinear).
        """
        if frags is not None:
            return self._for_frags(frags).sample_texture(tex, uv, frags, filter_mode)
        return self.backend_for(uv.device).sample_texture(tex, uv, None, filter_mode)

    def antialias(
        self, color: torch.Tensor, frags: Fragments, clip: torch.Tensor, faces: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,H,W,C) -> antialiased (B,H,W,C); gradients reach ``clip`` through silhouette edges (§3.8)."""
        return self._for_frags(frags).antialias(color, frags, clip, faces)
