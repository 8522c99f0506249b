"""``MeshRenderer``: one rasterisation API over the render backends (:class:`vhap.render.backends.base.RenderBackend`):
``torch`` (pure PyTorch, any device), ``nvdiffrast`` and ``cuda`` (vhap's kernels + nvdiffrast's attribute ops)."""

from __future__ import annotations

import warnings

import torch

from vhap.errors import VhapError
from vhap.render.backends.base import BackendCaps, Fragments, RenderBackend
from vhap.render.backends.torch_raster import TorchBackend

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


def make_nvdiffrast_backend() -> RenderBackend:
    """The ``nvdiffrast`` backend (raises :class:`VhapError` when nvdiffrast is not installed)."""
    from vhap.render.backends.nvdiffrast import NvdiffrastBackend

    return NvdiffrastBackend()


def make_cuda_backend() -> RenderBackend:
    """The ``cuda`` backend (raises :class:`VhapError` when vhap's kernels do not build here)."""
    from vhap.render.backends.cuda import CudaBackend

    return CudaBackend()


class MeshRenderer:
    """Batched instanced rasterisation of one mesh topology in B views (B = views x frames).

    Args:
        backend: ``"torch"`` (any device), ``"nvdiffrast"`` (CUDA), ``"cuda"`` (vhap's z-buffer visibility kernels +
            nvdiffrast's attribute ops: no host synchronisation, so tracker steps can be recorded as CUDA graphs;
            :mod:`vhap.render.backends.cuda`) or ``"auto"`` (for CUDA tensors: ``cuda`` when nvdiffrast imports and
            vhap's kernels build, else ``nvdiffrast`` with a warning; torch otherwise; decided per call from the
            tensors' device).

    All buffers are channels-last (B,H,W,C) with row 0 = top. Calls that take :class:`Fragments` go to the backend
    of the fragments' device, which is the backend that made them.
    """

    def __init__(self, backend: str = "auto"):
        if backend not in BACKENDS:
            raise VhapError(f"unknown render backend {backend!r}", fix=f"use one of {', '.join(BACKENDS)}")
        self.backend = backend
        self._torch = TorchBackend()
        self._gpu: RenderBackend | None = None  # the backend for CUDA tensors, made on first use ("auto")
        if backend == "nvdiffrast":
            self._gpu = make_nvdiffrast_backend()
        elif backend == "cuda":
            self._gpu = make_cuda_backend()

    def backend_for(self, device: torch.device) -> RenderBackend:
        """The backend that renders tensors on ``device``."""
        if self.backend == "torch":
            return self._torch
        if self.backend in ("nvdiffrast", "cuda"):
            if device.type != "cuda":
                raise VhapError(
                    f"the {self.backend} backend needs CUDA tensors",
                    fix="move the inputs to CUDA or use backend='torch'",
                )
            return self._gpu
        if device.type == "cuda":
            if self._gpu is None and nvdiffrast_available():
                self._gpu = self._make_auto_gpu()
            if self._gpu is not None:
                return self._gpu
        return self._torch

    @staticmethod
    def _make_auto_gpu() -> RenderBackend:
        """The ``cuda`` backend, or ``nvdiffrast`` with a warning where vhap's kernels do not build."""
        try:
            return make_cuda_backend()
        except VhapError as e:
            warnings.warn(f"{e}; render backend 'auto' falls back to nvdiffrast (slower: no CUDA graphs)", stacklevel=3)
            return make_nvdiffrast_backend()

    def caps(self, device: torch.device) -> BackendCaps:
        """What the backend for ``device`` can do (CUDA-graph safety, mipmaps, vhap's fused kernels)."""
        return self.backend_for(torch.device(device)).caps

    def prepare(self, device: torch.device) -> None:
        """Load what the backend for ``device`` needs (nvdiffrast's compiled plugin, a rasteriser context) now
        rather than inside the first render: a run then books that start-up to its set-up, not to its first
        stage, and a missing or broken build fails before any work is done."""
        device = torch.device(device)
        self.backend_for(device).prepare(device)

    def _for_frags(self, frags: Fragments) -> RenderBackend:
        return self.backend_for(frags.tri_id.device)

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

    def interpolate_with_derivatives(
        self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`interpolate` and its screen derivatives (B,H,W,2C) for mipmapped texture sampling, or None where
        the backend has no mipmapping (``caps(device).mipmaps`` False)."""
        return self._for_frags(frags).interpolate_with_derivatives(attr, frags, faces)

    def sample_texture(
        self, tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None = None, filter_mode: str = "auto"
    ) -> torch.Tensor:
        """(B|1,C,Ht,Wt) texture (row 0 = v 0), (B,H,W,2) uv in [0,1] -> (B,H,W,C).

        ``filter_mode``: ``"linear"`` (bilinear) or ``"auto"`` (trilinear mipmapping where the backend has it and
        the UV screen derivatives ``uv_da`` from :meth:`interpolate_with_derivatives` are given; else bilinear).
        """
        return self.backend_for(uv.device).sample_texture(tex, uv, uv_da, filter_mode)

    def antialias(
        self, color: torch.Tensor, frags: Fragments, clip: torch.Tensor, faces: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,H,W,C) -> antialiased (B,H,W,C); gradients reach ``clip`` through silhouette edges (§3.8)."""
        return self._for_frags(frags).antialias(color, frags, clip, faces)
