"""vhap.data: calibration validation, alignment, selection grammar, discovery and name resolution."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from tests.fixtures_nersemble import SERIALS, WORLD_TILT, arc_cameras, camera_params
from vhap.data import (
    align_cameras_to_axes,
    detect_layout,
    discover,
    load_camera_params,
    parse_subset,
    resolve_name,
    scale_intrinsics,
    select_indices,
)
from vhap.data.selection import division_indices
from vhap.errors import VhapError


def _write(tmp_path, data):
    p = tmp_path / "camera_params.json"
    p.write_text(json.dumps(data))
    return p


def test_load_camera_params_roundtrip_and_scaling(tmp_path):
    data = camera_params((144, 176))
    rig = load_camera_params(_write(tmp_path, data))
    assert rig.camera_ids == SERIALS and rig.image_size == (288, 352)
    np.testing.assert_allclose(rig.w2c, arc_cameras(16), atol=1e-12)
    half = rig.scaled_to((144, 176))
    np.testing.assert_allclose(half.K[0], np.array(data["intrinsics"]) * [[0.5], [0.5], [1]], atol=1e-12)
    # a 1-pixel continuous-coordinate point maps to half the coordinate
    with pytest.raises(VhapError, match="not a resize"):
        scale_intrinsics(rig.K, (288, 352), (144, 200))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("intrinsics"), "missing key"),
        (lambda d: d.__setitem__("intrinsics", [[1, 0], [0, 1]]), r"shape \(2, 2\)"),
        (lambda d: d["intrinsics"].__setitem__(0, [-500.0, 0.0, 170.0]), "focal lengths must be positive"),
        (lambda d: d["intrinsics"].__setitem__(0, [600.0, 0.0, 999.0]), "principal point"),
        (lambda d: d["intrinsics"].__setitem__(0, [1.8, 0.0, 170.0]), "implausible"),
        (lambda d: d["intrinsics"][1].__setitem__(1, float("nan")), "NaN"),
        (lambda d: d.pop("width"), "both 'height' and 'width'"),
        (lambda d: _scale_row(d, SERIALS[3], 0, 1.1), "not orthonormal"),
        (lambda d: _flip(d, SERIALS[4]), "det"),
        (lambda d: _translate(d, SERIALS[5], 1000.0), "millimetres"),
        (lambda d: d.__setitem__("world_2_cam", {}), "non-empty"),
        (lambda d: d["world_2_cam"].__setitem__(SERIALS[2], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]), r"\['220000002'\]"),
    ],
)
def test_calibration_validation_errors(tmp_path, mutate, message):
    d = camera_params((144, 176))
    mutate(d)
    path = _write(tmp_path, d)
    with pytest.raises(VhapError, match=message) as e:
        load_camera_params(path)
    assert str(path) in str(e.value)


def _scale_row(d, serial, row, s):
    m = np.array(d["world_2_cam"][serial])
    m[row, :3] *= s
    d["world_2_cam"][serial] = m.tolist()


def _flip(d, serial):
    m = np.array(d["world_2_cam"][serial])
    m[1, :3] *= -1  # a reflection: OpenGL-style y flip without z flip
    d["world_2_cam"][serial] = m.tolist()


def _translate(d, serial, s):
    m = np.array(d["world_2_cam"][serial])
    m[:3, 3] *= s
    d["world_2_cam"][serial] = m.tolist()


def test_missing_calibration_names_the_file(tmp_path):
    with pytest.raises(VhapError, match="camera calibration not found") as e:
        load_camera_params(tmp_path / "nope" / "camera_params.json")
    assert "nope" in str(e.value)


def test_align_cameras_to_axes_recovers_head_world():
    w2c = arc_cameras(16)
    aligned, rot = align_cameras_to_axes(w2c)
    # orthonormal rotation, det +1; it undoes the fixture's world tilt up to a few degrees
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    residual = rot @ WORLD_TILT
    angle = np.degrees(np.arccos(np.clip((np.trace(residual) - 1) / 2, -1, 1)))
    assert angle < 3.0
    R = aligned[:, :3, :3]
    centres = -np.einsum("cji,cj->ci", R, aligned[:, :3, 3])
    fwd = R[:, 2, :]  # OpenCV +z of each camera in world coordinates
    up = -R[:, 1, :]
    mean_c = centres.mean(0) / np.linalg.norm(centres.mean(0))
    assert mean_c[2] > 0.99  # cameras sit on the +z side, where the head looks
    assert (fwd.mean(0) / np.linalg.norm(fwd.mean(0)))[2] < -0.99
    assert (up.mean(0) / np.linalg.norm(up.mean(0)))[1] > 0.99
    # distances and relative poses are preserved (pure rotation of the world)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-9)
    # aligned matrices are still OpenCV world→camera: det +1 rotations
    assert np.allclose(np.linalg.det(R), 1.0)


def test_subset_grammar_known_answers():
    assert parse_subset("tn10cs2") == {"tn": 10, "cs": 2}
    assert select_indices(100, parse_subset("ti5"), "t") == [5]
    assert select_indices(100, parse_subset("ti5tj8"), "t") == [5, 6, 7, 8]
    assert select_indices(10, parse_subset("tn4"), "t") == [0, 3, 6, 9]
    assert select_indices(10, parse_subset("ts4"), "t") == [0, 4, 8]
    assert select_indices(16, parse_subset("ci3cj5"), "c") == [3, 4, 5]
    assert select_indices(16, parse_subset("cn2"), "c") == [0, 15]
    assert select_indices(5, parse_subset("tn10"), "t") == [0, 1, 2, 3, 4]
    assert select_indices(7, {}, "t") == list(range(7))
    for bad in ("tx3", "ti", "tj3", "ti1tn2", "ts0", "tn3tn4"):
        with pytest.raises(VhapError):
            parse_subset(bad)
    with pytest.raises(VhapError, match="only 10 timesteps"):
        select_indices(10, parse_subset("ti10"), "t")
    assert division_indices("train", 16) == [8, 7, 9, 4, 10, 5, 13, 2, 12, 1, 14, 0]
    assert sorted(division_indices("train", 16) + division_indices("val", 16)) == list(range(16))
    with pytest.raises(VhapError, match="16-camera"):
        division_indices("val", 4)


def test_resolve_name_exact_first_then_unique_prefix(tmp_path):
    for n in ("EXP-1", "EXP-1-head", "EXP-2_v16_DS4", "BACKGROUND"):
        (tmp_path / n).mkdir()
    assert resolve_name(tmp_path, "EXP-1").name == "EXP-1"  # exact, although it prefixes EXP-1-head
    assert resolve_name(tmp_path, "EXP-1-").name == "EXP-1-head"
    assert resolve_name(tmp_path, "EXP-2").name == "EXP-2_v16_DS4"
    with pytest.raises(VhapError, match="ambiguous"):
        resolve_name(tmp_path, "EXP")
    with pytest.raises(VhapError, match="no sequence folder"):
        resolve_name(tmp_path, "SEN")


def _fake_v1(root, n_subjects, n_seqs, n_cams=16):
    (root / "camera_params").mkdir(parents=True)
    for s in range(n_subjects):
        subj = root / f"{s:03d}"
        (subj / "BACKGROUND").mkdir(parents=True)
        for q in range(n_seqs):
            seq = subj / f"EXP-{q}_head"
            seq.mkdir()
            for c in SERIALS[:n_cams]:
                (seq / f"cam_{c}.mp4").touch()  # discovery must never open videos


def test_discover_v1_v2_monocular_and_speed(tmp_path):
    v1 = tmp_path / "v1"
    _fake_v1(v1, 10, 20)  # 200 sequences, 3200 (empty) videos
    t0 = time.perf_counter()
    found = discover(v1)
    dt = time.perf_counter() - t0
    assert detect_layout(v1) == "nersemble_v1"
    assert len(found) == 200 and dt < 1.0, dt
    e = found[0]
    assert (e.subject, e.sequence, e.layout) == ("000", "EXP-0_head", "nersemble_v1")
    assert e.cameras == SERIALS and e.videos[SERIALS[3]].name == f"cam_{SERIALS[3]}.mp4"
    assert all(x.sequence != "BACKGROUND" for x in found)
    assert len(discover(v1, subjects=["003"], sequences=["EXP-4_head"])) == 1

    v2 = tmp_path / "v2"
    seq = v2 / "074" / "sequences" / "EXP-1"
    (seq / "images").mkdir(parents=True)
    (v2 / "074" / "sequences" / "BACKGROUND").mkdir()
    (v2 / "074" / "calibration").mkdir()
    for c in SERIALS[:4]:
        (seq / "images" / f"cam_{c}.mp4").touch()
    found = discover(v2)
    assert detect_layout(v2) == "nersemble_v2"
    assert [(x.subject, x.sequence, len(x.cameras)) for x in found] == [("074", "EXP-1", 4)]

    mono = tmp_path / "mono"
    mono.mkdir()
    (mono / "obama.mp4").touch()
    (mono / "biden" / "images").mkdir(parents=True)
    found = discover(mono)
    assert [(x.sequence, bool(x.videos)) for x in found] == [("biden", False), ("obama", True)]
    assert found[1].folder == mono / "obama"


def test_load_uncalibrated_multicamera_folder(tmp_path):
    from vhap.data import DataConfig, load_sequence
    from vhap.data.images import write_rgb_jpeg

    imgs = tmp_path / "rig" / "images"
    imgs.mkdir(parents=True)
    for c in ("a", "b"):
        for t in range(3):
            write_rgb_jpeg(imgs / f"cam_{c}_{t:06d}.jpg", np.full((8, 10, 3), 40 * t, np.uint8))
    seq = load_sequence(DataConfig(root=tmp_path, sequence="rig", require_landmarks=False))
    assert seq.camera_ids == ["a", "b"] and seq.timestep_ids == ["000000", "000001", "000002"]
    assert tuple(seq.images.shape) == (3, 2, 8, 10, 3) and seq.K is None
    assert abs(int(seq.images[2, 1].float().mean()) - 80) <= 2
    assert (seq.landmarks[..., 2] == 0).all() and not seq.landmark_valid.any()
    with pytest.raises(VhapError, match="landmark file not found"):
        load_sequence(DataConfig(root=tmp_path, sequence="rig"))


def _frames(folder, cams, n=2, size=(8, 10)):
    from vhap.data.images import write_rgb_jpeg

    folder.mkdir(parents=True)
    for c in cams:
        for t in range(n):
            name = f"{t:06d}.jpg" if c is None else f"cam_{c}_{t:06d}.jpg"
            write_rgb_jpeg(folder / name, np.full((*size, 3), 30 * (t + 1), np.uint8))


def test_sequence_dir_is_enough_to_address_a_sequence(tmp_path):
    """One sequence folder names everything: root, layout and subject are read from its place."""
    from vhap.data import DataConfig, load_sequence, locate, resolve_sequence_dir

    v2 = tmp_path / "v2"
    seq = v2 / "074" / "sequences" / "EXP-1_head"
    _frames(seq / "images_4", SERIALS[:3])  # frames only: the raw videos may be gone
    (v2 / "074" / "calibration").mkdir()
    (v2 / "074" / "calibration" / "camera_params.json").write_text(json.dumps(camera_params((8, 10), 3)))
    data = resolve_sequence_dir(DataConfig(sequence_dir=seq, downsample=4, require_landmarks=False))
    assert (data.root, data.layout, data.subject, data.sequence) == (v2.resolve(), "nersemble_v2", "074", "EXP-1_head")
    assert resolve_sequence_dir(data) == data  # a saved, resolved config reads back the same
    loaded = load_sequence(DataConfig(sequence_dir=seq, downsample=4, require_landmarks=False))
    assert loaded.camera_ids == SERIALS[:3] and loaded.subject == "074" and loaded.K is not None

    mono = tmp_path / "mono"
    _frames(mono / "talk" / "images", [None], n=3)
    (mono / "talk.mp4").touch()
    entry = locate(mono / "talk")
    assert (entry.layout, entry.cameras, entry.videos["0"].name) == ("monocular", ["0"], "talk.mp4")
    loaded = load_sequence(DataConfig(sequence_dir=mono / "talk", require_landmarks=False))
    assert loaded.camera_ids == ["0"] and loaded.timestep_ids == ["000000", "000001", "000002"]
    assert abs(float(loaded.images[2].float().mean()) - 90) <= 2

    rig = tmp_path / "rigs" / "rig"
    _frames(rig / "images", ["a", "b"])  # uncalibrated multi-camera folder
    loaded = load_sequence(DataConfig(sequence_dir=rig, require_landmarks=False))
    assert loaded.camera_ids == ["a", "b"] and loaded.K is None

    with pytest.raises(VhapError, match="--data.subject 075 disagrees with --data.sequence-dir, which is subject 074"):
        resolve_sequence_dir(DataConfig(sequence_dir=seq, subject="075"))
    with pytest.raises(VhapError, match="no camera videos or extracted frames"):
        resolve_sequence_dir(DataConfig(sequence_dir=tmp_path / "rigs"))
    assert resolve_sequence_dir(DataConfig(sequence_dir=mono / "talk.mp4")).sequence_dir == mono / "talk"
    (mono / "new.mp4").touch()
    with pytest.raises(VhapError, match="(?s)sequence folder .*new does not exist yet.*vhap preprocess"):
        resolve_sequence_dir(DataConfig(sequence_dir=mono / "new.mp4"))


def test_root_and_sequence_name_the_same_address_as_the_folder(tmp_path):
    """``--data.root R --data.sequence PREFIX`` (layout auto) and ``--data.sequence-dir R/.../FULL`` are one
    address once addressed by folder: equal configs, so a finished run or a checkpoint is recognised either way."""
    from vhap.data import DataConfig, address_by_folder

    v2 = tmp_path / "v2"
    seq = v2 / "074" / "sequences" / "EXP-1_head"
    _frames(seq / "images_4", SERIALS[:2])
    (v2 / "074" / "calibration").mkdir()
    by_dir = address_by_folder(DataConfig(sequence_dir=seq, downsample=4))
    by_name = address_by_folder(DataConfig(root=v2, sequence="EXP-1", subject="07", downsample=4))
    assert by_name == by_dir and by_dir.sequence_dir == seq.resolve()
    assert (by_dir.root, by_dir.layout, by_dir.subject, by_dir.sequence) == (
        v2.resolve(),
        "nersemble_v2",
        "074",
        "EXP-1_head",
    )
    assert address_by_folder(by_dir) == by_dir  # a saved, addressed config reads back the same

    mono = tmp_path / "mono"
    _frames(mono / "talk" / "images", [None])
    by_name = address_by_folder(DataConfig(root=mono, sequence="talk", layout="monocular"))
    assert by_name == address_by_folder(DataConfig(sequence_dir=mono / "talk"))
    assert by_name.layout == "monocular" and by_name.sequence_dir == (mono / "talk").resolve()
    assert by_name != address_by_folder(DataConfig(root=v2, sequence="EXP-1", subject="074"))
    with pytest.raises(VhapError, match="no sequence folder named or starting with 'walk'"):
        address_by_folder(DataConfig(root=mono, sequence="walk"))


# ---------------------------------------------------------------- garbage landmarks (#17 items 9, 10)


def _mono_with_landmarks(root, lmk, **extra):
    """A 3-frame monocular sequence folder whose landmark file holds ``lmk`` (T,68,3) and ``extra`` arrays."""
    from vhap.data.images import write_rgb_jpeg

    seq = root / "clip"
    (seq / "images").mkdir(parents=True)
    for t in range(3):
        write_rgb_jpeg(seq / "images" / f"{t:06d}.jpg", np.full((16, 20, 3), 100, np.uint8))
    (seq / "landmark2d").mkdir()
    np.savez(seq / "landmark2d" / "mediapipe.npz", face_landmark_2d=lmk.astype(np.float32),
             timestep_id=np.array([f"{t:06d}" for t in range(3)]), **extra)  # fmt: skip
    return seq


def _good_lmk():
    rng = np.random.default_rng(0)
    lmk = np.concatenate([rng.uniform(0.3, 0.7, (3, 68, 2)), np.ones((3, 68, 1))], -1)
    return lmk.astype(np.float32)


def test_landmark_arrays_of_the_wrong_shape_are_one_clear_error(tmp_path):
    from vhap.data import DataConfig, load_sequence

    good_mp = np.full((3, 478, 3), 0.5, np.float32)
    _mono_with_landmarks(tmp_path, _good_lmk(), mediapipe_478=good_mp)
    assert tuple(load_sequence(DataConfig(root=tmp_path, sequence="clip")).landmarks_mp.shape) == (3, 1, 478, 3)
    for bad, message in (
        (np.full((3, 468, 3), 0.5, np.float32), r"mediapipe_478 has shape \(3, 468, 3\), expected \(3,478,3\)"),
        (np.full((2, 478, 3), 0.5, np.float32), r"mediapipe_478 has shape \(2, 478, 3\)"),
        (np.full((3, 478), 0.5, np.float32), "mediapipe_478 has shape"),
    ):
        shutil.rmtree(tmp_path / "clip")
        _mono_with_landmarks(tmp_path, _good_lmk(), mediapipe_478=bad)
        with pytest.raises(VhapError, match=message):
            load_sequence(DataConfig(root=tmp_path, sequence="clip"))


def test_nan_and_pixel_unit_landmarks(tmp_path):
    from vhap.data import DataConfig, load_sequence, require_fit_landmarks

    lmk = _good_lmk()
    lmk[1, 5, 0] = np.nan  # one frame with a NaN: that frame is invalid, the others stay
    _mono_with_landmarks(tmp_path, lmk)
    seq = load_sequence(DataConfig(root=tmp_path, sequence="clip"))
    assert seq.landmark_valid[:, 0].tolist() == [True, False, True] and torch.isfinite(seq.landmarks).all()
    require_fit_landmarks(seq, "mediapipe")
    # all NaN: the sequence loads, but there is nothing to fit
    shutil.rmtree(tmp_path / "clip")
    _mono_with_landmarks(tmp_path, np.full((3, 68, 3), np.nan))
    seq = load_sequence(DataConfig(root=tmp_path, sequence="clip"))
    with pytest.raises(VhapError, match="no frame has valid 'mediapipe' landmarks"):
        require_fit_landmarks(seq, "mediapipe")
    # pixel units instead of fractions of the image size
    shutil.rmtree(tmp_path / "clip")
    _mono_with_landmarks(tmp_path, _good_lmk() * [20, 16, 1])
    with pytest.raises(VhapError, match="look like pixel coordinates"):
        load_sequence(DataConfig(root=tmp_path, sequence="clip"))


def test_absent_landmarks_leave_nothing_to_fit(tmp_path):
    from vhap.data import DataConfig, load_sequence, require_fit_landmarks

    _mono_with_landmarks(tmp_path, _good_lmk())
    shutil.rmtree(tmp_path / "clip" / "landmark2d")
    seq = load_sequence(DataConfig(root=tmp_path, sequence="clip", require_landmarks=False))
    with pytest.raises(VhapError, match="nothing to fit"):
        require_fit_landmarks(seq, "mediapipe")


def test_camera_to_world_given_as_world_to_camera_is_caught(tmp_path):
    """The inverse of every matrix is still rigid, in metres, det +1 - only the rig geometry gives it away: the
    optical axes of a head rig meet at the head in front of the cameras."""
    d = camera_params((144, 176))
    load_camera_params(_write(tmp_path, d))  # the real rig passes
    d["world_2_cam"] = {k: np.linalg.inv(np.array(m)).tolist() for k, m in d["world_2_cam"].items()}
    with pytest.raises(VhapError, match="optical axes do not meet in front") as e:
        load_camera_params(_write(tmp_path, d))
    assert "camera-to-world matrices: store their inverses" in str(e.value)
    # the same rig looking away from the head (another axis convention): the error without the inverse hint
    d = camera_params((144, 176))
    flip = np.diag([-1.0, 1, -1, 1])  # rotate every camera 180 degrees about its y axis
    d["world_2_cam"] = {k: (flip @ np.array(m)).tolist() for k, m in d["world_2_cam"].items()}
    with pytest.raises(VhapError, match="optical axes do not meet in front"):
        load_camera_params(_write(tmp_path, d))


def test_landmark_cameras_fit_landmarks_of_those_views_only(tmp_path):
    """#19 item 3: --data.landmark-cameras keeps every camera's frames but only the listed cameras' landmarks;
    the others need no landmark file and count as 'no landmarks' (confidence 0), MediaPipe points included."""
    from vhap.data import DataConfig, load_sequence

    v2 = tmp_path / "v2"
    seq = v2 / "074" / "sequences" / "EXP-1"
    _frames(seq / "images", SERIALS[:3])
    (v2 / "074" / "calibration").mkdir()
    (v2 / "074" / "calibration" / "camera_params.json").write_text(json.dumps(camera_params((8, 10), 3)))
    (seq / "landmark2d" / "mediapipe").mkdir(parents=True)
    lmk = _good_lmk()[:2]
    for i, serial in enumerate(SERIALS[:2]):  # no landmark file for the third camera
        np.savez(seq / "landmark2d" / "mediapipe" / f"{serial}.npz", face_landmark_2d=lmk + 0.01 * i,
                 timestep_id=np.array(["000000", "000001"]),
                 mediapipe_478=np.full((2, 478, 3), 0.5, np.float32))  # fmt: skip
    with pytest.raises(VhapError, match="landmark file not found"):
        load_sequence(DataConfig(sequence_dir=seq))
    loaded = load_sequence(DataConfig(sequence_dir=seq, landmark_cameras=(SERIALS[1],)))
    assert loaded.camera_ids == SERIALS[:3] and tuple(loaded.images.shape[:2]) == (2, 3)
    assert loaded.landmark_valid.tolist() == [[False, True, False]] * 2
    assert np.allclose(loaded.landmarks[:, 1].numpy(), lmk + 0.01)
    assert (loaded.landmarks[:, [0, 2], :, 2] == 0).all() and (loaded.landmarks[:, [0, 2], :, :2] == -1).all()
    assert tuple(loaded.landmarks_mp.shape) == (2, 3, 478, 3) and (loaded.landmarks_mp[:, 0, :, 2] == 0).all()
    assert (loaded.landmarks_mp[:, 1, :, 2] == 0.5).all()
    with pytest.raises(VhapError, match=r"landmark cameras \['nope'\] are not among the tracked cameras"):
        load_sequence(DataConfig(sequence_dir=seq, landmark_cameras=("nope",)))
    with pytest.raises(VhapError, match="not among the tracked cameras"):  # left out by --data.cameras
        load_sequence(DataConfig(sequence_dir=seq, cameras=(SERIALS[0],), landmark_cameras=(SERIALS[1],)))
