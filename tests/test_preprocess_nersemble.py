"""NeRSemble v1/v2 fixtures (16 cameras): preprocess (+ colour correction) → matting → landmarks → load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.fixtures_nersemble import SERIALS, make_nersemble, read_video_frames
from vhap.data import DataConfig, discover, load_sequence
from vhap.data.images import read_rgb
from vhap.errors import VhapError
from vhap.preprocess.cli import landmarks_main, matting_main, preprocess_main


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def nersemble(request, carphone_path, tmp_path_factory):
    version = request.param
    root = tmp_path_factory.mktemp(f"nersemble_v{version}")
    seq = make_nersemble(root, version, carphone_path)
    assert preprocess_main([str(seq), "--fps", "0"]) == 0
    assert matting_main([str(seq)]) == 0
    assert landmarks_main([str(seq)]) == 0
    return version, root, seq


def test_outputs_of_every_camera(nersemble):
    version, root, seq = nersemble
    frames = sorted(p.name for p in (seq / "images").glob("*.jpg"))
    assert len(frames) == 16 * 6 and frames[0] == f"cam_{SERIALS[0]}_000000.jpg"
    meta = json.loads((seq / "images" / "meta.json").read_text())
    assert meta["layout"] == f"nersemble_v{version}" and meta["num_frames"] == 6
    assert meta["colour_correction"] == ("nersemble_v1_affine" if version == 1 else "nersemble_v2_ccm")
    assert meta["cameras"][SERIALS[0]]["colour_correction"]["kind"] == ("affine" if version == 1 else "ccm")
    if version == 2:  # raw videos live in images/ and must survive the extraction
        assert len(list((seq / "images").glob("cam_*.mp4"))) == 16
    assert len(list((seq / "alpha_maps").glob("cam_*.png"))) == 16 * 6
    for s in SERIALS:
        z = np.load(seq / "landmark2d" / "mediapipe" / f"{s}.npz")
        assert z["face_landmark_2d"].shape == (6, 68, 3) and z["valid"].all()
    assert (seq / "landmark2d" / "mediapipe" / f"{SERIALS[0]}_overlay.png").is_file()


def test_colour_correction_known_answers(nersemble):
    version, root, seq = nersemble
    video_dir = seq if version == 1 else seq / "images"
    for cam in (0, 5):
        raw = read_video_frames(video_dir / f"cam_{SERIALS[cam]}.mp4", 6)[2].astype(np.float32)
        out = read_rgb(seq / "images" / f"cam_{SERIALS[cam]}_000002.jpg").astype(np.float32)
        if version == 1:
            expected = 0.5 * raw + 0.25 * 255 if cam == 0 else np.clip(raw * (1 + 0.01 * cam), 0, 255)
        elif cam == 0:
            expected = raw[..., ::-1]  # R and B swapped in linear light = swapped in sRGB
        else:
            lin = np.where(raw / 255 <= 0.04045, raw / 255 / 12.92, ((raw / 255 + 0.055) / 1.055) ** 2.4)
            lin = np.clip(lin * (1 + 0.01 * cam), 0, 1)
            expected = 255 * np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
        assert np.abs(out - expected).mean() < 2.5, (version, cam)
        if cam == 0:  # and it really changed the image
            assert np.abs(out - raw).mean() > 10


def test_discover_and_load_sequence(nersemble):
    version, root, seq = nersemble
    entries = discover(root)
    assert [(e.subject, e.sequence, len(e.cameras)) for e in entries] == [("074", "EXP-1_head", 16)]
    data = load_sequence(DataConfig(root=root, subject="074", sequence="EXP-1", subset="tn3"))
    assert data.layout == f"nersemble_v{version}" and data.sequence == "EXP-1_head"
    assert tuple(data.images.shape) == (3, 16, 144, 176, 3) and tuple(data.alphas.shape) == (3, 16, 144, 176)
    assert data.camera_ids == SERIALS and data.timestep_ids == [
        "000000",
        "000002",
        "000005",
    ]  # linspace(0, 5, 3) rounded half to even
    # K scaled from the 288x352 calibration to the 144x176 frames
    cal = json.loads(
        (
            root / "camera_params" / "074" / "camera_params.json"
            if version == 1
            else root / "074" / "calibration" / "camera_params.json"
        ).read_text()
    )
    np.testing.assert_allclose(data.K[0].numpy(), np.array(cal["intrinsics"]) * [[0.5], [0.5], [1]], rtol=1e-6)
    # aligned world: cameras in front of the face (+z), rotations proper
    R = data.w2c[:, :3, :3].double().numpy()
    centres = -np.einsum("cji,cj->ci", R, data.w2c[:, :3, 3].double().numpy())
    assert (centres.mean(0) / np.linalg.norm(centres.mean(0)))[2] > 0.99
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    # a single-camera division still reads cam_<serial>_… files (VHAP pitfall §8.3-11)
    front = load_sequence(DataConfig(root=root, subject="074", sequence="EXP-1_head", division="front-view"))
    assert front.camera_ids == [SERIALS[8]] and tuple(front.images.shape) == (6, 1, 144, 176, 3)
    np.testing.assert_allclose(front.w2c[0].numpy(), data.w2c[8].numpy(), atol=1e-6)
    assert front.landmark_valid.all()


def test_missing_calibration_and_wrong_names(nersemble, tmp_path):
    version, root, seq = nersemble
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    cal = (
        copy / "camera_params" / "074" / "camera_params.json"
        if version == 1
        else copy / "074" / "calibration" / "camera_params.json"
    )
    cal.unlink()
    with pytest.raises(VhapError, match="camera calibration not found") as e:
        load_sequence(DataConfig(root=copy, subject="074", sequence="EXP-1_head"))
    assert str(cal) in str(e.value)
    with pytest.raises(VhapError, match="subject"):
        load_sequence(DataConfig(root=root, subject="999", sequence="EXP-1_head"))
    with pytest.raises(VhapError, match="needs a subject"):
        load_sequence(DataConfig(root=root, sequence="EXP-1_head"))


def test_extraction_failure_leaves_no_output(carphone_path, tmp_path, monkeypatch):
    import vhap.preprocess.extract as extract

    seq = make_nersemble(tmp_path, 1, carphone_path, n_cams=4, n_frames=3, with_colour=False)
    calls = {"n": 0}
    real = extract.extract_frames

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise VhapError("simulated failure")
        return real(*a, **k)

    monkeypatch.setattr(extract, "extract_frames", failing)
    with pytest.raises(VhapError, match="simulated"):
        preprocess_main([str(seq)])
    assert sorted(p.name for p in seq.iterdir()) == [f"cam_{s}.mp4" for s in SERIALS[:4]]
    monkeypatch.setattr(extract, "extract_frames", real)
    assert preprocess_main([str(seq), "--downsample", "2", "--cameras", SERIALS[1]]) == 0
    assert sorted(p.name for p in (seq / "images_2").glob("*.jpg"))[0] == f"cam_{SERIALS[1]}_000000.jpg"
    assert read_rgb(next((seq / "images_2").glob("*.jpg"))).shape == (72, 88, 3)
