"""Mesh operators: area-weighted vertex normals (VHAP_SPEC §3.3) and the uniform Laplacian (§2.2)."""

from __future__ import annotations

import torch


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals (v1 − v0) × (v2 − v0): verts (B,V,3) or (V,3), faces (F,3) → (…,F,3)."""
    corners = verts[..., faces, :]  # (..., F, 3, 3)
    return torch.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :], dim=-1)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals; vertices without any (non-degenerate) face get (0, 0, 1).

    verts (B,V,3) or (V,3), faces (F,3) i64 counter-clockwise from outside → same shape as verts.
    """
    fn = face_normals(verts, faces)
    normals = torch.zeros_like(verts)
    idx = faces.reshape(-1)  # corner order: f0c0, f0c1, f0c2, f1c0, ...
    per_corner = fn.repeat_interleave(3, dim=-2)  # (..., 3F, 3)
    normals = normals.index_add(-2, idx, per_corner)
    length = torch.linalg.vector_norm(normals, dim=-1, keepdim=True)
    # (0,0,1) built on the device (no host->device copy inside the tracker's step)
    fallback = torch.zeros_like(normals[..., :1, :])
    fallback[..., 2] = 1.0
    is_zero = length <= 1e-20
    normals = torch.where(is_zero, fallback, normals)
    return normals / torch.where(is_zero, torch.ones_like(length), length)


def mesh_edges(faces: torch.Tensor) -> torch.Tensor:
    """Unique undirected edges (E,2) with i < j."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = torch.sort(e, dim=1).values
    return torch.unique(e, dim=0)


def uniform_laplacian(faces: torch.Tensor, num_verts: int) -> torch.Tensor:
    """Uniform Laplacian (V,V) as a coalesced sparse COO tensor: L[i,i] = −1, L[i,j] = 1/deg(i) per edge (i,j).

    (L·x)_i = mean of the neighbours of i − x_i. Vertices without edges (e.g. teeth when ``faces`` are the
    head's own faces, as in VHAP) have only the −1 on the diagonal.
    """
    faces = torch.as_tensor(faces, dtype=torch.int64)
    edges = mesh_edges(faces)
    rows = torch.cat([edges[:, 0], edges[:, 1]])
    cols = torch.cat([edges[:, 1], edges[:, 0]])
    degree = torch.zeros(num_verts, dtype=torch.float32).index_add_(0, rows, torch.ones(len(rows)))
    values = 1.0 / degree[rows]
    diag = torch.arange(num_verts)
    indices = torch.stack([torch.cat([rows, diag]), torch.cat([cols, diag])])
    values = torch.cat([values, -torch.ones(num_verts)])
    return torch.sparse_coo_tensor(indices, values, (num_verts, num_verts), check_invariants=False).coalesce()
