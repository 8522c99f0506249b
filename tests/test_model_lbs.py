"""LBS known answers and gradient checks (VHAP_SPEC §2.6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_model_toy import toy_assets

from vhap.model.head import HeadModel
from vhap.model.lbs import lbs, pose_feature, rodrigues


def test_rodrigues_known_rotations():
    r = rodrigues(torch.tensor([[0.0, 0.0, math.pi / 2], [0.0, 0.0, 0.0], [math.pi, 0.0, 0.0]], dtype=torch.float64))
    z90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(r[0], z90, atol=1e-7)
    assert torch.allclose(r[1], torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(r[2], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)), atol=1e-7)
    # orthonormal with det 1 up to FLAME's 1e-8 angle guard (axis = θ / ‖θ + 1e-8‖ is not exactly unit)
    rr = rodrigues(torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(rr @ rr.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-7)
    assert torch.allclose(torch.linalg.det(rr), torch.ones(50, dtype=torch.float64), atol=1e-7)


def test_zero_pose_gives_shaped_template_exactly():
    assets = toy_assets()
    model = HeadModel(assets, n_shape=10, n_expr=5, add_teeth=False)
    shape = torch.tensor([0.5, -1.0, 2.0, 0.3, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0])  # last 6 hit zero padding
    expr = torch.tensor([[1.0, 0.0, -2.0, 5.0, 5.0]])
    out = model(shape=shape, expr=expr)
    expected = (
        assets.v_template
        + assets.shapedirs @ shape[:4].numpy().astype(np.float64)
        + assets.exprdirs @ expr[0, :3].numpy().astype(np.float64)
    )
    assert torch.allclose(out.verts[0], torch.as_tensor(expected, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(out.verts, out.verts_cano, atol=1e-7)
    # joints are regressed from the canonical mesh
    assert torch.allclose(out.joints[0], torch.as_tensor(assets.J_regressor @ expected, dtype=torch.float32), atol=1e-6)


def test_jaw_rotation_moves_only_jaw_vertices_about_the_jaw_joint():
    assets = toy_assets()
    assets.posedirs[:] = 0.0  # pure skinning, so the answer is a rigid rotation
    model = HeadModel(assets, n_shape=4, n_expr=3, add_teeth=False)
    angle = 0.3
    rest = model()
    out = model(jaw_pose=torch.tensor([[angle, 0.0, 0.0]]))
    jaw = assets.lbs_weights[:, 2] == 1.0
    assert torch.equal(out.verts[0, ~jaw], rest.verts[0, ~jaw])
    c, s = math.cos(angle), math.sin(angle)
    rot_x = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    j_jaw = rest.joints[0, 2]
    expected = (rest.verts[0, jaw] - j_jaw) @ rot_x.T + j_jaw
    assert torch.allclose(out.verts[0, jaw], expected, atol=1e-6)
    # eyes are children of the neck, not of the jaw: they do not move either
    assert torch.allclose(out.joints[0, 3:], rest.joints[0, 3:])


def test_translation_and_global_rotation():
    assets = toy_assets()
    model = HeadModel(assets, n_shape=4, n_expr=3, add_teeth=False)
    t = torch.tensor([[0.1, -0.2, 0.3]])
    rest, moved = model(), model(translation=t)
    assert torch.allclose(moved.verts, rest.verts + t[:, None], atol=1e-7)
    assert torch.allclose(moved.landmarks, rest.landmarks + t[:, None], atol=1e-7)
    # a root rotation rotates everything about the root joint (pose correctives ignore the root)
    rot = model(rotation=torch.tensor([[0.0, 0.5, 0.0]]))
    r = rodrigues(torch.tensor([[0.0, 0.5, 0.0]]))[0]
    j0 = rest.joints[0, 0]
    assert torch.allclose(rot.verts[0], (rest.verts[0] - j0) @ r.T + j0, atol=1e-6)


def test_pose_correctives_follow_pose_feature():
    assets = toy_assets()
    model = HeadModel(assets, n_shape=4, n_expr=3, add_teeth=False)
    pose = torch.tensor([[0.0, 0.0, 0.0, 0.1, 0.2, -0.1, 0.3, 0.0, 0.05, 0.0, 0.1, 0.0, 0.0, -0.1, 0.0]])
    rots = rodrigues(pose.reshape(-1, 3)).reshape(1, 5, 3, 3)
    feat = pose_feature(rots)
    assert feat.shape == (1, 36)
    # column 9*(j-1) + 3r + c of posedirs (V,3,36) belongs to entry (r,c) of R_j - I
    expected = (assets.posedirs.reshape(-1, 36) @ feat[0].numpy()).reshape(-1, 3)
    got = (feat @ model.posedirs).reshape(-1, 3)
    assert np.allclose(got.numpy(), expected, atol=1e-6)


def test_batch_and_shared_shape_broadcast():
    model = HeadModel(toy_assets(), n_shape=4, n_expr=3, add_teeth=False)
    g = torch.Generator().manual_seed(1)
    shape, expr, jaw = torch.randn(4, generator=g), torch.randn(3, 3, generator=g), 0.2 * torch.randn(3, 3, generator=g)
    batched = model(shape=shape, expr=expr, jaw_pose=jaw)
    for b in range(3):
        single = model(shape=shape, expr=expr[b : b + 1], jaw_pose=jaw[b : b + 1])
        assert torch.allclose(batched.verts[b], single.verts[0], atol=1e-6)


def test_static_and_dynamic_offsets_are_canonical_and_seen_by_joints():
    assets = toy_assets()
    model = HeadModel(assets, n_shape=4, n_expr=3, add_teeth=False)
    offset = torch.zeros(1, 12, 3)
    offset[0, 4:8, 1] = 0.01  # lift the jaw vertices
    out = model(static_offset=offset, dynamic_offset=offset.expand(2, -1, -1), expr=torch.zeros(2, 3))
    rest = model(expr=torch.zeros(2, 3))
    assert torch.allclose(out.verts_cano - rest.verts_cano, 2 * offset.expand(2, -1, -1), atol=1e-7)
    assert torch.allclose(out.joints[:, 2, 1] - rest.joints[:, 2, 1], torch.full((2,), 0.02), atol=1e-7)


def test_gradcheck_lbs_wrt_pose_and_shape():
    assets = toy_assets()
    dt = torch.float64
    template = torch.as_tensor(assets.v_template, dtype=dt)
    basis = torch.as_tensor(assets.shapedirs, dtype=dt)  # (V,3,4)
    jreg = torch.as_tensor(assets.J_regressor, dtype=dt)
    posedirs = torch.as_tensor(assets.posedirs.reshape(-1, 36).T, dtype=dt)
    weights = torch.as_tensor(assets.lbs_weights, dtype=dt)

    def f(betas, pose):
        v_shaped = template + torch.einsum("vck,bk->bvc", basis, betas)
        verts, joints = lbs(v_shaped, pose, jreg, assets.parents, posedirs, weights)
        return verts, joints

    g = torch.Generator().manual_seed(0)
    betas = torch.randn(2, 4, dtype=dt, generator=g, requires_grad=True)
    pose = (0.4 * torch.randn(2, 15, dtype=dt, generator=g)).requires_grad_()
    assert torch.autograd.gradcheck(f, (betas, pose), eps=1e-6, atol=1e-6)
    zero_pose = torch.zeros(1, 15, dtype=dt, requires_grad=True)  # the 1e-8 guard keeps θ = 0 differentiable
    grads = torch.autograd.grad(f(betas[:1], zero_pose)[0].sum(), zero_pose)[0]
    assert torch.isfinite(grads).all()


def test_head_model_gradients_reach_all_parameters():
    model = HeadModel(toy_assets(), n_shape=6, n_expr=5, add_teeth=True)
    params = {
        "shape": torch.zeros(6),
        "expr": torch.zeros(2, 5),
        "rotation": torch.zeros(2, 3),
        "neck_pose": torch.zeros(2, 3),
        "jaw_pose": torch.zeros(2, 3),
        "eyes_pose": torch.zeros(2, 6),
        "translation": torch.zeros(2, 3),
        "static_offset": torch.zeros(1, model.num_verts, 3),
    }
    for p in params.values():
        p.requires_grad_(True)
    out = model(**params)
    (out.verts.square().sum() + out.landmarks.sum()).backward()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert torch.count_nonzero(params["shape"].grad[4:]) == 0  # zero-padded bases
    assert torch.count_nonzero(params["shape"].grad[:4]) > 0


def test_bad_input_shapes_raise():
    from vhap.errors import VhapError

    model = HeadModel(toy_assets(), n_shape=4, n_expr=3, add_teeth=False)
    with pytest.raises(VhapError):
        model(jaw_pose=torch.zeros(2, 4))
    with pytest.raises(VhapError):
        model(expr=torch.zeros(2, 3), rotation=torch.zeros(3, 3))
    with pytest.raises(VhapError):
        model(static_offset=torch.zeros(1, 5, 3))


def test_fewer_coefficients_than_the_model_are_zero_padded():
    model = HeadModel(toy_assets(), n_shape=10, n_expr=5, add_teeth=False)
    short = model(shape=torch.tensor([0.3, 0.1]), expr=torch.tensor([[1.0]]))
    full = model(shape=torch.tensor([0.3, 0.1] + [0.0] * 8), expr=torch.tensor([[1.0, 0, 0, 0, 0]]))
    assert torch.allclose(short.verts, full.verts)


def test_landmarks_only_forward_equals_the_full_forward():
    """The landmark-only path (subset of vertices, joints from precomputed bases) gives the full forward's landmarks
    and joints, with offsets and every pose, and gradients reach the same inputs."""
    from vhap.model import HeadModel, load_head_assets

    model = HeadModel(load_head_assets("open"))
    g = torch.Generator().manual_seed(0)
    B, V = 3, model.num_verts

    def inputs():
        return dict(
            shape=(torch.randn(300, generator=g) * 0.5).requires_grad_(True),
            expr=torch.randn(B, 100, generator=g) * 0.5,
            rotation=torch.randn(B, 3, generator=g) * 0.2,
            neck_pose=torch.randn(B, 3, generator=g) * 0.1,
            jaw_pose=torch.randn(B, 3, generator=g) * 0.1,
            eyes_pose=torch.randn(B, 6, generator=g) * 0.1,
            translation=torch.randn(B, 3, generator=g) * 0.1,
            static_offset=(torch.randn(1, V, 3, generator=g) * 0.003).requires_grad_(True),
            dynamic_offset=torch.randn(B, V, 3, generator=g) * 0.002,
        )

    kw = inputs()
    full = model(**kw)
    sub = model(**kw, landmarks_only=True)
    assert sub.verts is None
    torch.testing.assert_close(sub.landmarks, full.landmarks, rtol=0, atol=1e-6)
    torch.testing.assert_close(sub.joints, full.joints, rtol=0, atol=1e-6)
    if model.has_mediapipe:
        torch.testing.assert_close(sub.landmarks_mp, full.landmarks_mp, rtol=0, atol=1e-6)
    grads = []
    for out in (full, sub):
        (g_shape, g_off) = torch.autograd.grad(out.landmarks.square().sum(), [kw["shape"], kw["static_offset"]])
        grads.append((g_shape, g_off))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-4, atol=1e-7)
    assert grads[0][1].abs().sum() > 0
