"""SH shading known answers, vertex normals, perturbation statistics, render_head's §3.7 hooks (CPU)."""

from __future__ import annotations

import math

import torch

from vhap.render import (
    SH_CONSTANTS,
    Cameras,
    MeshRenderer,
    initial_sh,
    perturb_appearance,
    render_head,
    render_visual,
    shade,
    shade_sh,
    vertex_normals,
)


def test_sh_constants_and_init_lights_give_unit_shading():
    assert abs(SH_CONSTANTS[0] - 0.282095) < 1e-6 and abs(SH_CONSTANTS[1] - 1.023327) < 1e-6
    assert abs(SH_CONSTANTS[4] - 0.858086) < 1e-6 and abs(SH_CONSTANTS[7] - 0.429043) < 1e-6
    assert abs(SH_CONSTANTS[8] - 0.247708) < 1e-6
    n = torch.nn.functional.normalize(torch.randn(2, 5, 7, 3), dim=-1)
    assert torch.allclose(shade_sh(n, initial_sh()), torch.ones(2, 5, 7, 3), atol=1e-6)


def test_sh_single_band_known_answers():
    sh = torch.zeros(1, 9, 3)
    sh[0, 1, 0] = 1.0  # x band, red
    sh[0, 8, 2] = 2.0  # 3z²-1 band, blue
    n = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]).view(1, 1, 2, 3)
    out = shade_sh(n, sh)[0, 0]
    assert torch.allclose(out[0], torch.tensor([SH_CONSTANTS[1], 0, -2 * SH_CONSTANTS[8]]), atol=1e-6)
    assert torch.allclose(out[1], torch.tensor([0.0, 0, 2 * 2 * SH_CONSTANTS[8]]), atol=1e-6)
    # front lighting: negative n.z becomes 0.3|n.z|; front-range clamps n.z + 0.75.
    m = torch.tensor([[0, 0, 1.0], [0, 0, -1.0], [0, 1.0, 0]]).view(1, 1, 3, 3)
    assert torch.allclose(shade("front", m)[0, 0, :, 0], torch.tensor([1.0, 0.3, 0.0]))
    assert torch.allclose(shade("front-range", m)[0, 0, :, 0], torch.tensor([1.0, 0.0, 0.75]))
    assert torch.equal(shade("constant", m), torch.ones_like(m))


def test_vertex_normals_area_weighted():
    # A flat square in the z=0 plane, CCW seen from +z, plus an isolated vertex.
    verts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [5, 5, 5]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    vn = vertex_normals(verts, faces)
    assert torch.allclose(vn[0, :4], torch.tensor([0.0, 0, 1]).expand(4, 3))
    assert torch.allclose(vn[0, 4], torch.tensor([0.0, 0, 1]))


