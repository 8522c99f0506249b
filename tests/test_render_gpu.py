"""GPU parity of the nvdiffrast and torch backends (skipped without CUDA; see bench/render_parity.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.gpu
def test_backends_agree_on_cuda():
    from vhap.render import nvdiffrast_available

    if not nvdiffrast_available():
        pytest.skip("nvdiffrast is not installed (pip install diffrp-nvdiffrast ninja)")
    from render_parity import THRESHOLDS, run_parity

    r = run_parity("cuda", views=2, size=256, iters=250)
    assert r["tri_id_agreement"] >= THRESHOLDS["tri_id_agreement"], r
    assert r["rgb_mad_interior"] <= THRESHOLDS["rgb_mad_interior"], r
    assert r["grad_cosine"] >= THRESHOLDS["grad_cosine"], r
    assert r["pose_recovery"]["nvdiffrast"]["converged"], r["pose_recovery"]
    assert r["pose_recovery"]["torch"]["converged"], r["pose_recovery"]
