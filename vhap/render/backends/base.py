"""The render-backend seam: what every rasterisation backend is (:class:`RenderBackend`), declares
(:class:`BackendCaps`) and returns (:class:`Fragments`), plus the geometry helpers the backends share.

Orientation: a triangle is *front-facing* in a view when its vertices are counter-clockwise in OpenGL NDC
(x right, y up) — for meshes whose faces are CCW seen from outside (FLAME's convention) this is the
outside facing the camera. Row 0 of every buffer is the top of the image.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import torch


@dataclass
class Fragments:
    """Per-pixel rasterisation result for a batch of B views at (H, W).

    Attributes:
        tri_id: (B,H,W) int64 face index into ``faces``, -1 where no face is visible.
        depth: (B,H,W) camera depth (clip w, metres along the optical axis) of the visible surface, 0 if empty.
        front: (B,F) bool, faces that are front-facing (CCW in GL NDC) in each view.
        faces: (F,3) int64 the faces that were rasterised.
        image_size: (H, W).
        compute_bary: returns :attr:`bary`; called on its first read only (a backend whose callers rarely need
            the barycentrics, like the tracker's photometric step, then never pays the full-image passes).
        native: backend-private data (e.g. nvdiffrast's unflipped raster output) reused by later calls.
    """

    tri_id: torch.Tensor
    depth: torch.Tensor
    front: torch.Tensor
    faces: torch.Tensor
    image_size: tuple[int, int]
    compute_bary: Callable[[], torch.Tensor] = field(repr=False)
    native: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def bary(self) -> torch.Tensor:
        """(B,H,W,3) perspective-correct barycentric weights of the face's three vertices (zeros on empty pixels);
        differentiable w.r.t. the clip-space vertex positions."""
        return self.compute_bary()

    @property
    def mask(self) -> torch.Tensor:
        """(B,H,W) bool covered pixels."""
        return self.tri_id >= 0

    @cached_property
    def alpha(self) -> torch.Tensor:
        """(B,H,W,1) coverage, 1 where a face is visible (the dtype of :attr:`depth`)."""
        return self.mask.unsqueeze(-1).to(self.depth.dtype)


@dataclass(frozen=True)
class BackendCaps:
    """What a backend can do, declared by the backend (never probed).

    Attributes:
        name: the backend's name in ``--render.backend`` ("torch", "nvdiffrast", "cuda").
        capturable: rendering never synchronises with the host, so a step that renders can be recorded as a
            CUDA graph.
        mipmaps: :meth:`RenderBackend.interpolate_with_derivatives` returns screen derivatives and
            :meth:`RenderBackend.sample_texture` filters trilinearly with them.
        fused_kernels: vhap's fused CUDA operations (:mod:`vhap.render.kernels`: shading, perturbation, image
            loss) are built and run on this backend's tensors; without it the pure-PyTorch references are used.
    """

    name: str
    capturable: bool
    mipmaps: bool
    fused_kernels: bool


class RenderBackend(abc.ABC):
    """One rasterisation backend: visibility plus the attribute operations on its :class:`Fragments`.

    All buffers are channels-last (B,H,W,C) with row 0 = top. A backend only reads :class:`Fragments` it made.
    """

    caps: ClassVar[BackendCaps]

    def prepare(self, device: torch.device) -> None:  # noqa: B027 (a no-op unless a backend has start-up work)
        """Load what rendering on ``device`` needs (compiled plugins, contexts) now rather than in the first call."""

    @abc.abstractmethod
    def rasterize(
        self, clip: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], cull_backfaces: bool = True
    ) -> Fragments:
        """(B,V,4) OpenGL clip positions, (F,3) faces -> :class:`Fragments` at (H, W)."""

    @abc.abstractmethod
    def interpolate(self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None) -> torch.Tensor:
        """(B,V,C) or (V,C) vertex attributes -> (B,H,W,C) perspective-correct interpolation (0 where empty).
        ``faces`` (F,3) index ``attr`` per rasterised face (default: the rasterised faces)."""

    @abc.abstractmethod
    def interpolate_with_derivatives(
        self, attr: torch.Tensor, frags: Fragments, faces: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`interpolate` and the screen derivatives (B,H,W,2C) of the result, or None where the backend
        has no mipmapping (``caps.mipmaps`` False)."""

    @abc.abstractmethod
    def sample_texture(
        self, tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None = None, filter_mode: str = "auto"
    ) -> torch.Tensor:
        """(B|1,C,Ht,Wt) texture (row 0 = v 0), (B,H,W,2) uv in [0,1] -> (B,H,W,C). Trilinear mipmapping when the
        backend has it, ``uv_da`` is given and ``filter_mode`` is "auto"/"linear-mipmap-linear"; else bilinear."""

    @abc.abstractmethod
    def antialias(
        self, color: torch.Tensor, frags: Fragments, clip: torch.Tensor, faces: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B,H,W,C) -> antialiased (B,H,W,C); gradients reach ``clip`` through silhouette edges."""


def face_orientation(clip: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B,V,4) clip, (F,3) faces -> (B,F) signed doubled area of each face in GL NDC (y up).

    Positive = counter-clockwise = front-facing. Computed from the homogeneous determinant
    det[[x0,y0,w0],[x1,y1,w1],[x2,y2,w2]] / (w0 w1 w2), which equals the NDC area for vertices in front of
    the camera and keeps the hardware's sign convention otherwise.
    """
    tri = clip[:, faces]  # (B,F,3,4)
    x, y, w = tri[..., 0], tri[..., 1], tri[..., 3]
    det = (
        x[..., 0] * (y[..., 1] * w[..., 2] - y[..., 2] * w[..., 1])
        - y[..., 0] * (x[..., 1] * w[..., 2] - x[..., 2] * w[..., 1])
        + w[..., 0] * (x[..., 1] * y[..., 2] - x[..., 2] * y[..., 1])
    )
    return det / (w[..., 0] * w[..., 1] * w[..., 2])


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """(F,3) faces -> (F,3) index of the face across edge k = (v_k, v_{k+1}), -1 for boundary or
    non-manifold edges (shared by more than two faces). Vectorised (sort of undirected edge keys)."""
    F = faces.shape[0]
    device = faces.device
    v0 = faces
    v1 = faces.roll(-1, dims=1)
    lo = torch.minimum(v0, v1).reshape(-1)
    hi = torch.maximum(v0, v1).reshape(-1)
    n_verts = int(faces.max().item()) + 1 if F else 1
    key = lo * n_verts + hi
    order = torch.argsort(key)
    sorted_key = key[order]
    # Group sizes of equal keys.
    _, inverse, counts = torch.unique_consecutive(sorted_key, return_inverse=True, return_counts=True)
    group_size = counts[inverse]
    # For groups of exactly 2, the partner is the other element of the pair.
    pos = torch.arange(sorted_key.numel(), device=device)
    same_next = torch.zeros_like(sorted_key, dtype=torch.bool)
    same_next[:-1] = sorted_key[1:] == sorted_key[:-1]
    partner_pos = torch.where(same_next, pos + 1, pos - 1)
    partner_face = order[partner_pos.clamp(0, sorted_key.numel() - 1)] // 3
    partner_face = torch.where(group_size == 2, partner_face, torch.full_like(partner_face, -1))
    out = torch.empty_like(partner_face)
    out[order] = partner_face
    return out.reshape(F, 3)


def silhouette_edges(front: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """(B,F) front flags, (F,3) neighbours -> (B,F,3) bool: edge k of face f is a silhouette edge in view b
    (no neighbour, or the neighbour faces the other way)."""
    has_nb = neighbours >= 0
    nb_front = front[:, neighbours.clamp(min=0)]  # (B,F,3)
    return ~has_nb.unsqueeze(0) | (nb_front != front.unsqueeze(-1))


def clip_to_screen(clip: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(…,4) clip -> (…,2) continuous top-origin pixel coordinates."""
    H, W = image_size
    inv_w = 1.0 / clip[..., 3:4]
    x = (clip[..., 0:1] * inv_w + 1.0) * (0.5 * W)
    y = (1.0 - clip[..., 1:2] * inv_w) * (0.5 * H)
    return torch.cat([x, y], dim=-1)


def check_raster_inputs(clip: torch.Tensor, faces: torch.Tensor) -> None:
    from vhap.errors import VhapError

    if clip.ndim != 3 or clip.shape[-1] != 4:
        raise VhapError(f"rasterize expects clip positions (B,V,4), got {tuple(clip.shape)}", fix="use Cameras.to_clip")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise VhapError(f"rasterize expects faces (F,3), got {tuple(faces.shape)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= clip.shape[1]):
        raise VhapError(
            f"faces index vertices outside [0, {clip.shape[1]})", fix="pass faces of the same mesh as the vertices"
        )