def test_perturbation_rates_pools_and_gradients():
    gen = torch.Generator().manual_seed(0)
    B, H, W = 4, 32, 32
    cid = torch.zeros(B, H, W, dtype=torch.long)
    cid[:, 8:24, 8:24] = 1
    cid[:, 8:16, 8:24] = 2
    cid[0, 0, 0] = 3  # a one-pixel cluster: its pool is itself
    # Colour = cluster id in channel 0, unique pixel code in channel 1.
    img = torch.stack([cid.float(), torch.arange(B * H * W).float().view(B, H, W)], -1).requires_grad_(True)
    out = perturb_appearance(img, cid, rate_fg=0.3, rate_bg=0.6, generator=gen)
    changed = (out[..., 1] != img[..., 1]).detach()
    # Samples come only from the pixel's own cluster (channel 0 preserved), cluster 1 never changes.
    assert torch.equal(out[..., 0].detach(), img[..., 0].detach())
    assert not changed[cid == 1].any()
    # Replacement rates (a draw may pick the pixel itself, a 1/pool-size chance: negligible here).
    assert abs(changed[cid == 0].float().mean().item() - 0.6) < 0.03
    assert abs(changed[cid == 2].float().mean().item() - 0.3) < 0.05
    # Pools span the whole batch: background samples come from other batch elements too.
    src = out[..., 1].detach().long()[(cid == 0) & changed] // (H * W)
    dst = torch.arange(B).view(B, 1, 1).expand(B, H, W)[(cid == 0) & changed]
    assert (src != dst).float().mean() > 0.6
    # Replaced pixels carry no gradient; kept pixels keep theirs.
    out[..., 1].sum().backward()
    g = img.grad[..., 1]
    assert torch.equal(g == 0, changed)
    # Determinism with a generator.
    a = perturb_appearance(img.detach(), cid, 0.5, 0.5, torch.Generator().manual_seed(3))
    b = perturb_appearance(img.detach(), cid, 0.5, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def _plane_mesh(n: int = 6):
    t = torch.linspace(-0.15, 0.15, n)
    y, x = torch.meshgrid(t, t, indexing="ij")
    verts = torch.stack([x, y, 0.05 * torch.cos(3 * x) * torch.cos(3 * y)], -1).view(-1, 3)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [[a, b, d], [a, d, c]]  # CCW seen from +z
    faces = torch.tensor(faces)
    uvs = (verts[:, :2] + 0.15) / 0.3
    return verts, faces, uvs


def test_render_head_region_hooks_detach_as_specified():
    verts, faces, uvs = _plane_mesh()
    cams = Cameras.uncalibrated(1.5, (40, 40), batch=2)
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(3, 16, 16, generator=g)
    renderer = MeshRenderer("torch")
    v = verts.unsqueeze(0).clone().requires_grad_(True)
    kwargs = dict(renderer=renderer, lighting="constant")
    out = render_head(v, faces, uvs, faces, cams, tex, None, 0.2, **kwargs)
    assert out.rgba.shape == (2, 40, 40, 4) and out.cluster_id.max() == 1 and out.alpha.sum() > 100
    out.rgba[..., :3].square().sum().backward()
    assert v.grad.abs().sum() > 0
    # With texture alignment off for all faces and boundary alignment off for all vertices, geometry gets no
    # photometric gradient (constant lighting: normals do not matter), while the texture still does.
    v2 = verts.unsqueeze(0).clone().requires_grad_(True)
    tex2 = tex.clone().requires_grad_(True)
    off_f = torch.ones(len(faces), dtype=torch.bool)
    off_v = torch.ones(len(verts), dtype=torch.bool)
    out2 = render_head(v2, faces, uvs, faces, cams, tex2, None, 0.2, None, None, off_f, off_v, **kwargs)
    out2.rgba[..., :3].square().sum().backward()
    assert v2.grad is None or v2.grad.abs().sum() == 0
    assert tex2.grad.abs().sum() > 0
    # Perturbation hook runs and is reproducible; clusters come from the face table.
    table = torch.full((len(faces),), 2)
    p1 = render_head(verts[None], faces, uvs, faces, cams, tex, None, 0.2, table, (0.5, 0.5), generator=g, **kwargs)
    assert set(p1.cluster_id.unique().tolist()) == {0, 2}
    # SH with the initial lights equals constant lighting.
    sh_out = render_head(verts[None], faces, uvs, faces, cams, tex, initial_sh(), 0.2, renderer=renderer)
    assert torch.allclose(sh_out.rgba, out.rgba.detach(), atol=1e-5)


def test_render_head_takes_the_fused_path_its_backend_declares(monkeypatch):
    """render_head uses vhap's fused shading kernel exactly when the backend declares ``fused_kernels`` (CPU: a
    stand-in backend and the kernel replaced by its reference), and both paths give the same image."""
    import vhap.render.head as head_mod
    from vhap.render import BackendCaps
    from vhap.render.backends.torch_raster import TorchBackend
    from vhap.render.kernels import shade_composite_reference
    from vhap.render.shading import normalize_pixels

    class FusedStandIn(TorchBackend):
        caps = BackendCaps(name="cuda", capturable=True, mipmaps=False, fused_kernels=True)

    calls = []

    def fused_on_cpu(normal_raw, albedo, covered, background, sh):
        calls.append(normal_raw.shape)
        return shade_composite_reference(normalize_pixels(normal_raw), albedo, covered, background, sh)

    monkeypatch.setattr(head_mod, "shade_composite", fused_on_cpu)
    verts, faces, uvs = _plane_mesh()
    cams = Cameras.uncalibrated(1.5, (24, 24), batch=2)
    tex = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    sh = initial_sh() + 0.2
    plain = render_head(verts[None], faces, uvs, faces, cams, tex, sh, 0.2, renderer=MeshRenderer("torch"))
    assert not calls and plain.normal is not None
    fused_renderer = MeshRenderer("torch")
    monkeypatch.setattr(fused_renderer, "backend_for", lambda device: FusedStandIn())
    fused = render_head(verts[None], faces, uvs, faces, cams, tex, sh, 0.2, renderer=fused_renderer)
    assert calls == [(2, 24, 24, 3)] and fused.normal is None
    assert torch.allclose(fused.rgba, plain.rgba, atol=1e-6)
    assert torch.allclose(fused.diffuse_detach_normal, plain.diffuse_detach_normal, atol=1e-6)
    assert torch.equal(fused.albedo, plain.albedo) and fused.alpha.sum() > 50


def test_visual_renderer_front_lighting_and_flat_shading():
    verts, faces, uvs = _plane_mesh()
    cams = Cameras.uncalibrated(1.5, (32, 32))
    vis = render_visual(verts[None], faces, cams, shading="flat", background="black")
    covered = vis["alpha"][0, ..., 0] > 0
    # Faces look at the camera: front lighting of camera-space normals is close to 1 in the middle.
    assert vis["diffuse"][0, 16, 16, 0] > 0.9 and math.isclose(float(vis["rgba"][0, 0, 0, 0]), 0.0)
    assert covered.sum() > 100
    smooth = render_visual(verts[None], faces, cams, vertex_colors=torch.ones(1, len(verts), 3) * 0.5)
    assert torch.allclose(smooth["albedo"][0][covered], torch.full((int(covered.sum()), 3), 0.5), atol=1e-5)
