"""Image-folder input of `vhap preprocess` on real frames (the carphone clip written as PNG/JPEG files)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from vhap.cli import main as vhap_main
from vhap.data.images import read_rgb
from vhap.data.layout import pick_images_dir
from vhap.errors import VhapError
from vhap.preprocess.cli import preprocess_main
from vhap.preprocess.image_folder import natural_key, select_frames
from vhap.preprocess.video import iter_frames, probe_video

N = 12


@pytest.fixture(scope="module")
def clip(carphone_path):
    """First N carphone frames (H,W,3) RGB as decoded by ffmpeg."""
    info = probe_video(carphone_path)
    out = []
    for f in iter_frames(carphone_path, (info.height, info.width), None, info):
        out.append(f.copy())
        if len(out) == N:
            break
    return np.stack(out)


@pytest.fixture
def frame_folder(clip, tmp_path):
    """frame_1.png … frame_12.* with mixed extensions; lexicographic order would put frame_10 after frame_1."""
    d = tmp_path / "shots"
    d.mkdir()
    for i, rgb in enumerate(clip):
        ext = [".png", ".PNG", ".jpg", ".jpeg", ".bmp"][i % 5]
        params = [cv2.IMWRITE_JPEG_QUALITY, 100] if ext in (".jpg", ".jpeg") else []
        assert cv2.imwrite(str(d / f"frame_{i + 1}{ext}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    (d / "notes.txt").write_text("not a frame")
    return d


def test_natural_order_and_frame_selection():
    names = ["f10.png", "f2.png", "f1.png", "F3.jpg", "f21.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "F3.jpg", "f10.png", "f21.png"]
    assert select_frames(10, None, 25) == list(range(10))  # unknown source rate: keep everything
    assert select_frames(10, 30, 10) == [0, 3, 6, 9]
    assert select_frames(7, 30, 60) == list(range(7))


def test_image_folder_matches_video_frames(frame_folder, clip, tmp_path):
    seq = tmp_path / "seq"
    rc = preprocess_main([str(frame_folder), "--output", str(seq), "--downsample", "1", "2", "--fps", "0"])
    assert rc == 0
    frames = sorted((seq / "images").glob("*.jpg"))
    assert [f.name for f in frames] == [f"{i:06d}.jpg" for i in range(N)]
    for i, f in enumerate(frames):  # frame i is clip frame i (natural order), re-encoded as JPEG q95
        err = np.abs(read_rgb(f).astype(int) - clip[i]).mean()
        assert err < 2.5, (i, err)
        if i:  # consecutive frames differ more than the coding error: the order is really checked
            assert np.abs(clip[i].astype(int) - clip[i - 1]).mean() > err
    meta = json.loads((seq / "images" / "meta.json").read_text())
    assert meta["num_frames"] == N and meta["size"] == [144, 176] and meta["layout"] == "monocular"
    assert meta["fps"] is None and meta["source_fps"] is None and meta["sequence"] == "seq"
    cam = meta["cameras"]["0"]
    assert cam["source_frames"][:3] == ["frame_1.png", "frame_2.PNG", "frame_3.jpg"] and cam["video"] is None
    half = sorted((seq / "images_2").glob("*.jpg"))
    assert len(half) == N and read_rgb(half[0]).shape == (72, 88, 3)
    small = cv2.resize(clip[0], (88, 72), interpolation=cv2.INTER_AREA)
    assert np.abs(read_rgb(half[0]).astype(int) - small).mean() < 4  # JPEG noise at 88x72 ~2.7
    assert json.loads((seq / "images_2" / "meta.json").read_text())["size"] == [72, 88]
    assert pick_images_dir(seq, 2) == seq / "images_2"


def test_source_fps_subsamples_and_is_recorded(frame_folder, tmp_path):
    seq = tmp_path / "seq10"
    assert preprocess_main([str(frame_folder), "--output", str(seq), "--source-fps", "30", "--fps", "10"]) == 0
    meta = json.loads((seq / "images" / "meta.json").read_text())
    assert meta["fps"] == 10 and meta["source_fps"] == 30 and meta["num_frames"] == 4
    assert meta["cameras"]["0"]["source_frames"] == ["frame_1.png", "frame_4.jpeg", "frame_7.PNG", "frame_10.bmp"]


def test_default_output_is_the_folder_itself(frame_folder):
    assert preprocess_main([str(frame_folder)]) == 0
    assert len(list((frame_folder / "images").glob("*.jpg"))) == N
    assert (frame_folder / "frame_1.png").is_file()  # sources untouched
    assert preprocess_main([str(frame_folder)]) == 0  # rerun: its own images/ is not taken as input


def test_png_frames_under_images_get_a_clear_message(frame_folder, tmp_path, capsys):
    seq = tmp_path / "user_seq"
    shutil.copytree(frame_folder, seq / "images")
    with pytest.raises(VhapError, match="did not write") as e:
        pick_images_dir(seq)
    assert "vhap preprocess" in e.value.fix and "--output" in e.value.fix
    assert vhap_main(["landmarks", str(seq)]) == 2
    assert vhap_main(["preprocess", str(seq)]) == 2
    assert vhap_main(["preprocess", str(seq / "images")]) == 2  # would write over its own source
    err = capsys.readouterr().err
    assert "did not write" in err and "move" in err
    assert len(list((seq / "images").iterdir())) == N + 1  # nothing of the user's frames lost
    # the fix the message gives works
    shutil.move(seq / "images", seq / "frames")
    assert preprocess_main([str(seq / "frames"), "--output", str(seq)]) == 0
    assert pick_images_dir(seq) == seq / "images"


def test_bad_frames_fail_cleanly(frame_folder, tmp_path):
    odd = frame_folder / "frame_99.png"
    cv2.imwrite(str(odd), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(VhapError, match="differs from the first frame"):
        preprocess_main([str(frame_folder), "--output", str(tmp_path / "o")])
    odd.write_bytes(b"\x89PNG broken")
    with pytest.raises(VhapError, match="cannot read image"):
        preprocess_main([str(frame_folder), "--output", str(tmp_path / "o")])
    with pytest.raises(VhapError, match="one monocular camera"):
        preprocess_main([str(frame_folder), "--output", str(tmp_path / "o"), "--cameras", "222"])
    odd.unlink()
    with pytest.raises(VhapError, match="source_fps must be > 0"):
        preprocess_main([str(frame_folder), "--output", str(tmp_path / "o"), "--source-fps", "-5"])
    assert not (tmp_path / "o" / "images").exists()
