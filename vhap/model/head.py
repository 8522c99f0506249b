"""The head model as a differentiable, batched torch module (VHAP_SPEC §2.2–2.6).

Parameters (B = batch / frames): shape (NS,) or (B,NS) — usually shared; expr (B,NE); rotation, neck_pose,
jaw_pose (B,3) axis-angles; eyes_pose (B,6) (left eye then right eye); translation (B,3);
static_offset (1,V,3) and dynamic_offset (B,V,3) in canonical space (added before the joint regressor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vhap.errors import VhapError
from vhap.model.assets import HeadAssets
from vhap.model.lbs import barycentric_points, lbs
from vhap.model.regions import RegionSet


@dataclass
class HeadOutput:
    """verts (B,V,3) posed world; verts_cano (B,V,3) canonical (shaped + offsets, before pose correctives and
    skinning); joints (B,5,3) posed; landmarks (B,70,3) iBUG-68 + 2 eyes; landmarks_mp (B,K,3) | None."""

    verts: torch.Tensor
    verts_cano: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor | None
    landmarks_mp: torch.Tensor | None


def _batch_size(*inputs) -> int:
    """The batch size B of the forward: the largest leading size among the batched (≥ 2-D) inputs, else 1."""
    batch = 1
    for t in inputs:
        if t is not None and torch.as_tensor(t).dim() >= 2:
            batch = max(batch, int(t.shape[0]))
    return batch


class HeadModel(nn.Module):
    """FLAME-structured head model with optional teeth.

    Bases are zero-padded to ``n_shape`` / ``n_expr`` when the assets have fewer: extra coefficients are
    accepted and have no effect (zero gradient). Only the real bases take part in the matmul, which keeps
    the forward fast.
    """

    def __init__(
        self,
        assets: HeadAssets,
        n_shape: int = 300,
        n_expr: int = 100,
        add_teeth: bool = True,
        reproduce_half_quirk: bool = False,
    ):
        super().__init__()
        if n_shape < 0 or n_expr < 0:
            raise VhapError(f"n_shape / n_expr must be ≥ 0, got {n_shape} / {n_expr}", fix="use e.g. 300 / 100")
        self.assets_name = assets.name
        self.num_head_verts = assets.num_verts
        self.num_head_faces = assets.num_faces
        if add_teeth:
            from vhap.model.teeth import add_teeth as _add_teeth

            assets = _add_teeth(assets, reproduce_half_quirk=reproduce_half_quirk)
        self.has_teeth = add_teeth
        self.n_shape, self.n_expr = int(n_shape), int(n_expr)
        self.num_verts = assets.num_verts
        ks, ke = min(self.n_shape, assets.num_shape), min(self.n_expr, assets.num_expr)
        self._k_shape, self._k_expr = ks, ke
        self.parents = [int(p) for p in assets.parents]

        f32 = torch.float32
        v = self.num_verts

        def buf(name: str, array, dtype=f32):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype), persistent=False)

        buf("v_template", assets.v_template)
        # (ks + ke, V·3): one matmul maps [shape; expr] coefficients to displacements
        bases = np.concatenate([assets.shapedirs[:, :, :ks], assets.exprdirs[:, :, :ke]], axis=2)
        buf("blend_basis", bases.reshape(v * 3, ks + ke).T)
        buf("posedirs", assets.posedirs.reshape(v * 3, -1).T)  # (36, V·3)
        buf("J_regressor", assets.J_regressor)
        buf("lbs_weights", assets.lbs_weights)
        buf("faces", assets.faces, torch.int64)
        buf("uvs", assets.uvs)
        buf("uv_faces", assets.uv_faces, torch.int64)
        tex = assets.base_texture if assets.base_texture is not None else np.full((8, 8, 3), 0.7, np.float32)
        buf("base_texture", tex.transpose(2, 0, 1))  # (3, Ht, Wt), row 0 = top
        lmk = assets.landmarks_ibug
        buf("lmk_face_idx", np.zeros(0) if lmk is None else lmk.face_idx, torch.int64)
        buf("lmk_bary", np.zeros((0, 3)) if lmk is None else lmk.bary_coords)
        mp = assets.landmarks_mediapipe
        self.has_mediapipe = mp is not None
        buf("mp_face_idx", np.zeros(0) if mp is None else mp.face_idx, torch.int64)
        buf("mp_bary", np.zeros((0, 3)) if mp is None else mp.bary_coords)
        buf("mp_landmark_ids", np.zeros(0) if mp is None else mp.landmark_ids, torch.int64)
        self.regions = RegionSet(assets.regions, assets.faces, assets.uv_faces, assets.uvs, num_verts=v)
        self._lmk_subset_cache: dict[str, dict[str, torch.Tensor]] = {}  # per device, see _landmark_subset

    # ------------------------------------------------------------------ helpers
    @property
    def faces_no_teeth(self) -> torch.Tensor:
        """(F0,3) the head's own faces (VHAP computes its Laplacian on these)."""
        return self.faces[: self.num_head_faces]

    def _batch(self, name: str, value, width: int, batch: int) -> torch.Tensor:
        if value is None:
            return self.v_template.new_zeros(batch, width)
        value = torch.as_tensor(value, dtype=self.v_template.dtype, device=self.v_template.device)
        if value.dim() == 1:
            value = value[None]
        if value.dim() != 2 or value.shape[1] > width or (width in (3, 6) and value.shape[1] != width):
            raise VhapError(f"{name} has shape {tuple(value.shape)}, expected (B, {width})", fix="check the inputs")
        if value.shape[1] < width:  # fewer coefficients than the model has: the rest are zero
            value = torch.nn.functional.pad(value, (0, width - value.shape[1]))
        if value.shape[0] == 1 and batch > 1:
            value = value.expand(batch, -1)
        elif value.shape[0] != batch:
            raise VhapError(f"{name} has batch {value.shape[0]}, others have {batch}", fix="check the inputs")
        return value

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        shape=None,
        expr=None,
        rotation=None,
        neck_pose=None,
        jaw_pose=None,
        eyes_pose=None,
        translation=None,
        static_offset=None,
        dynamic_offset=None,
        landmarks_only: bool = False,
    ) -> HeadOutput:
        """Pose the head; all inputs optional (zeros). See the module docstring for shapes.

        ``landmarks_only``: compute only the landmarks (``verts`` and ``verts_cano`` are then None). Only the few
        hundred vertices of the landmarks' triangles are blended and skinned — with the joints of the whole
        mesh, regressed from precomputed bases — which makes the tracker's landmark steps several times cheaper
        than posing all vertices; the values are those of the full forward.
        """
        if landmarks_only:
            return self._landmarks_only(
                shape, expr, rotation, neck_pose, jaw_pose, eyes_pose, translation, static_offset, dynamic_offset
            )
        batch = _batch_size(expr, rotation, neck_pose, jaw_pose, eyes_pose, translation, dynamic_offset, shape)
        shape = self._batch("shape", shape, self.n_shape, batch)
        expr = self._batch("expr", expr, self.n_expr, batch)
        coeffs = torch.cat([shape[:, : self._k_shape], expr[:, : self._k_expr]], dim=1)
        # padded coefficients beyond the real bases must still receive (zero) gradients → slicing does that
        v_cano = self.v_template + (coeffs @ self.blend_basis).view(batch, self.num_verts, 3)
        if static_offset is not None:
            v_cano = v_cano + self._offset("static_offset", static_offset, 1)
        if dynamic_offset is not None:
            v_cano = v_cano + self._offset("dynamic_offset", dynamic_offset, batch)
        pose = self._pose(rotation, neck_pose, jaw_pose, eyes_pose, batch)
        verts, joints = lbs(v_cano, pose, self.J_regressor, self.parents, self.posedirs, self.lbs_weights)
        if translation is not None:
            trans = self._batch("translation", translation, 3, batch)[:, None]
            verts, joints = verts + trans, joints + trans
        landmarks = (
            barycentric_points(verts, self.faces, self.lmk_face_idx, self.lmk_bary) if len(self.lmk_bary) else None
        )
        landmarks_mp = (
            barycentric_points(verts, self.faces, self.mp_face_idx, self.mp_bary) if self.has_mediapipe else None
        )
        return HeadOutput(verts=verts, verts_cano=v_cano, joints=joints, landmarks=landmarks, landmarks_mp=landmarks_mp)

    def _pose(self, rotation, neck_pose, jaw_pose, eyes_pose, batch: int) -> torch.Tensor:
        return torch.cat(
            [
                self._batch("rotation", rotation, 3, batch),
                self._batch("neck_pose", neck_pose, 3, batch),
                self._batch("jaw_pose", jaw_pose, 3, batch),
                self._batch("eyes_pose", eyes_pose, 6, batch),
            ],
            dim=1,
        )

    def _landmark_subset(self) -> dict[str, torch.Tensor]:
        """Per-device cache of what :meth:`_landmarks_only` needs: the landmark triangles' vertices ``ids`` and
        their slices of the bases, the triangles re-indexed into that subset, and the joints' bases."""
        key = str(self.v_template.device)
        cache = self._lmk_subset_cache
        if key not in cache:
            tri_ibug = self.faces[self.lmk_face_idx]  # (K,3)
            tri_mp = self.faces[self.mp_face_idx]
            ids, inverse = torch.unique(torch.cat([tri_ibug.reshape(-1), tri_mp.reshape(-1)]), return_inverse=True)
            n_ibug = tri_ibug.numel()
            num_basis = self.blend_basis.shape[0]
            basis = self.blend_basis.view(num_basis, self.num_verts, 3)
            cache[key] = {
                "ids": ids,
                "tri_ibug": inverse[:n_ibug].view(-1, 3),
                "tri_mp": inverse[n_ibug:].view(-1, 3),
                "v_template": self.v_template[ids],
                "basis": basis[:, ids].reshape(num_basis, -1),
                "posedirs": self.posedirs.view(-1, self.num_verts, 3)[:, ids].reshape(self.posedirs.shape[0], -1),
                "lbs_weights": self.lbs_weights[ids],
                "joints_template": self.J_regressor @ self.v_template,  # (J,3)
                "joints_basis": torch.einsum("jv,kvc->kjc", self.J_regressor, basis).reshape(num_basis, -1),
            }
        return cache[key]

    def _landmarks_only(
        self, shape, expr, rotation, neck_pose, jaw_pose, eyes_pose, translation, static_offset, dynamic_offset
    ) -> HeadOutput:
        batch = _batch_size(expr, rotation, neck_pose, jaw_pose, eyes_pose, translation, dynamic_offset, shape)
        sub = self._landmark_subset()
        ids = sub["ids"]
        num_joints = self.J_regressor.shape[0]
        shape = self._batch("shape", shape, self.n_shape, batch)
        expr = self._batch("expr", expr, self.n_expr, batch)
        coeffs = torch.cat([shape[:, : self._k_shape], expr[:, : self._k_expr]], dim=1)
        v_sub = sub["v_template"] + (coeffs @ sub["basis"]).view(batch, -1, 3)
        joints_rest = sub["joints_template"] + (coeffs @ sub["joints_basis"]).view(batch, num_joints, 3)
        for name, value, b in (("static_offset", static_offset, 1), ("dynamic_offset", dynamic_offset, batch)):
            if value is not None:
                off = self._offset(name, value, b)  # (1|B,V,3)
                v_sub = v_sub + off.index_select(1, ids)
                joints_rest = joints_rest + torch.einsum("jv,bvc->bjc", self.J_regressor, off)
        pose = self._pose(rotation, neck_pose, jaw_pose, eyes_pose, batch)
        verts, joints = lbs(
            v_sub, pose, self.J_regressor, self.parents, sub["posedirs"], sub["lbs_weights"], joints_rest=joints_rest
        )
        if translation is not None:
            trans = self._batch("translation", translation, 3, batch)[:, None]
            verts, joints = verts + trans, joints + trans
        every = lambda tri: torch.arange(tri.shape[0], device=tri.device)  # noqa: E731
        landmarks = (
            barycentric_points(verts, sub["tri_ibug"], every(sub["tri_ibug"]), self.lmk_bary)
            if len(self.lmk_bary)
            else None
        )
        landmarks_mp = (
            barycentric_points(verts, sub["tri_mp"], every(sub["tri_mp"]), self.mp_bary) if self.has_mediapipe else None
        )
        return HeadOutput(verts=None, verts_cano=None, joints=joints, landmarks=landmarks, landmarks_mp=landmarks_mp)

    def _offset(self, name: str, value, batch: int) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=self.v_template.dtype, device=self.v_template.device)
        if value.dim() == 2:
            value = value[None]
        if value.shape[-2:] != (self.num_verts, 3) or value.shape[0] not in (1, batch):
            raise VhapError(
                f"{name} has shape {tuple(value.shape)}, expected ({batch}, {self.num_verts}, 3)",
                fix="offsets must cover every vertex of the model (including teeth when they are on)",
            )
        return value
