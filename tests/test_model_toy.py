"""A tiny FLAME-structured head for model tests (importable by tests/test_model_*.py)."""

from __future__ import annotations

import numpy as np

from vhap.model.assets import HeadAssets, LandmarkEmbedding


def toy_assets(num_shape: int = 4, num_expr: int = 3, seed: int = 0) -> HeadAssets:
    """12 vertices: 4 root/neck-weighted "skull", 4 jaw-weighted, 2 per eye; 6 faces; 5 joints (FLAME tree).

    Lip rings are given so the teeth can be built (15 ids each, repeated vertices are fine for the maths).
    """
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=0.05, size=(12, 3)).astype(np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [8, 9, 0], [10, 11, 1]])
    weights = np.zeros((12, 5), np.float32)
    weights[0:2, 0] = 1.0
    weights[2:4, 1] = 1.0
    weights[4:8, 2] = 1.0
    weights[8:10, 3] = 1.0
    weights[10:12, 4] = 1.0
    jreg = np.zeros((5, 12), np.float32)
    for j, ids in enumerate(([0, 1], [2, 3], [4, 5, 6, 7], [8, 9], [10, 11])):
        jreg[j, ids] = 1.0 / len(ids)
    ring_u = np.array([2] * 7 + [3] * 8)
    ring_l = np.array([4] * 7 + [5] * 8)
    return HeadAssets(
        name="toy",
        v_template=v,
        faces=faces,
        uvs=rng.uniform(size=(12, 2)),
        uv_faces=faces,
        shapedirs=rng.normal(scale=0.01, size=(12, 3, num_shape)),
        exprdirs=rng.normal(scale=0.01, size=(12, 3, num_expr)),
        posedirs=rng.normal(scale=0.01, size=(12, 3, 36)),
        J_regressor=jreg,
        lbs_weights=weights,
        parents=np.array([-1, 0, 1, 1, 1]),
        regions={"jaw": np.arange(4, 8), "lip_outside_ring_upper": ring_u, "lip_outside_ring_lower": ring_l},
        landmarks_ibug=LandmarkEmbedding(face_idx=[0, 2], bary_coords=[[1, 0, 0], [0.2, 0.3, 0.5]]),
        landmarks_mediapipe=None,
        base_texture=np.full((4, 4, 3), 0.5, np.float32),
    ).validate()


def test_toy_assets_are_valid_and_round_trip(tmp_path):
    assets = toy_assets()
    assets.save_npz(tmp_path / "toy.npz", compact=False)
    back = HeadAssets.load_npz(tmp_path / "toy.npz")
    for name in ("v_template", "faces", "shapedirs", "posedirs", "J_regressor", "lbs_weights", "parents"):
        assert np.array_equal(getattr(back, name), getattr(assets, name)), name
    assert back.regions.keys() == assets.regions.keys()
    assert np.array_equal(back.landmarks_ibug.bary_coords, assets.landmarks_ibug.bary_coords)
