"""The tensors the tracker optimises (VHAP_SPEC §2.5), their optimiser groups and npz round trip."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vhap.errors import VhapError
from vhap.track.adam import Adam

#: parameter-group name (as used by stages) -> tensor names
GROUP_TENSORS: dict[str, tuple[str, ...]] = {
    "cam": ("focal_length",),
    "pose": ("rotation", "translation"),
    "shape": ("shape",),
    "joints": ("neck_pose", "jaw_pose", "eyes_pose"),
    "expr": ("expr",),
    "texture": ("tex_extra",),
    "lights": ("lights",),
    "static_offset": ("static_offset_vertex", "static_offset_field"),
    "dynamic_offset": ("dynamic_offset",),
}

#: per-frame tensors (first dimension = timestep)
PER_FRAME = ("expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation", "dynamic_offset")

#: tensors that are warm-started from the previous sample's last frame
WARM_START = ("expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation", "dynamic_offset")

SH_DC_INIT = math.sqrt(4.0 * math.pi)


class OffsetField(nn.Module):
    """A low-frequency static-offset field over some regions of the mesh (a coarse-to-fine displacement).

    The field is spanned by ``K`` smooth bumps ``B (V,K)``: one-hot vectors at control vertices spread evenly over
    the regions (farthest-point sampling, ``spacing`` apart), diffused over the mesh by ``iters`` steps of
    ``x ← (x + mean of neighbours) / 2`` and normalised to a partition of unity (a constant coefficient gives a
    constant displacement). Offsets = ``s ⊙ (B c) + (1 − s) ⊙ per-vertex`` with ``s`` (V,) 1 on the regions and
    their mask diffused a quarter as far beyond them: the field meets the per-vertex offsets outside the regions
    without a seam, and inside them nothing can form a lump or a one-vertex spike. One dense (V,K) product per forward.

    ``verts`` (V,3) template (metres), ``faces`` (F,3), ``mask`` (V,) bool.
    """

    def __init__(
        self, verts: np.ndarray, faces: np.ndarray, mask: np.ndarray, iters: int, spacing: float = 0.02, device="cpu"
    ):
        super().__init__()
        import scipy.sparse as sp

        if iters < 1:
            raise VhapError(f"offset field: {iters} diffusion steps", fix="use at least 1")
        verts = np.asarray(verts, dtype=np.float64)
        V = len(verts)
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        f = np.asarray(faces, dtype=np.int64)
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        e = np.unique(np.concatenate([e, e[:, ::-1]]), axis=0)
        adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(V, V))
        deg = np.asarray(adj.sum(1)).reshape(-1)
        # half-step averaging; isolated vertices keep their value
        step = 0.5 * sp.identity(V, format="csr") + 0.5 * sp.diags(1.0 / np.maximum(deg, 1.0)) @ adj
        step = step + sp.diags(0.5 * (deg == 0))
        controls = _farthest_points(verts, np.flatnonzero(mask), spacing)
        basis = sp.csr_matrix((np.ones(len(controls)), (controls, np.arange(len(controls)))), shape=(V, len(controls)))
        basis = basis.toarray()
        fade = mask.astype(np.float64)
        for i in range(int(iters)):
            basis = step @ basis
            if i < max(1, int(iters) // 4):
                fade = step @ fade
        basis /= np.maximum(basis.sum(1, keepdims=True), 1e-12)
        # fully in on every vertex of the regions, faded out only beyond them: per-vertex offsets left on the
        # regions' border rows (held there by nothing but the relaxed Laplacian) fold the surface
        fade = np.maximum(fade, mask)
        self.num_controls = len(controls)
        self.register_buffer("basis", torch.as_tensor(basis, dtype=torch.float32, device=device), persistent=False)
        fade_t = torch.as_tensor(np.clip(fade, 0.0, 1.0), dtype=torch.float32, device=device)
        self.register_buffer("fade", fade_t.reshape(1, V, 1), persistent=False)

    def forward(self, vertex: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """Per-vertex offsets (1,V,3) and field coefficients (1,K,3) -> the static offsets (1,V,3)."""
        return vertex * (1.0 - self.fade) + self.fade * (self.basis @ coeffs[0])[None]


def _farthest_points(verts: np.ndarray, candidates: np.ndarray, spacing: float) -> np.ndarray:
    """Greedy farthest-point subset of ``candidates`` (vertex ids) until every candidate is within ``spacing``."""
    if len(candidates) == 0:
        raise VhapError("offset field: its regions have no vertices", fix="check model.offset_lowpass_for")
    pts = verts[candidates]
    chosen = [0]
    dist = np.linalg.norm(pts - pts[0], axis=1)
    while dist.max() > spacing:
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[k], axis=1))
    return candidates[np.asarray(chosen)]


class TrackParams(nn.Module):
    """All optimisable tensors of a run as ``nn.Parameter``s (dense per-frame tensors, VHAP's layout).

    Shapes: ``shape (NS,)``, ``expr (T,NE)``, ``rotation/neck_pose/jaw_pose/translation (T,3)``,
    ``eyes_pose (T,6)``, ``static_offset (1,V,3)``, ``dynamic_offset (T,V,3)``, ``tex_extra (3,R,R)``,
    ``lights (9,3)`` (row 0 = sqrt(4 pi): uniform shading 1), ``focal_length (1,)`` (uncalibrated only).
    Optional tensors are absent (not zero-sized) when disabled.
    """

    def __init__(
        self,
        num_frames: int,
        num_verts: int,
        *,
        n_shape: int = 300,
        n_expr: int = 100,
        tex_resolution: int = 2048,
        calibrated: bool = False,
        use_static_offset: bool = True,
        use_dynamic_offset: bool = False,
        use_texture: bool = True,
        init_focal_length: float = 1.5,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        T, V = num_frames, num_verts
        z = lambda *s: nn.Parameter(torch.zeros(*s, device=device))
        self.shape = z(n_shape)
        self.expr = z(T, n_expr)
        self.rotation = z(T, 3)
        self.neck_pose = z(T, 3)
        self.jaw_pose = z(T, 3)
        self.eyes_pose = z(T, 6)
        self.translation = z(T, 3)
        lights = torch.zeros(9, 3, device=device)
        lights[0] = SH_DC_INIT
        self.lights = nn.Parameter(lights)
        self.register_buffer("lights_init", lights.clone(), persistent=False)
        # the static offsets: free per-vertex offsets, plus a low-frequency field once enable_offset_field is called
        self.static_offset_vertex = z(1, V, 3) if use_static_offset else None
        self.static_offset_field = None
        self.offset_field: OffsetField | None = None
        self.dynamic_offset = z(T, V, 3) if use_dynamic_offset else None
        self.tex_extra = z(3, tex_resolution, tex_resolution) if use_texture else None
        self.focal_length = (
            None if calibrated else nn.Parameter(torch.full((1,), float(init_focal_length), device=device))
        )
        self.num_frames = T

    # ------------------------------------------------------------------ static offsets
    def enable_offset_field(self, field: OffsetField) -> None:
        """Make the static offsets of ``field``'s regions a low-frequency field (before any optimiser exists)."""
        if self.static_offset_vertex is None:
            raise VhapError("a static-offset field needs static offsets", fix="set model.use_static_offset true")
        self.offset_field = field.to(self.static_offset_vertex.device)
        self.static_offset_field = nn.Parameter(self.static_offset_vertex.new_zeros(1, field.num_controls, 3))

    @property
    def static_offset(self) -> torch.Tensor | None:
        """(1,V,3) the static offsets the head model gets (the per-vertex parameter itself without a field)."""
        if self.offset_field is None or self.static_offset_vertex is None:
            return self.static_offset_vertex
        return self.offset_field(self.static_offset_vertex, self.static_offset_field)

    # ------------------------------------------------------------------ groups
    def tensors_of(self, groups: Iterable[str]) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of the given groups that exist in this run (unknown groups are an error)."""
        out = []
        for g in groups:
            if g not in GROUP_TENSORS:
                raise VhapError(f"unknown parameter group {g!r} in a stage", fix=f"use {sorted(GROUP_TENSORS)}")
            for name in GROUP_TENSORS[g]:
                p = getattr(self, name)
                if p is not None:
                    out.append((name, p))
        return out

    def optimizer(self, groups: Iterable[str], lr, scale: float = 1.0, shared_scale: float = 1.0) -> Adam | None:
        """A fresh Adam over ``groups`` with VHAP's per-tensor learning rates (§4.3) times ``scale``, and times
        ``shared_scale`` more for the tensors every frame shares (not in :data:`PER_FRAME`): one parameter group per
        tensor, fused kernel, state and learning rates on the parameters' device (CUDA-graph safe; see
        :mod:`vhap.track.adam`)."""
        lr_of = {
            "translation": lr.translation,
            "expr": lr.expr,
            "lights": lr.light,
            "focal_length": lr.camera,
            "static_offset_vertex": lr.static_offset,
            "static_offset_field": lr.static_offset,
            "dynamic_offset": lr.dynamic_offset,
        }
        param_groups = [
            {
                "params": [p],
                "lr": lr_of.get(name, lr.base) * scale * (1.0 if name in PER_FRAME else shared_scale),
                "name": name,
            }
            for name, p in self.tensors_of(groups)
        ]
        if not param_groups:
            return None
        return Adam(param_groups)

    # ------------------------------------------------------------------ batch views
    def frame_params(self, frame_idx: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """The head-model inputs of frames ``frame_idx (B,)``: shape (NS,), expr (B,NE), poses, offsets.

        Rows are taken with ``index_select``: its backward is an ``index_add`` (a scatter), where advanced indexing
        backpropagates through a sort of the indices on every step."""
        rows = lambda t: None if t is None else t.index_select(0, frame_idx)  # noqa: E731
        return {
            "shape": self.shape,
            "expr": rows(self.expr),
            "rotation": rows(self.rotation),
            "neck_pose": rows(self.neck_pose),
            "jaw_pose": rows(self.jaw_pose),
            "eyes_pose": rows(self.eyes_pose),
            "translation": rows(self.translation),
            "static_offset": self.static_offset,
            "dynamic_offset": rows(self.dynamic_offset),
        }

    @torch.no_grad()
    def warm_start(self, src: int, dst: Iterable[int], groups: Iterable[str] | None = None) -> None:
        """Copy frame ``src``'s per-frame parameters into frames ``dst`` (the next sample's start); ``groups``
        (parameter-group names, see :data:`GROUP_TENSORS`) limits the copy to their per-frame tensors
        (``None``: all of :data:`WARM_START`)."""
        dst = [d for d in dst if 0 <= d < self.num_frames]
        names = WARM_START if groups is None else tuple(n for n, _ in self.tensors_of(groups) if n in WARM_START)
        if not dst or not names:
            return
        idx = torch.as_tensor(dst, device=self.shape.device)
        for name in names:
            p = getattr(self, name)
            if p is not None:
                p[idx] = p[src].clone().unsqueeze(0).expand(len(dst), *p.shape[1:])

    # ------------------------------------------------------------------ npz
    def to_npz_dict(self, timestep_ids, image_size, head_model: str) -> dict[str, np.ndarray]:
        """VHAP's ``tracked_flame_params`` keys and shapes (§6.2) plus ``head_model``."""
        out: dict[str, np.ndarray] = {}
        for name in ("rotation", "translation", "neck_pose", "jaw_pose", "eyes_pose", "shape", "expr"):
            out[name] = getattr(self, name).detach().cpu().numpy().astype(np.float32)
        out["timestep_id"] = np.asarray([str(t) for t in timestep_ids])
        out["n_processed_frames"] = np.asarray(self.num_frames)
        out["image_size"] = np.asarray(image_size, dtype=np.int64)
        out["lights"] = self.lights.detach().cpu().numpy().astype(np.float32)
        if self.focal_length is not None:
            out["focal_length"] = self.focal_length.detach().cpu().numpy().astype(np.float32)
        if self.tex_extra is not None:
            out["tex_extra"] = self.tex_extra.detach().cpu().numpy().astype(np.float32)
        if self.static_offset is not None:
            out["static_offset"] = self.static_offset.detach().cpu().numpy().astype(np.float32)
        if self.dynamic_offset is not None:
            out["dynamic_offset"] = self.dynamic_offset.detach().cpu().numpy().astype(np.float32)
        out["head_model"] = np.asarray(head_model)
        return out

    @torch.no_grad()
    def load_npz(self, path: str | Path) -> list[str]:
        """Warm start from a ``tracked_flame_params*.npz``: copy what is present, row-wise up to the shorter
        length (VHAP §4.7). Returns the names that were loaded."""
        path = Path(path)
        if not path.is_file():
            raise VhapError("warm-start parameter file not found", path=path, fix="check model.flame_params_path")
        data = np.load(path)
        loaded = []
        names = ("shape", "lights", "focal_length", "tex_extra", "static_offset", *PER_FRAME)
        for name in names:
            # a loaded static offset is the per-vertex part (the field, if any, starts from zero on top of it)
            p = getattr(self, "static_offset_vertex" if name == "static_offset" else name, None)
            if p is None or name not in data.files:
                continue
            src = torch.as_tensor(np.asarray(data[name], dtype=np.float32), device=p.device)
            if name == "tex_extra" and src.shape != p.shape:
                src = torch.nn.functional.interpolate(src[None], size=p.shape[-2:], mode="bilinear")[0]
            if src.ndim != p.ndim:
                raise VhapError(f"'{name}' has shape {tuple(src.shape)}, expected {tuple(p.shape)}", path=path)
            sl = tuple(slice(0, min(a, b)) for a, b in zip(src.shape, p.shape, strict=True))
            p[sl] = src[sl]
            loaded.append(name)
        return loaded
