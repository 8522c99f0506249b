"""GPU parity of the nvdiffrast and torch backends on realistic heads (skipped without CUDA; see
bench/render_parity.py). The FLAME-template scene skips where ../shared/flame-topology is absent."""

from __future__ import annotations

import pytest


@pytest.mark.gpu
@pytest.mark.parametrize("scene", ["open", "flame_template"])
def test_backends_agree_on_cuda(scene):
    from vhap.render import nvdiffrast_available

    if not nvdiffrast_available():
        pytest.skip("nvdiffrast is not installed (pip install diffrp-nvdiffrast ninja)")
    from bench.render_parity import THRESHOLDS, load_named_mesh, run_parity

    if load_named_mesh(scene) is None:
        pytest.skip(f"scene {scene!r} is not available (FLAME template: ../shared or $VHAP_FLAME_TEMPLATE_OBJ)")
    # 400 iterations: at 250 the nvdiffrast backend once ended just above the 0.5 mm bar
    r = run_parity("cuda", views=2, size=256, iters=400, scenes=(scene,))["scenes"][scene]
    assert r["tri_id_agreement"] >= THRESHOLDS["tri_id_agreement"], r
    assert r["rgb_mad_interior"] <= THRESHOLDS["rgb_mad_interior"], r
    assert r["grad_cosine"] >= THRESHOLDS["grad_cosine"], r
    assert r["pose_recovery"]["nvdiffrast"]["converged"], r["pose_recovery"]
    assert r["pose_recovery"]["torch"]["converged"], r["pose_recovery"]
