"""Known-answer tests of the benchmark metrics (vhap.synth.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vhap.errors import VhapError
from vhap.synth.metrics import landmark_nme, masked_psnr, silhouette_iou, umeyama, vertex_errors
from vhap.synth.rigs import rotation_xyz


def test_umeyama_recovers_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(200, 3))
    R = rotation_xyz((30.0, -50.0, 10.0))
    dst = 1.7 * src @ R.T + np.array([0.3, -2.0, 5.0])
    sim = umeyama(src, dst)
    assert sim.scale == pytest.approx(1.7, abs=1e-10)
    np.testing.assert_allclose(sim.rotation, R, atol=1e-10)
    np.testing.assert_allclose(sim.translation, [0.3, -2.0, 5.0], atol=1e-10)
    np.testing.assert_allclose(sim.apply(src), dst, atol=1e-10)


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    dst = src * np.array([-1.0, 1.0, 1.0])  # a mirror image: best proper rotation is not the mirror
    sim = umeyama(src, dst)
    assert np.linalg.det(sim.rotation) == pytest.approx(1.0)


def test_umeyama_rejects_bad_shapes():
    with pytest.raises(VhapError):
        umeyama(np.zeros((2, 3)), np.zeros((2, 3)))


def test_vertex_error_of_identical_meshes_is_zero_and_offset_is_exact():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(3, 40, 3))
    err = vertex_errors(gt, gt, {"all": None, "part": np.arange(10)})
    assert err["all"]["mean"] == 0.0 and err["part"]["p95"] == 0.0
    shifted = gt + np.array([0.001, 0.0, 0.0])  # 1 mm everywhere
    err = vertex_errors(shifted, gt, {"all": None})
    assert err["all"]["mean"] == pytest.approx(1.0) and err["all"]["median"] == pytest.approx(1.0)


def test_vertex_error_after_similarity_alignment_removes_scale_pose():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(2, 60, 3)) * 0.1
    pred = 0.8 * gt @ rotation_xyz((0, 20, 0)).T + 0.05
    raw = vertex_errors(pred, gt, {"all": None})
    aligned = vertex_errors(pred, gt, {"all": None}, align="similarity_frame")
    assert raw["all"]["mean"] > 10.0
    assert aligned["all"]["mean"] < 1e-9
    assert aligned["scales"] == pytest.approx([1.25, 1.25])
    seq = vertex_errors(pred, gt, {"all": None}, align="similarity_sequence")
    assert seq["all"]["max"] < 1e-9


def test_landmark_nme_known_value():
    gt = np.zeros((1, 68, 2))
    gt[0, 36] = [0.0, 0.0]
    gt[0, 45] = [100.0, 0.0]  # inter-ocular distance 100 px
    pred = gt + np.array([3.0, 4.0])  # 5 px everywhere
    out = landmark_nme(pred, gt)
    assert out["mean"] == pytest.approx(5.0)  # percent


def test_masked_psnr_known_value():
    target = np.zeros((4, 4, 3))
    pred = np.full((4, 4, 3), 0.1)  # MSE 0.01 → 20 dB
    assert masked_psnr(pred, target) == pytest.approx(20.0)
    mask = np.zeros((4, 4))
    mask[:2] = 1
    pred[2:] = 0.9  # outside the mask: ignored
    assert masked_psnr(pred, target, mask) == pytest.approx(20.0)
    assert masked_psnr(target, target) == math.inf
    u8 = (np.full((4, 4, 3), 0.1) * 255).round().astype(np.uint8)
    assert masked_psnr(u8, np.zeros((4, 4, 3), np.uint8)) == pytest.approx(-20 * math.log10(26 / 255))


def test_silhouette_iou_known_value():
    a = np.zeros((10, 10))
    b = np.zeros((10, 10))
    a[:, :6] = 1
    b[:, 4:] = 1
    assert silhouette_iou(a, b) == pytest.approx(20 / 100)
    assert silhouette_iou(a, a) == 1.0
