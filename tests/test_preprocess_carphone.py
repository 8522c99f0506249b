"""End to end on the real carphone clip: preprocess → matting → landmarks → load_sequence."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vhap.data import DataConfig, load_sequence
from vhap.errors import VhapError
from vhap.preprocess.cli import landmarks_main, matting_main, preprocess_main
from vhap.preprocess.video import probe_video


@pytest.fixture(scope="module")
def carphone_seq(carphone_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("mono")
    video = root / "carphone.mp4"
    shutil.copy(carphone_path, video)
    assert preprocess_main([str(video), "--fps", "0"]) == 0
    seq = root / "carphone"
    assert matting_main([str(seq)]) == 0
    assert landmarks_main([str(seq)]) == 0
    return seq


def test_probe_carphone(carphone_path):
    info = probe_video(carphone_path)
    assert (info.width, info.height, info.num_frames, info.codec) == (176, 144, 120, "h264")
    assert info.fps == pytest.approx(30000 / 1001)


def test_every_frame_has_alpha_and_landmarks(carphone_seq):
    frames = sorted((carphone_seq / "images").glob("*.jpg"))
    assert [f.name for f in frames[:2]] == ["000000.jpg", "000001.jpg"] and len(frames) == 120
    meta = json.loads((carphone_seq / "images" / "meta.json").read_text())
    assert meta["num_frames"] == 120 and meta["size"] == [144, 176] and meta["colour_correction"] is None
    alphas = sorted((carphone_seq / "alpha_maps").glob("*.png"))
    assert [a.stem for a in alphas] == [f.stem for f in frames]
    z = np.load(carphone_seq / "landmark2d" / "mediapipe.npz")
    assert z["face_landmark_2d"].shape == (120, 68, 3) and z["mediapipe_478"].shape == (120, 478, 3)
    assert z["valid"].all() and list(z["timestep_id"][:2]) == ["000000", "000001"]
    assert (carphone_seq / "landmark2d" / "mediapipe_overlay.png").is_file()
    # per-point quality: carphone's detections are right (its wide-open mouths included), so the checks flag
    # (almost) nothing and the confidences stay 1
    assert z["landmark_flags"].shape == (120, 68) and (z["landmark_flags"] > 0).mean() < 0.01
    assert np.median(z["face_landmark_2d"][..., 2]) == 1.0 and (z["open_mouth_excess"] == 0).mean() > 0.95


def test_landmarks_are_plausible(carphone_seq):
    z = np.load(carphone_seq / "landmark2d" / "mediapipe.npz")
    lmk = z["face_landmark_2d"][..., :2] * [176, 144]
    box = z["bounding_box"][:, :4] * [176, 144, 176, 144]
    eyes_y = lmk[:, 36:48, 1].mean(1)
    mouth_y = lmk[:, 48:68, 1].mean(1)
    nose_y = lmk[:, 30, 1]
    # the head rolls up to ~30° in this clip; the vertical order still holds in every frame
    assert np.all(eyes_y < nose_y) and np.all(nose_y < mouth_y) and np.all(mouth_y - eyes_y > 12)
    inside = (lmk[..., 0] >= box[:, None, 0] - 1) & (lmk[..., 0] <= box[:, None, 2] + 1)
    inside &= (lmk[..., 1] >= box[:, None, 1] - 1) & (lmk[..., 1] <= box[:, None, 3] + 1)
    assert inside.all()
    iod = np.linalg.norm(lmk[:, 36] - lmk[:, 45], axis=1)
    assert 20 < iod.mean() < 45  # embedded-defaults: about 31 px
    # the subject's right eye (iBUG 36-41) is on the image left
    assert np.all(lmk[:, 36:42, 0].mean(1) < lmk[:, 42:48, 0].mean(1))
    # alpha: face centre is foreground, the top-right window corner is background
    from vhap.data.images import read_alpha

    a = read_alpha(carphone_seq / "alpha_maps" / "000000.png")
    cx, cy = lmk[0, 30].astype(int)
    assert a[cy, cx] > 200 and a[5, 170] < 50


def test_load_sequence_monocular(carphone_seq):
    seq = load_sequence(
        DataConfig(root=carphone_seq.parent, sequence="carphone", subset="tn10", background_color="white")
    )
    assert tuple(seq.images.shape) == (10, 1, 144, 176, 3) and seq.images.dtype.__str__() == "torch.uint8"
    assert seq.K is None and seq.w2c is None and seq.camera_ids == ["0"]
    assert seq.timestep_ids[0] == "000000" and seq.timestep_ids[-1] == "000119"
    assert tuple(seq.landmarks.shape) == (10, 1, 68, 3) and tuple(seq.landmarks_mp.shape) == (10, 1, 478, 3)
    z = np.load(carphone_seq / "landmark2d" / "mediapipe.npz")
    np.testing.assert_allclose(seq.landmarks[-1, 0].numpy(), z["face_landmark_2d"][119])
    a = seq.alphas[0, 0].numpy()
    img = seq.images[0, 0].numpy()
    assert np.all(img[a == 0] == 255)  # composited over white where alpha is 0


def test_downsample_writes_only_that_resolution(carphone_seq, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(carphone_seq.parent / "carphone.mp4", video)
    assert preprocess_main([str(video), "--downsample", "2", "--fps", "10"]) == 0
    out = tmp_path / "clip"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["images_2"]
    frames = sorted((out / "images_2").glob("*.jpg"))
    assert len(frames) == 40  # 4.004 s at 10 fps
    from vhap.data.images import read_rgb

    assert read_rgb(frames[0]).shape == (72, 88, 3)


def test_bad_videos_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VhapError, match="empty") as e:
        preprocess_main([str(empty)])
    assert "empty.mp4" in str(e.value)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VhapError, match="cannot read video"):
        preprocess_main([str(junk)])
    assert not (tmp_path / "junk").exists() and not (tmp_path / "empty").exists()
    with pytest.raises(VhapError, match="no camera videos"):
        preprocess_main([str(tmp_path)])


def test_no_face_anywhere_is_an_error_and_writes_nothing(tmp_path):
    from tests.fixtures_nersemble import write_video

    rng = np.random.default_rng(0)
    write_video(tmp_path / "noface.mp4", [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(5)])
    assert preprocess_main([str(tmp_path / "noface.mp4")]) == 0
    with pytest.raises(VhapError, match="no face found in any of 5 frames"):
        landmarks_main([str(tmp_path / "noface")])
    assert not (tmp_path / "noface" / "landmark2d").exists() or not any((tmp_path / "noface" / "landmark2d").iterdir())
