"""Torch rasteriser: coverage, depth order, interpolation, culling, gradients, antialias (CPU)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vhap.render import Cameras, MeshRenderer, edge_neighbours
from vhap.render.backends.torch_raster import interpolate_dense

R = MeshRenderer("torch")


@pytest.fixture
def single_thread():
    """Tiny images: avoid intra-op thread start-up costs (large on an oversubscribed CI machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pixel_centres(H: int, W: int) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    return torch.stack([j + 0.5, i + 0.5], -1).double()


def _ndc_from_pixels(p: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Continuous top-origin pixel coords (…,2) -> clip (…,4) with w = 1, z = 0."""
    x = 2 * p[..., 0] / W - 1
    y = 1 - 2 * p[..., 1] / H
    return torch.stack([x, y, torch.zeros_like(x), torch.ones_like(x)], -1)


def _square(center=(8.0, 8.0), half=3.3, z=0.0, H=16, W=16):
    """Two CCW (front-facing) triangles forming an axis-aligned square in pixel coordinates."""
    cx, cy = center
    corners = torch.tensor(
        [[cx - half, cy + half], [cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]],
        dtype=torch.float64,
    )
    clip = _ndc_from_pixels(corners, H, W)
    clip[:, 2] = z
    # In pixel coords (y down) these corners go bottom-left, bottom-right, top-right, top-left: CCW on screen
    # with y up, i.e. front-facing.
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return clip.unsqueeze(0), faces


def test_known_triangle_coverage():
    H, W = 24, 32
    tri_px = torch.tensor([[3.2, 20.7], [29.1, 18.3], [12.6, 2.4]], dtype=torch.float64)
    clip = _ndc_from_pixels(tri_px, H, W).unsqueeze(0)
    frags = R.rasterize(clip, torch.tensor([[0, 1, 2]]), (H, W), cull_backfaces=False)
    p = _pixel_centres(H, W)

    def edge(a, b):
        return (b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0])

    e = torch.stack([edge(tri_px[0], tri_px[1]), edge(tri_px[1], tri_px[2]), edge(tri_px[2], tri_px[0])])
    inside = (e >= 0).all(0) | (e <= 0).all(0)
    assert inside.sum() > 100
    assert torch.equal(frags.tri_id[0] == 0, inside)
    assert torch.equal(frags.alpha[0, ..., 0] > 0, inside)
    # Barycentrics reproduce the pixel centre (affine case: w = 1).
    pos = (frags.bary[0].double().unsqueeze(-1) * tri_px).sum(-2)
    assert (pos - p)[inside].abs().max() < 1e-4


def test_depth_order_nearest_wins_regardless_of_face_order():
    H = W = 16
    near_clip, faces = _square(half=5.0, z=-0.5)
    far_clip, _ = _square(center=(9.0, 9.0), half=5.0, z=0.5)
    clip = torch.cat([far_clip, near_clip], 1)  # far square = faces 0,1; near square = faces 2,3
    for order in ([0, 1], [1, 0]):
        blocks = [faces, faces + 4]
        all_faces = torch.cat([blocks[k] for k in order])
        frags = R.rasterize(clip, all_faces, (H, W))
        near_ids = {2, 3} if order == [0, 1] else {0, 1}
        centre = frags.tri_id[0, 8, 8].item()
        assert centre in near_ids
        # Where only the far square is, the far square is visible.
        assert frags.tri_id[0, 13, 13].item() not in near_ids and frags.tri_id[0, 13, 13].item() >= 0
        assert abs(frags.depth[0, 8, 8].item() - 1.0) < 1e-6  # clip w = 1


def test_interpolation_is_perspective_correct():
    """Interpolated world positions, re-projected, land on the pixel centres (< 0.01 px)."""
    cams = Cameras.uncalibrated(1.2, (40, 48))
    verts = torch.tensor([[[-0.2, -0.15, -0.3], [0.25, -0.1, 0.1], [0.0, 0.2, -0.1]]])
    clip = cams.to_clip(verts)
    frags = R.rasterize(clip, torch.tensor([[0, 1, 2]]), cams.image_size, cull_backfaces=False)
    pos = R.interpolate(verts, frags)
    mask = frags.mask[0]
    assert mask.sum() > 100
    reproj = cams.project(pos[0][mask].unsqueeze(0))[0]
    assert (reproj - _pixel_centres(40, 48)[mask].float()).abs().max() < 0.01
    # Constant attributes interpolate exactly; (V,C) and (B,V,C) agree; the dense fallback agrees.
    ones = R.interpolate(torch.ones(3, 2), frags)
    assert torch.allclose(ones[0][mask], torch.ones(int(mask.sum()), 2), atol=1e-5)
    dense = interpolate_dense(verts, frags, frags.faces)
    assert torch.allclose(dense, pos, atol=1e-6)
    # Depth is the camera depth of the surface point.
    cam_z = cams.world_to_camera(pos[0][mask].unsqueeze(0))[0, :, 2]
    assert torch.allclose(frags.depth[0][mask], cam_z, atol=1e-4)


def test_projected_vertex_lands_on_predicted_pixel():
    cams = Cameras.uncalibrated(1.5, (64, 80))
    point = torch.tensor([[[0.0231, -0.0417, 0.05]]])
    uv = cams.project(point)[0, 0]
    j, i = int(uv[0]), int(uv[1])
    # A ~12 px triangle centred on the point: the predicted pixel is covered, its neighbours' centres are not
    # further than the triangle's inradius, and interpolated surface points re-project to the pixel centre.
    d = 0.05
    verts = point + torch.tensor([[[-d, -d * 0.577, 0.0], [d, -d * 0.577, 0.0], [0.0, d * 1.155, 0.0]]])
    frags = R.rasterize(cams.to_clip(verts), torch.tensor([[0, 1, 2]]), cams.image_size, cull_backfaces=False)
    assert frags.tri_id[0, i, j] == 0
    pos = R.interpolate(verts, frags)[0, i, j]
    pix = cams.project(pos.view(1, 1, 3))[0, 0]
    assert (pix - torch.tensor([j + 0.5, i + 0.5])).abs().max() < 0.1
    assert (uv - torch.tensor([j + 0.5, i + 0.5])).abs().max() <= 0.5


def test_backface_culling_follows_face_orientation():
    cams = Cameras.uncalibrated(1.5, (32, 32))
    # CCW seen from +z (where the camera is): front-facing.
    verts = torch.tensor([[[-0.2, -0.2, 0.0], [0.2, -0.2, 0.0], [0.0, 0.2, 0.0]]])
    ccw = torch.tensor([[0, 1, 2]])
    cw = torch.tensor([[0, 2, 1]])
    clip = cams.to_clip(verts)
    assert R.rasterize(clip, ccw, (32, 32)).mask.sum() > 20
    assert R.rasterize(clip, cw, (32, 32)).mask.sum() == 0
    assert R.rasterize(clip, cw, (32, 32), cull_backfaces=False).mask.sum() > 20
    # A closed cube seen from outside: culling changes nothing visible, and only front faces are visible.
    c = torch.tensor([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (-0.1, 0.1)])
    # Faces CCW from outside (index = 4x + 2y + z with 0/1 per axis).
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    faces = torch.tensor([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads])
    cams2 = Cameras(cams.K, cams.w2c, (32, 32))
    rot = torch.tensor([[0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [-0.6, 0.0, 0.8]]) @ torch.tensor(
        [[1.0, 0, 0], [0, 0.8, -0.6], [0, 0.6, 0.8]]
    )
    verts = (c @ rot.T).unsqueeze(0) * 0.5
    clip = cams2.to_clip(verts)
    culled = R.rasterize(clip, faces, (32, 32))
    full = R.rasterize(clip, faces, (32, 32), cull_backfaces=False)
    assert torch.equal(culled.tri_id, full.tri_id)
    visible = culled.tri_id[culled.mask].unique()
    assert culled.front[0, visible].all() and (~culled.front[0]).sum() == 6
    # Outward normals of the visible faces point toward the camera (at +z).
    tri = verts[0][faces[visible]]
    n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    to_cam = torch.tensor([0.0, 0.0, 1.0]) - tri.mean(1)
    assert ((n * to_cam).sum(-1) > 0).all()
    nb = edge_neighbours(faces)
    assert (nb >= 0).all() and all(bool((nb[nb[i]] == i).any()) for i in range(len(faces)))


def test_barycentric_gradients_match_finite_differences():
    H, W = 12, 14
    tri_px = torch.tensor([[2.3, 10.1], [12.2, 9.4], [6.1, 1.7]], dtype=torch.float64)
    clip = _ndc_from_pixels(tri_px, H, W)
    clip[:, 3] = torch.tensor([1.0, 1.7, 1.3], dtype=torch.float64)  # perspective
    clip[:, :2] *= clip[:, 3:4]
    clip = clip.unsqueeze(0)
    faces = torch.tensor([[0, 1, 2]])
    frags = R.rasterize(clip, faces, (H, W), cull_backfaces=False)
    mask = frags.mask
    weights = torch.randn(1, H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(c):
        fr = R.rasterize(c, faces, (H, W), cull_backfaces=False)
        assert torch.equal(fr.mask, mask)  # small perturbations keep coverage
        return (fr.bary * weights).sum()

    clip_req = clip.clone().requires_grad_(True)
    f(clip_req).backward()
    eps = 1e-6
    num = torch.zeros_like(clip)
    for idx in [(0, v, k) for v in range(3) for k in (0, 1, 3)]:
        cp, cm = clip.clone(), clip.clone()
        cp[idx] += eps
        cm[idx] -= eps
        num[idx] = (f(cp) - f(cm)) / (2 * eps)
    assert torch.allclose(clip_req.grad[..., [0, 1, 3]], num[..., [0, 1, 3]], rtol=1e-4, atol=1e-6)


def test_antialias_edge_gradient_matches_finite_differences():
    """Sum of antialiased coverage ≈ square area: d/dx of the right edge = its length in pixels."""
    H = W = 16
    # Like nvdiffrast, only the face under the nearer pixel is examined; the centre is chosen so that every
    # pixel left of the right edge belongs to the face that owns that edge (no pixel centre between the
    # shared diagonal and the edge), so every row crossing the edge is antialiased.
    clip, faces = _square(center=(8.1, 7.85), half=3.3)
    frags = R.rasterize(clip, faces, (H, W))

    def loss(c):
        fr = R.rasterize(c, faces, (H, W))
        return R.antialias(fr.alpha.double(), fr, c).sum()

    c = clip.clone().requires_grad_(True)
    loss(c).backward()
    right = [1, 2]  # vertices of the right edge
    analytic = c.grad[0, right, 0].sum() * (2 / W)  # d/d(pixel x) of both right vertices
    eps = 0.05  # pixels, small enough to keep pixel coverage unchanged
    cp, cm = clip.clone(), clip.clone()
    cp[0, right, 0] += eps * 2 / W
    cm[0, right, 0] -= eps * 2 / W
    numeric = (loss(cp) - loss(cm)) / (2 * eps)
    assert abs(analytic.item() - numeric.item()) < 1e-6
    # The right edge crosses 6 pixel rows; each row's coverage grows by 1 per pixel of edge motion.
    assert abs(numeric.item() - 6.0) < 1e-6
    assert frags.alpha.sum() == 36  # 6x6 pixel centres inside the 6.6 px square


def test_silhouette_loss_moves_square_onto_target(single_thread):
    H = W = 24
    target_clip, faces = _square(center=(13.3, 10.6), half=4.2, H=H, W=W)
    tf = R.rasterize(target_clip.float(), faces, (H, W))
    target = R.antialias(tf.alpha, tf, target_clip.float())
    base, _ = _square(center=(10.0, 13.0), half=4.2, H=H, W=W)
    base = base.float()
    shift = torch.zeros(2, requires_grad=True)  # NDC translation
    opt = torch.optim.Adam([shift], lr=0.02)
    for _ in range(150):
        clip = base + torch.cat([shift, torch.zeros(2)]).view(1, 1, 4)
        fr = R.rasterize(clip, faces, (H, W))
        img = R.antialias(fr.alpha, fr, clip)
        loss = (img - target).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    moved_px = torch.stack([shift[0] * W / 2, -shift[1] * H / 2]).detach()
    assert torch.allclose(moved_px, torch.tensor([3.3, -2.4]), atol=0.15), moved_px


@pytest.mark.parametrize("size", [(7, 9), (33, 20)])
def test_chunked_rasterisation_matches_single_pass(size):
    gen = torch.Generator().manual_seed(1)
    clip = torch.cat([torch.rand(2, 30, 2, generator=gen) * 2 - 1, torch.rand(2, 30, 1, generator=gen) - 0.5], -1)
    clip = torch.cat([clip, torch.ones(2, 30, 1)], -1)
    faces = torch.randint(0, 30, (40, 3), generator=gen)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    from vhap.render.backends.torch_raster import TorchBackend

    a = TorchBackend().rasterize(clip, faces, size, cull_backfaces=False)
    b = TorchBackend(max_candidates=7).rasterize(clip, faces, size, cull_backfaces=False)
    assert torch.equal(a.tri_id, b.tri_id) and torch.allclose(a.bary, b.bary)
    # Batched views are independent: view 1 alone gives the same result.
    c = TorchBackend().rasterize(clip[1:], faces, size, cull_backfaces=False)
    assert torch.equal(a.tri_id[1:], c.tri_id)
    assert math.isclose(float(a.alpha.sum()), float((a.tri_id >= 0).sum()))


def _sliver_clip(dtype=torch.float64):
    """A long thin triangle (doubled screen area ~3.6 px^2 over 30 px) close to the camera (w ~ 0.05), so its
    homogeneous area (~2e-6 clip units) is of the order of nvdiffrast's 1e-6 gradient regulariser."""
    H = W = 32
    tri_px = torch.tensor([[1.3, 15.2], [30.6, 15.9], [17.1, 15.7]], dtype=dtype)
    clip = _ndc_from_pixels(tri_px, H, W).to(dtype)
    clip[:, 3] = torch.tensor([0.05, 0.06, 0.055], dtype=dtype)
    clip[:, :2] *= clip[:, 3:4]
    # CCW in GL NDC (y up) = clockwise in top-origin pixels; this order is CCW in NDC.
    return clip.unsqueeze(0), torch.tensor([[0, 2, 1]]), (H, W)


def _nvdiffrast_bary_backward(clip, faces, tri_id, grad_u, grad_v, H, W):
    """Closed-form gradient of nvdiffrast 0.3.3's CUDA rasterize backward (RasterizeGradKernel): it differentiates
    u = a0 / (at + eps), v = a1 / (at + eps) with the homogeneous edge functions a_k at the pixel centre,
    at = a0 + a1 + a2 and eps = copysign(1e-6, at), w.r.t. clip x, y, w (written out independently here)."""
    grad = torch.zeros_like(clip)
    rows, cols = (tri_id[0] >= 0).nonzero(as_tuple=True)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        fx = 2.0 * (c + 0.5) / W - 1.0
        fy = 1.0 - 2.0 * (r + 0.5) / H
        vid = faces[tri_id[0, r, c]]
        p = clip[0, vid]
        x, y = p[:, 0] - fx * p[:, 3], p[:, 1] - fy * p[:, 3]
        a = torch.stack([x[1] * y[2] - y[1] * x[2], x[2] * y[0] - y[2] * x[0], x[0] * y[1] - y[0] * x[1]])
        at = a.sum()
        iw = 1.0 / (at + math.copysign(1e-6, at.item()))
        b0, b1 = a[0] * iw, a[1] * iw
        g0, g1 = grad_u[r, c] * iw, grad_v[r, c] * iw
        gbb = g0 * b0 + g1 * b1
        gx = torch.stack(
            [
                gbb * (y[2] - y[1]) - g1 * y[2],
                gbb * (y[0] - y[2]) + g0 * y[2],
                gbb * (y[1] - y[0]) - g0 * y[1] + g1 * y[0],
            ]
        )
        gy = torch.stack(
            [
                gbb * (x[1] - x[2]) + g1 * x[2],
                gbb * (x[2] - x[0]) - g0 * x[2],
                gbb * (x[0] - x[1]) + g0 * x[1] - g1 * x[0],
            ]
        )
        grad[0, vid, 0] += gx
        grad[0, vid, 1] += gy
        grad[0, vid, 3] += -fx * gx - fy * gy
    return grad


def test_sliver_barycentrics_sum_to_one_with_zero_gradient():
    """The three weights sum to 1 for every clip position, so the gradient of their sum must vanish — also on
    slivers, where the regularised area would otherwise leak a spurious eps * d(area) / (area + eps)^2."""
    clip, faces, (H, W) = _sliver_clip()
    clip = clip.requires_grad_(True)
    frags = R.rasterize(clip, faces, (H, W), cull_backfaces=True)
    assert frags.mask.sum().item() >= 3
    frags.bary.sum().backward()
    assert clip.grad.abs().max().item() < 1e-9


def test_sliver_barycentric_gradients_match_nvdiffrast_formula():
    """On a sliver seen nearly edge-on, the torch backend's bary gradient equals nvdiffrast's (regularised)
    backward for the same pixels — the convention the parity bench compares against (bench/render_parity.py)."""
    clip, faces, (H, W) = _sliver_clip()
    clip_req = clip.clone().requires_grad_(True)
    frags = R.rasterize(clip_req, faces, (H, W), cull_backfaces=True)
    assert frags.mask.sum().item() >= 3
    weights = torch.randn(1, H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (frags.bary * weights).sum().backward()
    # Downstream, nvdiffrast's third weight is 1 - u - v: dL/du = w0 - w2, dL/dv = w1 - w2.
    grad_u = weights[0, ..., 0] - weights[0, ..., 2]
    grad_v = weights[0, ..., 1] - weights[0, ..., 2]
    expected = _nvdiffrast_bary_backward(clip, faces, frags.tri_id, grad_u, grad_v, H, W)
    scale = expected.abs().max().item()
    assert scale > 1.0  # the regulariser matters here: gradients are large
    assert torch.allclose(clip_req.grad, expected, rtol=1e-9, atol=1e-9 * scale)


def test_auto_backend_prefers_our_cuda_kernels_and_falls_back_to_nvdiffrast(monkeypatch):
    """'auto' on a GPU: the ``cuda`` backend when it builds, else nvdiffrast with a warning; what a renderer can do
    is what its backend declares (CPU: typed stand-ins for the GPU backends)."""
    import vhap.render.rasterizer as rz
    from vhap.errors import VhapError
    from vhap.render import BackendCaps
    from vhap.render.backends.torch_raster import TorchBackend

    class CudaStandIn(TorchBackend):
        caps = BackendCaps(name="cuda", capturable=True, mipmaps=True, fused_kernels=True)

    class NvdiffrastStandIn(TorchBackend):
        caps = BackendCaps(name="nvdiffrast", capturable=False, mipmaps=True, fused_kernels=False)

    monkeypatch.setattr(rz, "nvdiffrast_available", lambda: True)
    monkeypatch.setattr(rz, "make_nvdiffrast_backend", NvdiffrastStandIn)
    monkeypatch.setattr(rz, "make_cuda_backend", CudaStandIn)
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    renderer = rz.MeshRenderer("auto")
    assert isinstance(renderer.backend_for(gpu), CudaStandIn)
    assert renderer.caps(gpu).capturable and renderer.caps(gpu).fused_kernels
    assert renderer.caps(cpu) == TorchBackend.caps and not renderer.caps(cpu).capturable

    def broken():
        raise VhapError("could not build vhap's CUDA kernels: nvcc not found")

    monkeypatch.setattr(rz, "make_cuda_backend", broken)
    with pytest.warns(UserWarning, match="falls back to nvdiffrast"):
        assert rz.MeshRenderer("auto").caps(gpu).name == "nvdiffrast"
    with pytest.raises(VhapError, match="needs CUDA tensors"):
        rz.MeshRenderer("nvdiffrast").caps(cpu)


def test_backends_declare_their_abilities():
    """The three backends' declared abilities (importable without CUDA or nvdiffrast), and the torch backend keeps
    its declaration: no mipmaps means no screen derivatives."""
    from vhap.render.backends.cuda import CudaBackend
    from vhap.render.backends.nvdiffrast import NvdiffrastBackend
    from vhap.render.backends.torch_raster import TorchBackend

    assert [b.caps.name for b in (TorchBackend, NvdiffrastBackend, CudaBackend)] == ["torch", "nvdiffrast", "cuda"]
    assert [b.caps.capturable for b in (TorchBackend, NvdiffrastBackend, CudaBackend)] == [False, False, True]
    assert [b.caps.fused_kernels for b in (TorchBackend, NvdiffrastBackend, CudaBackend)] == [False, False, True]
    clip = torch.tensor([[[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]]])
    faces = torch.tensor([[0, 1, 2]])
    frags = R.rasterize(clip, faces, (8, 8))
    uv, uv_da = R.interpolate_with_derivatives(torch.rand(3, 2), frags)
    assert uv.shape == (1, 8, 8, 2) and uv_da is None and not R.caps(torch.device("cpu")).mipmaps
    assert frags.alpha.dtype == frags.depth.dtype and torch.equal(frags.alpha[..., 0] > 0, frags.mask)


def test_nvdiffrast_attribute_ops_are_one_shared_base(monkeypatch):
    """The ``cuda`` backend is not an nvdiffrast backend (no rasteriser context): both share the declared base that
    runs nvdiffrast's interpolate / texture kernels on a raster in nvdiffrast's layout. nvdiffrast's raster is
    bottom row first and comes back flipped; the ``cuda`` raster is written top row first and comes back as is."""
    from types import SimpleNamespace

    from vhap.render.backends import cuda, nvdiffrast
    from vhap.render.backends.base import Fragments

    assert not issubclass(cuda.CudaBackend, nvdiffrast.NvdiffrastBackend)
    assert issubclass(cuda.CudaBackend, nvdiffrast.NvdiffrastAttributeBackend)
    assert issubclass(nvdiffrast.NvdiffrastBackend, nvdiffrast.NvdiffrastAttributeBackend)
    fake = SimpleNamespace(interpolate=lambda attr, rast, tri, **kw: (rast[..., : attr.shape[-1]], None))
    monkeypatch.setattr(nvdiffrast, "import_nvdiffrast", lambda: fake)
    monkeypatch.setattr(cuda, "load_kernels", lambda: None)
    rows = torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 2, 4)  # (B,H,W,4): value = buffer row
    faces = torch.tensor([[0, 1, 2]])
    native = {"rast": rows, "tri": faces.int(), "cull": False, "V": 3}
    frags = Fragments(torch.zeros(1, 3, 2, dtype=torch.long), torch.zeros(1, 3, 2), torch.ones(1, 1, dtype=torch.bool),
                      faces, (3, 2), lambda: None, native)  # fmt: skip
    attr = torch.zeros(1, 3, 1)
    assert nvdiffrast.NvdiffrastBackend().interpolate(attr, frags)[0, :, 0, 0].tolist() == [2.0, 1.0, 0.0]
    assert cuda.CudaBackend().interpolate(attr, frags)[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_kernel_loader_builds_every_source_and_names_the_fix(monkeypatch):
    """One loader for all .cu files of vhap/render/kernels; a failed build is one VhapError with the fix."""
    import torch.utils.cpp_extension as cpp_ext

    from vhap.errors import VhapError
    from vhap.render.kernels import loader

    on_disk = {p.name for p in loader.KERNEL_DIR.glob("*.cu")}
    assert on_disk == set(loader.SOURCES)
    seen = {}

    def failing_load(name, sources, **kwargs):
        seen.update(name=name, sources=sources)
        raise RuntimeError("nvcc not found")

    monkeypatch.setattr(loader, "_EXTENSION", None)
    monkeypatch.setattr(cpp_ext, "load", failing_load)
    with pytest.raises(VhapError, match="nvcc not found") as err:
        loader.load_kernels()
    assert "--render.backend" in str(err.value) and err.value.path == loader.KERNEL_DIR
    assert seen["name"] == "vhap_kernels" and {Path(s).name for s in seen["sources"]} == on_disk
