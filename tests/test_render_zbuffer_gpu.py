"""The ``cuda`` backend (our z-buffer visibility kernels + nvdiffrast's attribute ops) on a GPU: same coverage
as the pure-torch reference (same rules), same images and gradients as the ``nvdiffrast`` backend, and a
render + backward that records as a CUDA graph and replays to the eager result. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def _need_cuda_backend():
    from vhap.render import nvdiffrast_available

    if not torch.cuda.is_available() or not nvdiffrast_available():
        pytest.skip("needs CUDA and nvdiffrast (pip install diffrp-nvdiffrast ninja)")


def test_parity_with_reference_and_nvdiffrast():
    _need_cuda_backend()
    from bench.render_parity import run_parity

    vs_torch = run_parity("cuda", views=3, size=256, iters=150, scenes=("open",), backends=("cuda", "torch"))
    r = vs_torch["scenes"]["open"]
    # same snapping, tie and depth rules as the reference; the remaining differences are interior face swaps, not
    # yet explained (measured values: docs/dev/notes/render-kernels.md)
    assert r["tri_id_agreement"] >= 0.998, r
    assert r["grad_cosine"] >= 0.999, r

    vs_nv = run_parity("cuda", views=3, size=256, iters=300, scenes=("open",), backends=("cuda", "nvdiffrast"))
    r = vs_nv["scenes"]["open"]
    assert r["tri_id_agreement"] >= 0.998, r
    assert r["rgb_mad_interior"] <= 1e-5, r
    # the gradient difference comes from the few pixels whose face differs
    assert r["grad_cosine"] >= 0.995, r
    # 5 mm + 5° pose recovery (< 0.5 mm, < 0.5°): at 150 iterations both backends sometimes stopped just short
    # of the translation bar (GPU atomics make runs differ), hence 300
    assert r["pose_recovery"]["cuda"]["converged"], r["pose_recovery"]


def test_render_and_backward_replay_from_a_cuda_graph():
    _need_cuda_backend()
    from bench.render_parity import Scene
    from vhap.render import MeshRenderer

    dev = torch.device("cuda")
    scene = Scene(dev, views=4, size=192, name="open")
    renderer = MeshRenderer("cuda")
    assert renderer.caps(dev).capturable and renderer.caps(dev).fused_kernels
    # a structured target (the head moved by 1 cm), not noise: a noise target's per-pixel gradients mostly
    # cancel, so the summation order of the backward's float atomics weighs on the result (cosine 0.999976 on
    # an H100 once, against the 0.99999 bound)
    with torch.no_grad():
        target = scene.render(renderer, scene.verts.unsqueeze(0) + 0.01).rgba[..., :3].clone()
    verts = scene.verts.clone().unsqueeze(0).requires_grad_(True)
    offset = torch.zeros(1, 1, 3, device=dev)

    def step():
        verts.grad = None
        out = scene.render(renderer, verts + offset)
        loss = (out.rgba[..., :3] - target).abs().mean()
        loss.backward()
        return loss.detach(), verts.grad.detach()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss_g, grad_g = step()
    for shift in (0.0, 0.004, -0.003):
        offset.fill_(shift)
        graph.replay()
        loss_e, grad_e = step()
        torch.cuda.synchronize()
        assert torch.allclose(loss_g, loss_e, rtol=1e-5, atol=1e-7), (shift, loss_g.item(), loss_e.item())
        cos = torch.nn.functional.cosine_similarity(grad_g.reshape(-1), grad_e.reshape(-1), dim=0).item()
        assert cos > 0.99999, (shift, cos)


@pytest.mark.parametrize("sh_batch,constant_bg", [(1, False), (4, True)])
def test_fused_shading_matches_the_reference(sh_batch, constant_bg):
    _need_cuda_backend()
    from vhap.render.kernels import load_kernels, shade_composite, shade_composite_reference
    from vhap.render.shading import initial_sh, normalize_pixels

    dev = torch.device("cuda")
    load_kernels()
    g = torch.Generator(device=dev).manual_seed(0)
    B, H, W = 4, 37, 53
    raw = torch.randn(B, H, W, 3, device=dev, generator=g)
    covered = torch.rand(B, H, W, device=dev, generator=g) > 0.3
    raw = raw * covered.unsqueeze(-1)  # interpolated normals are zero where nothing is covered
    albedo = torch.rand(B, H, W, 3, device=dev, generator=g)
    sh = initial_sh(sh_batch, dev) + 0.3 * torch.randn(sh_batch, 9, 3, device=dev, generator=g)
    if constant_bg:
        bg = torch.tensor([0.2, 0.5, 0.9], device=dev).view(1, 1, 1, 3).expand(B, H, W, 3)
    else:
        bg = torch.rand(B, H, W, 3, device=dev, generator=g)
    g_rgba = torch.randn(B, H, W, 4, device=dev, generator=g)
    g_diff = torch.randn(B, H, W, 3, device=dev, generator=g)

    def run(fn):
        r, a, s = (t.clone().requires_grad_(True) for t in (raw, albedo, sh))
        rgba, diff = fn(r, a, s)
        ((rgba * g_rgba).sum() + (diff * g_diff).sum()).backward()
        return rgba.detach(), diff.detach(), r.grad, a.grad, s.grad

    ref = run(lambda r, a, s: shade_composite_reference(normalize_pixels(r), a, covered, bg, s))
    fused = run(lambda r, a, s: shade_composite(r, a, covered, bg, s))
    for name, x, y in zip(("rgba", "diffuse", "d_normal", "d_albedo", "d_sh"), ref, fused, strict=True):
        scale = x.abs().max().item() + 1e-6
        assert (x - y).abs().max().item() <= 2e-5 * scale + 1e-6, name


@pytest.mark.parametrize("cid_dtype,C", [(torch.int16, 4), (torch.int64, 3)])
def test_fused_perturbation_matches_the_reference(cid_dtype, C):
    """perturb.cu against vhap.render.kernels.perturb_select_reference: the same draws give bit-identical pixels
    and the same gradient (kept pixels pass it, replaced ones get none); the whole perturbation (draws included)
    is reproducible from the generator's state."""
    _need_cuda_backend()
    from vhap.render.kernels import load_kernels
    from vhap.render.perturb import perturb_appearance

    dev = torch.device("cuda")
    load_kernels()
    B, H, W = 3, 41, 57  # C = 4: the vectorised RGBA kernels; C = 3: the generic ones
    g = torch.Generator(device=dev).manual_seed(1)
    cid = torch.randint(0, 6, (B, H, W), device=dev, generator=g).to(cid_dtype)
    cid[0, :4] = 5  # a cluster only in view 0: its pool spans one view
    image = torch.rand(B, H, W, C, device=dev, generator=g)
    grad_out = torch.randn(B, H, W, C, device=dev, generator=g)

    def run(fused):
        img = image.clone().requires_grad_(True)
        gen = torch.Generator(device=dev).manual_seed(7)
        out = perturb_appearance(img, cid, 0.4, 0.7, gen, num_clusters=6, fused=fused)
        (out * grad_out).sum().backward()
        return out.detach(), img.grad

    ref_out, ref_grad = run(False)
    out, grad = run(True)
    assert torch.equal(out, ref_out)
    assert torch.equal(grad, ref_grad)
    changed = (out != image).any(-1)
    assert 0.3 < changed.float().mean().item() < 0.8  # the rates did act
    assert not changed[cid == 1].any()
    assert torch.equal(grad[changed], torch.zeros_like(grad[changed]))
