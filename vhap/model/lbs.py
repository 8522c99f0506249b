"""Linear blend skinning maths for FLAME-structured models (VHAP_SPEC §2.6). No I/O, pure torch.

Shapes: B batch, V vertices, J joints (5 for FLAME), P = 9·(J−1) pose features.
All functions are differentiable and work on any device / floating dtype.
"""

from __future__ import annotations

import torch

#: FLAME adds this to every axis-angle component before taking the norm, so the angle (and its gradient)
#: is well defined at θ = 0. Kept for numeric compatibility with FLAME / VHAP.
ANGLE_EPS = 1e-8


def rodrigues(rot_vecs: torch.Tensor) -> torch.Tensor:
    """Axis-angle (N, 3) → rotation matrices (N, 3, 3).

    angle = ‖θ + 1e-8‖ (FLAME's convention), axis = θ / angle, R = I + sin·K + (1 − cos)·K².
    """
    angle = torch.linalg.vector_norm(rot_vecs + ANGLE_EPS, dim=-1, keepdim=True)  # (N, 1)
    axis = rot_vecs / angle
    sin = torch.sin(angle)[..., None]
    cos = torch.cos(angle)[..., None]
    rx, ry, rz = axis.unbind(-1)
    zeros = torch.zeros_like(rx)
    skew = torch.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], dim=-1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)
    return eye + sin * skew + (1.0 - cos) * (skew @ skew)


def pose_feature(rot_mats: torch.Tensor) -> torch.Tensor:
    """(B, J, 3, 3) rotations → (B, 9·(J−1)) pose-corrective feature flatten(R_j − I), j ≥ 1 (root excluded)."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain local joint transforms along the kinematic tree.

    Args:
        rot_mats: (B, J, 3, 3) local rotations.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) parent index per joint, ``parents[0] == -1``, ``parents[j] < j``.

    Returns:
        posed_joints (B, J, 3) and skinning transforms (B, J, 4, 4): the world transform G_j of each joint
        with the rest-pose joint location removed, i.e. A_j·x = G_j·(x − J_j) for points x.
    """
    parents = [int(p) for p in parents]
    batch, num_joints = joints.shape[:2]
    # parents by basic integer indexing: indexing with the python list would copy it to the device per call
    parent_joints = torch.stack([joints[:, p] for p in parents[1:]], dim=1)  # (B, J-1, 3)
    rel_joints = torch.cat([joints[:, :1], joints[:, 1:] - parent_joints], dim=1)
    local = torch.cat([rot_mats, rel_joints[..., None]], dim=-1)  # (B, J, 3, 4)
    # homogeneous row (0, 0, 0, 1) made on the device (a python-list constant would be a host→device copy
    # per call, which also breaks CUDA-graph capture)
    bottom = torch.zeros_like(local[:, :, :1, :])
    bottom[..., 3] = 1.0
    local = torch.cat([local, bottom], dim=-2)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, num_joints):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    posed_joints = world[:, :, :3, 3]
    # remove the rest pose: translation t − R·J_j
    offset = world[:, :, :3, :3] @ joints[..., None]  # (B, J, 3, 1)
    skinning = world.clone()
    skinning[:, :, :3, 3] = world[:, :, :3, 3] - offset[..., 0]
    return posed_joints, skinning


def lbs(
    v_shaped: torch.Tensor,
    pose: torch.Tensor,
    J_regressor: torch.Tensor,  # noqa: N803 - FLAME's name
    parents: list[int] | torch.Tensor,
    posedirs: torch.Tensor,
    lbs_weights: torch.Tensor,
    joints_rest: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a shaped (canonical) mesh with linear blend skinning (VHAP_SPEC §2.6 steps 2–4).

    Args:
        v_shaped: (B, V, 3) canonical vertices (template + blendshapes + offsets).
        pose: (B, 3·J) axis-angles, joint by joint (root, neck, jaw, left eye, right eye for FLAME).
        J_regressor: (J, V) dense joint regressor.
        parents: (J,) kinematic tree.
        posedirs: (P, 3·V) pose-corrective bases, P = 9·(J−1); row p is the displacement field (V·3, x/y/z
            interleaved per vertex) for pose feature p.
        lbs_weights: (V, J) skinning weights.
        joints_rest: (B, J, 3) rest-pose joints when known (``J_regressor`` is then unused): lets a caller pose a
            subset of the vertices (e.g. only those the landmarks need) with the joints of the whole mesh.

    Returns:
        verts (B, V, 3) posed vertices and joints (B, J, 3) posed joint locations.
    """
    batch, num_verts = v_shaped.shape[:2]
    if joints_rest is None:
        joints = torch.einsum("jv,bvc->bjc", J_regressor, v_shaped)
    else:
        joints = joints_rest
    num_joints = joints.shape[1]
    rot_mats = rodrigues(pose.reshape(-1, 3)).reshape(batch, num_joints, 3, 3)
    v_posed = v_shaped + (pose_feature(rot_mats) @ posedirs).reshape(batch, num_verts, 3)
    posed_joints, skinning = rigid_transforms(rot_mats, joints, parents)
    # per-vertex 3×4 transforms as one matmul: (V, J) @ (B, J, 12) → (B, V, 12)
    per_vertex = (lbs_weights @ skinning[:, :, :3, :].reshape(batch, num_joints, 12)).reshape(batch, num_verts, 3, 4)
    verts = (per_vertex[..., :3] @ v_posed[..., None])[..., 0] + per_vertex[..., 3]
    return verts, posed_joints


def barycentric_points(verts: torch.Tensor, faces: torch.Tensor, face_idx: torch.Tensor, bary: torch.Tensor):
    """Points on a mesh from a barycentric embedding.

    verts (B, V, 3), faces (F, 3), face_idx (K,), bary (K, 3) → (B, K, 3).
    """
    corners = verts[:, faces[face_idx]]  # (B, K, 3, 3)
    return (corners * bary[None, :, :, None]).sum(dim=2)
