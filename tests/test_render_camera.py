"""Camera conventions: OpenCV <-> OpenGL round trips, projection known answers, clip-space mapping."""

from __future__ import annotations

import math

import pytest
import torch

from vhap.errors import VhapError
from vhap.render import camera as cam_mod
from vhap.render.camera import Cameras, clip_to_pixels, look_at_w2c, rotation_about_axis


def _random_cameras(batch: int = 3, seed: int = 0) -> Cameras:
    gen = torch.Generator().manual_seed(seed)
    eyes = torch.randn(batch, 3, generator=gen) * 0.3 + torch.tensor([0.0, 0.0, 1.2])
    w2c = look_at_w2c(eyes, torch.zeros(batch, 3))
    K = torch.tensor([[[900.0, 1.5, 260.3], [0.0, 910.0, 241.7], [0.0, 0.0, 1.0]]]).repeat(batch, 1, 1)
    return Cameras(K=K, w2c=w2c, image_size=(480, 512))


def test_uncalibrated_camera_known_projection():
    cams = Cameras.uncalibrated(1.5, (200, 300), batch=2)
    assert cams.K.shape == (2, 3, 3)
    f = 1.5 * 300
    assert torch.allclose(cams.fxfycxcy[0], torch.tensor([f, f, 150.0, 100.0]))
    # The world origin is 1 m in front of the camera, on the optical axis -> image centre.
    pix = cams.project(torch.zeros(1, 1, 3))
    assert torch.allclose(pix, torch.tensor([150.0, 100.0]).expand(2, 1, 2))
    # +x world (subject's left) appears to the right; +y world (up) appears higher (smaller row).
    pix = cams.project(torch.tensor([[[0.1, 0.2, 0.0]]]))
    assert torch.allclose(pix[0, 0], torch.tensor([150.0 + f * 0.1, 100.0 - f * 0.2]), atol=1e-4)
    # The camera centre is (0,0,1) and it looks along world -z.
    assert torch.allclose(cams.camera_centers(), torch.tensor([[0.0, 0.0, 1.0]] * 2))
    c2w_gl = cams.c2w_opengl()[0]
    assert torch.allclose(c2w_gl, torch.eye(4) + torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1.0], [0] * 4]))


def test_uncalibrated_focal_is_differentiable():
    focal = torch.tensor([1.5], requires_grad=True)
    cams = Cameras.uncalibrated(focal, (64, 64))
    pix = cams.project(torch.tensor([[[0.1, 0.0, 0.0]]]))
    pix[0, 0, 0].backward()
    assert focal.grad is not None and abs(focal.grad.item() - 64 * 0.1) < 1e-4


def test_opencv_opengl_round_trips():
    cams = _random_cameras()
    w2c = cams.w2c
    assert torch.allclose(cam_mod.w2c_opengl_to_opencv(cam_mod.w2c_opencv_to_opengl(w2c)), w2c)
    c2w = cams.c2w()
    assert torch.allclose(cam_mod.c2w_opengl_to_opencv(cam_mod.c2w_opencv_to_opengl(c2w)), c2w, atol=1e-6)
    assert torch.allclose(cams.c2w() @ cams.w2c, torch.eye(4).expand(3, 4, 4), atol=1e-5)
    # c2w_opengl is the inverse of w2c_opengl and has the same centre as the OpenCV camera.
    assert torch.allclose(cams.c2w_opengl() @ cams.w2c_opengl(), torch.eye(4).expand(3, 4, 4), atol=1e-5)
    assert torch.allclose(cams.c2w_opengl()[:, :3, 3], cams.camera_centers(), atol=1e-6)
    # The OpenGL camera looks along its -z axis: the world origin (look-at target) has negative z.
    origin_gl = cams.w2c_opengl()[:, :3, 3]
    assert (origin_gl[:, 2] < 0).all() and torch.allclose(origin_gl[:, :2], torch.zeros(3, 2), atol=1e-5)
    # Intrinsics: bottom-origin cy and 4-vectors.
    K_gl = cams.K_opengl()
    assert torch.allclose(K_gl[:, 1, 2], 480 - cams.K[:, 1, 2])
    assert torch.allclose(cam_mod.intrinsics_opengl_to_opencv(K_gl, 480), cams.K)
    vec = cams.fxfycxcy
    assert torch.allclose(cam_mod.vector_to_intrinsics(vec)[:, :2, 2], cams.K[:, :2, 2])
    back = Cameras.from_opengl(K_gl, cams.w2c_opengl(), cams.image_size)
    assert torch.allclose(back.K, cams.K) and torch.allclose(back.w2c, cams.w2c, atol=1e-6)


def test_opencv_projection_matches_manual_formula():
    cams = _random_cameras()
    pts = torch.randn(3, 50, 3) * 0.1
    cam = cams.world_to_camera(pts)
    fx, fy, cx, cy = 900.0, 910.0, 260.3, 241.7
    u = fx * cam[..., 0] / cam[..., 2] + 1.5 * cam[..., 1] / cam[..., 2] + cx
    v = fy * cam[..., 1] / cam[..., 2] + cy
    assert torch.allclose(cams.project(pts), torch.stack([u, v], -1), atol=1e-3)


