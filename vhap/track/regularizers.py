"""Regularisers of the tracking energy (VHAP_SPEC §4.4), precomputed once per run and applied per step.

All terms are pure tensor code (no host synchronisation); the mesh Laplacian is a sparse gather over a padded
neighbour table instead of VHAP's dense V×V matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from vhap.model.lbs import rodrigues


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (...,3) axis-angle -> (...,3,3) rotation (angle = ‖θ + 1e-8‖ as in FLAME; :func:`rodrigues`)."""
    return rodrigues(aa.reshape(-1, 3)).reshape(*aa.shape[:-1], 3, 3)


def neighbour_table(faces: np.ndarray, num_verts: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded one-ring table of a triangle mesh: ``(nbr (V,D) i64, weight (V,D) f32)`` with weight = 1/deg
    for real neighbours and 0 for padding (padding points at the vertex itself)."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    e = np.unique(e, axis=0)
    deg = np.bincount(e[:, 0], minlength=num_verts)
    D = max(int(deg.max()), 1)
    nbr = np.repeat(np.arange(num_verts)[:, None], D, axis=1)
    wgt = np.zeros((num_verts, D), np.float32)
    order = np.argsort(e[:, 0], kind="stable")
    e = e[order]
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    slot = np.arange(len(e)) - start[e[:, 0]]
    nbr[e[:, 0], slot] = e[:, 1]
    wgt[e[:, 0], slot] = 1.0 / deg[e[:, 0]]
    return nbr, wgt


def mirror_pairs(verts: np.ndarray, mask: np.ndarray, tol: float = 2e-3) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of ``mask`` (V,) and their mirror images (x -> -x) on a template ``verts`` (V,3) in metres:
    ``(ids (K,), mirror_ids (K,))``; vertices whose mirror image is no vertex within ``tol`` are left out."""
    from scipy.spatial import cKDTree

    ids = np.flatnonzero(mask)
    dist, idx = cKDTree(verts).query(verts[ids] * np.array([-1.0, 1.0, 1.0]))
    keep = dist < tol
    return ids[keep].astype(np.int64), idx[keep].astype(np.int64)


def uniform_laplacian_apply(x: torch.Tensor, nbr: torch.Tensor, wgt: torch.Tensor) -> torch.Tensor:
    """(L x)_i = mean of neighbours − x_i for x (B,V,C); isolated vertices give −x_i (VHAP's convention)."""
    B, V, C = x.shape
    # index_select, not x[:, nbr]: its backward is a scatter-add instead of a sort of all V·D indices per step
    gathered = x.index_select(1, nbr.reshape(-1)).view(B, *nbr.shape, C)  # (B,V,D,C)
    return (gathered * wgt[None, :, :, None]).sum(2) - x


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Mean squared vertical + mean squared horizontal neighbour difference of (…,H,W)."""
    dv = img[..., 1:, :] - img[..., :-1, :]
    dh = img[..., :, 1:] - img[..., :, :-1]
    return dv.square().mean() + dh.square().mean()


def joint_prior(neck: torch.Tensor, jaw: torch.Tensor, eyes: torch.Tensor, w_neck, w_jaw, w_eyes) -> torch.Tensor:
    """VHAP's joint prior: Σ_j w_j [mean((I − R(θ_j))²) + extras] with jaw extras
    10·mean(relu(−θ_x)) + 3·mean(θ_y² + θ_z²) and for each eye mean((θ_left − θ_right)²).

    The four rotations are built in one batched Rodrigues call (neck, jaw, left eye, right eye): the same values
    as four calls, with a quarter of the kernels forward and backward."""
    eye = torch.eye(3, device=neck.device, dtype=neck.dtype)
    left, right = eyes[:, :3], eyes[:, 3:]
    rot_dev = (eye - axis_angle_to_matrix(torch.stack([neck, jaw, left, right]))).square().mean(dim=(1, 2, 3))
    eye_sym = (left - right).square().mean()
    jaw_extra = 10 * torch.relu(-jaw[:, 0]).mean() + 3 * jaw[:, 1:].square().mean()
    loss = w_neck * rot_dev[0]
    loss = loss + w_jaw * (rot_dev[1] + jaw_extra)
    loss = loss + w_eyes * (rot_dev[2] + eye_sym) + w_eyes * (rot_dev[3] + eye_sym)
    return loss


def region_variance(x: torch.Tensor, ids: torch.Tensor, segment: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the vertices of each of K regions, for x (B,V,C): returns (B,K,C).

    ``ids`` (N,) the regions' vertex ids concatenated, ``segment`` (N,) the region of each, ``counts`` (K,) their
    sizes (≥ 2). One gather and two segment sums for all regions, instead of one indexed copy, variance and
    (sort-based) indexing backward per region."""
    B, _, C = x.shape
    K = counts.shape[0]
    vals = x.index_select(1, ids)  # (B,N,C)
    n = counts.to(x.dtype)[None, :, None]
    mean = x.new_zeros(B, K, C).index_add(1, segment, vals) / n
    dev = vals - mean.index_select(1, segment)
    return x.new_zeros(B, K, C).index_add(1, segment, dev.square()) / (n - 1)


class Regularizers:
    """Pre-computed, device-resident data for the regularisers of one run.

    ``vertex_masks``: region name -> (V,) bool over the model's vertices (teeth included); ``uv_mask``:
    (R,R) bool of the residual-texture clusters (``w.reg_tex_res_for``), row 0 = top.
    """

    def __init__(
        self,
        w,
        faces: np.ndarray,
        num_verts: int,
        vertex_masks: dict[str, np.ndarray],
        tex_res_mask: np.ndarray | None,
        tv_scale: float = 1.0,
        device="cpu",
        mirror: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        """``mirror``: ``(ids, mirror_ids)`` of :func:`mirror_pairs` over ``w.reg_offset_symmetry_for`` (needed
        when ``w.reg_offset_symmetry`` > 0)."""
        self.w = w
        nbr, wgt = neighbour_table(faces, num_verts)
        self.nbr = torch.as_tensor(nbr, device=device)
        self.wgt = torch.as_tensor(wgt, device=device)

        def weights(names, coef):
            v = torch.ones(num_verts, device=device)
            for n in names:
                m = vertex_masks.get(n)
                if m is not None:
                    v[torch.as_tensor(m, device=device)] = coef
            return v

        self.lap_weight = weights(w.reg_offset_lap_relax_for, w.reg_offset_lap_relax_coef)
        self.offset_weight = weights(w.reg_offset_relax_for, w.reg_offset_relax_coef)
        rigid = [
            np.flatnonzero(vertex_masks[n])
            for n in w.reg_offset_rigid_for
            if n in vertex_masks and int(np.sum(vertex_masks[n])) > 1
        ]
        # the rigid regions as one concatenated id list + region index per id (see region_variance)
        self.rigid_ids = torch.as_tensor(np.concatenate(rigid) if rigid else np.zeros(0, np.int64), device=device)
        self.rigid_segment = torch.as_tensor(
            np.repeat(np.arange(len(rigid)), [len(r) for r in rigid]) if rigid else np.zeros(0, np.int64),
            device=device,
        )
        self.rigid_counts = torch.as_tensor([len(r) for r in rigid], dtype=torch.int64, device=device)
        self.tex_res_mask = None if tex_res_mask is None else torch.as_tensor(tex_res_mask, device=device).float()
        self.tv_scale = tv_scale
        ids, mids = mirror if mirror is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self.sym_ids = torch.as_tensor(ids, device=device)
        self.sym_mirror = torch.as_tensor(mids, device=device)
        self.sym_flip = torch.tensor([-1.0, 1.0, 1.0], device=device)

    # ---------------------------------------------------------------------------------------------------
    def __call__(
        self,
        params,
        frame_idx: torch.Tensor,
        groups: set[str],
        *,
        tracking: bool,
        albedo: torch.Tensor | None = None,
        diffuse_detached: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """All active regularisers for a batch of frames ``frame_idx (B,)`` and the stage's ``groups``.

        ``tracking`` = the stage is a sequential/global tracking stage (temporal terms on). ``albedo``
        (1,3,R,R) full albedo (base + residual), ``diffuse_detached`` (B,H,W,3) shading with detached normals.
        Returns name -> weighted 0-dim tensor.
        """
        w = self.w
        out: dict[str, torch.Tensor] = {}
        T = params.num_frames
        prev = (frame_idx - 1).clamp(0, T - 1)
        # this batch's rows (index_select: backward is a scatter-add, not a sort of the indices as for t[frame_idx])
        rows = lambda t: t.index_select(0, frame_idx)  # noqa: E731
        if "shape" in groups and w.reg_shape:
            out["reg_shape"] = w.reg_shape * params.shape.square().mean()
        if "expr" in groups:
            expr = rows(params.expr)
            if w.reg_expr:
                out["reg_expr"] = w.reg_expr * expr.square().mean()
            if tracking and w.smooth_expr:
                out["smooth_expr"] = w.smooth_expr * (expr - params.expr[prev].detach()).square().mean()
        if "joints" in groups:
            neck, jaw, eyes = (
                params.neck_pose.index_select(0, frame_idx),
                params.jaw_pose.index_select(0, frame_idx),
                params.eyes_pose.index_select(0, frame_idx),
            )
            out["reg_joint"] = joint_prior(neck, jaw, eyes, w.reg_neck, w.reg_jaw, w.reg_eyes)
            if tracking:
                out["smooth_joint"] = (
                    w.smooth_neck * (neck - params.neck_pose[prev].detach()).square().mean()
                    + w.smooth_jaw * (jaw - params.jaw_pose[prev].detach()).square().mean()
                    + w.smooth_eyes * (eyes - params.eyes_pose[prev].detach()).square().mean()
                )
        if "pose" in groups and tracking:
            out["smooth_pose"] = (
                w.smooth_trans * (rows(params.translation) - params.translation[prev].detach()).square().mean()
                + w.smooth_rot * (rows(params.rotation) - params.rotation[prev].detach()).square().mean()
            )
        if "texture" in groups and params.tex_extra is not None:
            if w.reg_tex_tv and albedo is not None:
                out["reg_tex_tv"] = w.reg_tex_tv * self.tv_scale * tv_loss(albedo)
            if w.reg_tex_res_clusters and self.tex_res_mask is not None:
                out["reg_tex_res_clusters"] = (
                    w.reg_tex_res_clusters * (params.tex_extra.square() * self.tex_res_mask).mean()
                )
        if "lights" in groups:
            if w.reg_light:
                out["reg_light"] = w.reg_light * (params.lights - params.lights_init).square().mean()
            if w.reg_diffuse and diffuse_detached is not None:
                over = torch.relu(diffuse_detached.amax() - 1)
                colour = diffuse_detached.var(dim=-1).mean()
                out["reg_diffuse"] = w.reg_diffuse * (over + colour)
        use_static = "static_offset" in groups and params.static_offset is not None
        use_dynamic = "dynamic_offset" in groups and params.dynamic_offset is not None
        if use_static or use_dynamic:
            offset = 0.0
            if params.static_offset is not None:
                offset = params.static_offset
            if params.dynamic_offset is not None:
                offset = offset + rows(params.dynamic_offset)
            if w.reg_offset_lap:
                lap = uniform_laplacian_apply(offset, self.nbr, self.wgt).square().sum(-1)  # (B,V)
                out["reg_offset_lap"] = w.reg_offset_lap * (lap * self.lap_weight).mean()
            if w.reg_offset:
                out["reg_offset"] = w.reg_offset * (offset.abs() * self.offset_weight[:, None]).mean()
            if w.reg_offset_rigid and self.rigid_counts.numel():
                # Σ over regions of the variance of the region's offsets, averaged over frames and coordinates
                var = region_variance(offset, self.rigid_ids, self.rigid_segment, self.rigid_counts)  # (B,K,3)
                out["reg_offset_rigid"] = w.reg_offset_rigid * var.mean(dim=(0, 2)).sum()
            if use_static and w.reg_offset_symmetry and self.sym_ids.numel():
                so = params.static_offset
                diff = so.index_select(1, self.sym_ids) - so.index_select(1, self.sym_mirror) * self.sym_flip
                out["reg_offset_symmetry"] = w.reg_offset_symmetry * diff.square().sum(-1).mean()
            if use_dynamic and w.reg_offset_dynamic:
                dyn = params.dynamic_offset
                out["reg_offset_dynamic"] = w.reg_offset_dynamic * (rows(dyn) - dyn[prev]).square().mean()
        return out
