"""#17: preprocessing on the real carphone clip under faults - modes, truncated inputs, stale temporaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vhap.preprocess.cli import preprocess_main


@pytest.fixture
def clip(carphone_path, tmp_path) -> Path:
    video = tmp_path / "carphone.mp4"
    shutil.copy(carphone_path, video)
    return video


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_frame_folder_gets_the_modes_of_the_umask(clip, mask):
    old = os.umask(mask)
    try:
        assert preprocess_main([str(clip), "--fps", "5"]) == 0
    finally:
        os.umask(old)
    images = clip.parent / "carphone" / "images"
    assert images.stat().st_mode & 0o777 == 0o777 & ~mask
    modes = {p.stat().st_mode & 0o777 for p in images.iterdir()}
    assert modes == {0o666 & ~mask}


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_rerun_removes_stale_frame_temporaries_but_not_live_ones(clip):
    """A SIGKILLed extraction leaves `.images.<host>-<pid>.<rand>.tmpdir`; the next run removes it."""
    from vhap.utils.atomic import host_token

    seq = clip.parent / "carphone"
    seq.mkdir()
    stale = seq / f".images.{host_token()}-{_dead_pid()}.abcd1234.tmpdir"
    live = seq / f".images.{host_token()}-{os.getpid()}.efgh5678.tmpdir"  # a writer that still runs
    other = seq / f".images_4.{host_token()}-{_dead_pid()}.ijkl9012.tmpdir"  # another target's: not this step's
    for d in (stale, live, other):
        d.mkdir()
        (d / "000000.jpg").write_bytes(b"x" * 100)
    assert preprocess_main([str(clip), "--fps", "5"]) == 0
    assert not stale.exists() and live.is_dir() and other.is_dir()
    assert (seq / "images" / "meta.json").is_file()


# ------------------------------------------------------------------------------- garbage in (#17 item 7)


def _faststart_truncated(src: Path, dst: Path) -> Path:
    """The clip with its index moved to the front (as web/phone videos have), cut in half: the probe still reads
    the full frame count, the decoder runs out half-way."""
    import subprocess

    import imageio_ffmpeg

    full = dst.with_name("full.mp4")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-c", "copy"]
    subprocess.run([*cmd, "-movflags", "+faststart", str(full)], check=True)
    data = full.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_video_is_an_error_or_a_recorded_warning(carphone_path, tmp_path, capsys):
    import json

    from vhap.cli import main
    from vhap.preprocess.video import probe_video

    video = _faststart_truncated(carphone_path, tmp_path / "carphone.mp4")
    assert probe_video(video).num_frames == 120  # the header still promises every frame
    assert main(["preprocess", str(video), "--fps", "0"]) == 2
    err = capsys.readouterr().err
    assert "video ends early" in err and "promises 120" in err and "--allow-truncated-video" in err
    assert not (tmp_path / "carphone" / "images").exists()
    assert main(["preprocess", str(video), "--fps", "0", "--allow-truncated-video"]) == 0
    assert "truncated" in capsys.readouterr().err
    meta = json.loads((tmp_path / "carphone" / "images" / "meta.json").read_text())
    short = meta["truncated_videos"]["0"]
    assert short["expected"] == 120 and 0 < short["decoded"] < 100 and meta["num_frames"] == short["decoded"]


def test_truncated_frame_stops_matting_and_landmarks(clip, capsys):
    from vhap.cli import main

    assert preprocess_main([str(clip), "--fps", "5"]) == 0
    seq = clip.parent / "carphone"
    frame = sorted((seq / "images").glob("*.jpg"))[3]
    frame.write_bytes(frame.read_bytes()[:-300])  # an interrupted copy
    for step in ("matting", "landmarks"):
        capsys.readouterr()
        assert main([step, str(seq)]) == 2, step
        err = capsys.readouterr().err
        assert f"{frame}: image file is truncated" in err, (step, err)


def test_faceless_frames_warn_and_are_recorded_all_faceless_fails(clip, capsys):
    import json

    import numpy as np

    from vhap.cli import main
    from vhap.data.images import write_rgb_jpeg

    assert preprocess_main([str(clip), "--fps", "5"]) == 0
    seq = clip.parent / "carphone"
    frames = sorted((seq / "images").glob("*.jpg"))
    for f in frames[:3]:  # nobody in view: a flat wall
        write_rgb_jpeg(f, np.full((144, 176, 3), 128, np.uint8))
    capsys.readouterr()
    assert main(["matting", str(seq)]) == 0
    err = capsys.readouterr().err
    assert f"warning: 3 of {len(frames)} frames have an empty matte" in err
    meta = json.loads((seq / "alpha_maps" / "meta.json").read_text())
    assert meta["empty_frames"] == [f.stem for f in frames[:3]]
    # landmarks: the faceless frames are said loudly and kept as invalid
    assert main(["landmarks", str(seq)]) == 0
    err = capsys.readouterr().err
    assert f"warning: no face found in 3 of {len(frames)} frames ({frames[0].stem}, " in err
    z = np.load(seq / "landmark2d" / "mediapipe.npz")
    assert z["valid"].tolist() == [False] * 3 + [True] * (len(frames) - 3)
    for f in frames:
        write_rgb_jpeg(f, np.full((144, 176, 3), 128, np.uint8))
    assert main(["matting", str(seq)]) == 2
    assert "every one of the" in capsys.readouterr().err


def test_multiview_camera_without_a_face_is_kept_invalid_no_face_in_any_view_fails(clip, capsys, tmp_path):
    """#19: a profile view of a rig (NeRSemble's outer cameras) may show no detectable face in any frame; the
    sequence must still get landmarks from its other views, as VHAP stores failed detections; only no face in
    any view is an error."""
    import numpy as np

    from vhap.cli import main
    from vhap.data.images import write_rgb_jpeg

    assert preprocess_main([str(clip), "--fps", "5"]) == 0
    frames = sorted((clip.parent / "carphone" / "images").glob("*.jpg"))[:4]
    seq = tmp_path / "rig"
    images = seq / "images"
    images.mkdir(parents=True)
    for i, f in enumerate(frames):
        shutil.copy(f, images / f"cam_220700101_{i:06d}.jpg")  # the face
        write_rgb_jpeg(images / f"cam_220700100_{i:06d}.jpg", np.full((144, 176, 3), 128, np.uint8))  # no face
    capsys.readouterr()
    assert main(["landmarks", str(seq)]) == 0
    err = capsys.readouterr().err
    assert "warning: camera 220700100: no face found in 4 of 4 frames" in err
    out = seq / "landmark2d" / "mediapipe"
    assert np.load(out / "220700100.npz")["valid"].tolist() == [False] * 4
    assert np.load(out / "220700101.npz")["valid"].tolist() == [True] * 4
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for i in range(4):  # now neither view shows a face: an error, and the earlier result stays as it was
        write_rgb_jpeg(images / f"cam_220700101_{i:06d}.jpg", np.full((144, 176, 3), 128, np.uint8))
    assert main(["landmarks", str(seq)]) == 2
    assert "no face found in any frame of cameras ['220700100', '220700101']" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