def test_clip_space_matches_projection_and_vhap_matrix():
    cams = _random_cameras()
    pts = torch.randn(3, 100, 3) * 0.1
    clip = cams.to_clip(pts)
    # w is the camera depth; NDC maps to the continuous pixel grid (after flipping to row 0 = top).
    assert torch.allclose(clip[..., 3], cams.world_to_camera(pts)[..., 2], atol=1e-6)
    assert (clip_to_pixels(clip, cams.image_size) - cams.project(pts)).abs().max() < 1e-3
    # VHAP_SPEC §3.1 matrix with cy_gl = H - cy (zero skew), applied to OpenGL camera coordinates.
    K = cams.K.clone()
    K[:, 0, 1] = 0
    c = Cameras(K, cams.w2c, cams.image_size)
    H, W = c.image_size
    n, f = 0.1, 10.0
    fx, fy, cx, cy = c.fxfycxcy[0]
    cy_gl = H - cy
    P = torch.tensor(
        [
            [2 * fx / W, 0, (W - 2 * cx) / W, 0],
            [0, 2 * fy / H, (H - 2 * cy_gl) / H, 0],
            [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)],
            [0, 0, -1, 0],
        ]
    )
    assert torch.allclose(c.projection_opengl()[0], P)
    # Depth range: points at near / far map to NDC z = -1 / +1.
    for depth, expect in ((0.1, -1.0), (10.0, 1.0)):
        p_cam = torch.tensor([[[0.0, 0.0, depth, 1.0]]])
        world = (c.c2w()[:1] @ p_cam.transpose(1, 2)).transpose(1, 2)[..., :3]
        clip = c[0].to_clip(world)
        assert abs((clip[0, 0, 2] / clip[0, 0, 3]).item() - expect) < 1e-4


def test_pixel_centre_mapping_subpixel():
    """A point placed at a pixel centre (j+0.5, i+0.5) projects there to < 0.1 px, via both paths."""
    cams = Cameras.uncalibrated(1.2, (37, 53))
    i, j = 11, 40
    f = cams.fxfycxcy[0, 0].item()
    depth = 1.0  # the world origin plane z=0 is 1 m away
    x = ((j + 0.5) - 53 / 2) / f * depth
    y = -((i + 0.5) - 37 / 2) / f * depth  # world y up
    pt = torch.tensor([[[x, y, 0.0]]])
    pix = cams.project(pt)[0, 0]
    assert (pix - torch.tensor([j + 0.5, i + 0.5])).abs().max() < 0.1
    assert (clip_to_pixels(cams.to_clip(pt), cams.image_size)[0, 0] - pix).abs().max() < 1e-3


def test_batching_indexing_and_errors():
    cams = _random_cameras(4)
    assert len(cams[1:3]) == 2 and len(cams[2]) == 1
    assert torch.equal(cams[[0, 2]].K, cams.K[[0, 2]])
    assert len(cams.repeat_interleave(3)) == 12 and torch.equal(cams.repeat_interleave(3).w2c[2], cams.w2c[0])
    assert torch.equal(cams.repeat(2).w2c[4], cams.w2c[0])
    assert len(Cameras.cat([cams, cams[0]])) == 5
    half = cams.resized((240, 256))
    pts = torch.randn(4, 5, 3) * 0.1
    assert torch.allclose(half.project(pts), cams.project(pts) / 2, atol=1e-3)
    with pytest.raises(VhapError):
        Cameras(K=torch.eye(3).expand(2, 3, 3), w2c=torch.eye(4).expand(3, 4, 4), image_size=(4, 4))
    with pytest.raises(VhapError):
        cams.project(torch.zeros(3, 5, 3))


def test_look_at_orientation():
    """From +z looking at the origin with +y up: world +x appears right, world +y appears up."""
    w2c = look_at_w2c(torch.tensor([[0.0, 0.0, 2.0]]), torch.zeros(1, 3))
    cams = Cameras(torch.tensor([[[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]]), w2c, (100, 100))
    pix = cams.project(torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]]]))[0]
    assert torch.allclose(pix[0], torch.tensor([50.0, 50.0]))
    assert pix[1, 0] > 50 and abs(pix[1, 1] - 50) < 1e-4
    assert pix[2, 1] < 50 and abs(pix[2, 0] - 50) < 1e-4
    assert torch.allclose(cams.camera_centers(), torch.tensor([[0.0, 0, 2.0]]), atol=1e-6)


def test_rotation_helper_is_orthonormal():
    R = rotation_about_axis(torch.tensor([0.3, 1.0, 0.2]), math.radians(5))
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6)
    assert abs(torch.linalg.det(R).item() - 1) < 1e-6
