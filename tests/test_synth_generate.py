"""The synthetic ground-truth generator: layout, determinism, landmark/mesh/camera consistency."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth
from vhap.synth.heads import resolve_head_model


@pytest.fixture(scope="module")
def head_model(tmp_path_factory, flame_topology_dir) -> str:
    return resolve_head_model("standin", tmp_path_factory.mktemp("heads"))


def _cfg(tmp_path, head_model, **kw) -> SynthConfig:
    base = dict(output=tmp_path, num_frames=2, image_size=(64, 48), head_model=head_model, albedo_resolution=128)
    base.update(kw)
    return SynthConfig(**base)


def test_monocular_layout_and_projection(tmp_path, head_model):
    seq = generate_sequence(_cfg(tmp_path, head_model, landmark_noise_px=0.0), progress=False)
    d = tmp_path / seq.sequence
    assert sorted(p.name for p in (d / "images").iterdir()) == ["000000.jpg", "000001.jpg"]
    alpha = np.asarray(Image.open(d / "alpha_maps" / "000000.png"))
    assert alpha.shape == (64, 48) and alpha.max() == 255 and alpha.min() == 0
    lmk = np.load(d / "landmark2d" / "synthetic.npz")
    assert lmk["face_landmark_2d"].shape == (2, 68, 3) and lmk["valid"].all()
    gt = load_ground_truth(d)
    # zero noise: the written normalised landmarks are the projection of the ground-truth 3D landmarks
    px = gt["landmarks_2d"]["pixels"][:, 0]
    np.testing.assert_allclose(lmk["face_landmark_2d"][..., 0] * 48, px[..., 0], atol=1e-3)
    K, w2c = gt["cameras"]["K"][0], gt["cameras"]["w2c"][0]
    cam = gt["meshes"]["landmarks_3d"][:, :68] @ w2c[:3, :3].T + w2c[:3, 3]
    proj = cam @ K.T
    np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], px, atol=1e-3)
    # the landmarks land on the rendered head (the nose tip, iBUG 30, is inside the matte)
    x, y = px[0, 30]
    assert alpha[int(y), int(x)] > 200
    # upright: the chin (iBUG 8) is below the nose bridge (iBUG 27) in the image
    assert px[0, 8, 1] > px[0, 27, 1]
    params = gt["params"]
    assert params["expr"].shape == (2, 100) and params["eyes_pose"].shape == (2, 6) and "focal_length" in params
    assert json.loads((d / "ground_truth" / "meta.json").read_text())["layout"] == "monocular"


def test_generation_is_deterministic_per_seed(tmp_path, head_model):
    a = generate_sequence(_cfg(tmp_path / "a", head_model, seed=3), progress=False)
    b = generate_sequence(_cfg(tmp_path / "b", head_model, seed=3), progress=False)
    c = generate_sequence(_cfg(tmp_path / "c", head_model, seed=4), progress=False)
    img = [np.asarray(Image.open(s.sequence_dir / "images" / "000001.jpg")) for s in (a, b, c)]
    assert np.array_equal(img[0], img[1])
    assert not np.array_equal(img[0], img[2])
    la, lb = (np.load(s.sequence_dir / "landmark2d" / "synthetic.npz")["face_landmark_2d"] for s in (a, b))
    assert np.array_equal(la, lb)


def test_multiview_nersemble_v2_layout(tmp_path, head_model):
    seq = generate_sequence(_cfg(tmp_path, head_model, rig="multiview", num_frames=1, num_cameras=4), progress=False)
    calib = json.loads((tmp_path / "999" / "calibration" / "camera_params.json").read_text())
    assert len(calib["world_2_cam"]) == 4 and (calib["height"], calib["width"]) == (256, 192)
    K = np.asarray(calib["intrinsics"])
    assert K[0, 2] == pytest.approx(96.0) and K[1, 2] == pytest.approx(128.0)  # 4× the 48×64 image
    names = sorted(p.name for p in (seq.sequence_dir / "images_4").iterdir())
    assert names[0] == f"cam_{seq.camera_ids[0]}_000000.jpg" and len(names) == 4
    for serial in seq.camera_ids:
        assert (seq.sequence_dir / "landmark2d" / "synthetic" / f"{serial}.npz").is_file()
    gt = load_ground_truth(seq.sequence_dir)
    # calibration world ≠ FLAME world, and the written w2c (scaled K) reproduces the stored projections
    M = gt["params"]["world_from_flame"]
    assert not np.allclose(M, np.eye(4))
    w2c = np.asarray(calib["world_2_cam"][seq.camera_ids[2]])
    pts = gt["meshes"]["landmarks_3d"][0, :68] @ w2c[:3, :3].T + w2c[:3, 3]
    uvw = pts @ (K / 4 * np.array([[1], [1], [4]])).T
    np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], gt["landmarks_2d"]["pixels"][0, 2], atol=1e-2)


def test_detected_landmarks_run_the_detector_library(tmp_path):
    """``landmarks="detected"`` runs MediaPipe on the written frames; it lands near the projected ground truth."""
    pytest.importorskip("mediapipe")
    seq = generate_sequence(
        SynthConfig(output=tmp_path, num_frames=2, image_size=(256, 256), head_model="open", albedo_resolution=128,
                    background="white", landmarks="detected"),
        progress=False,
    )  # fmt: skip
    assert seq.landmark_detector == "mediapipe"
    lmk = np.load(seq.sequence_dir / "landmark2d" / "mediapipe.npz")
    assert lmk["valid"].all() and lmk["mediapipe_478"].shape[:2] == (2, 478)
    px = load_ground_truth(seq.sequence_dir)["landmarks_2d"]["pixels"][:, 0]
    err = np.linalg.norm(lmk["face_landmark_2d"][..., :2] * 256 - px, axis=-1)
    assert err.mean() < 8.0, err.mean(axis=1)  # measured ~3 px: the detector sees the rendered face
