"""``vhap validate-export`` catches each kind of violation it checks (a valid export is corrupted one way at a
time), and ``vhap combine`` builds union datasets that validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_export_fixtures import make_run, standin_head

from vhap.errors import VhapError
from vhap.export.combine import combine_datasets
from vhap.export.config import CombineConfig, ExportConfig
from vhap.export.ga_reader import read_ga_dataset
from vhap.export.nerf import export_nerf_dataset
from vhap.export.splits import select_test_sequences
from vhap.export.validate import validate_export


@pytest.fixture(scope="module")
def head(tmp_path_factory, flame_topology_dir) -> str:
    return standin_head(tmp_path_factory.mktemp("heads"))


@pytest.fixture(scope="module")
def exports(tmp_path_factory, head) -> dict[str, Path]:
    """Two sibling exports of subject 999, 4 timesteps x 4 cameras each."""
    root = tmp_path_factory.mktemp("exp")
    out = {}
    for name, seed in (("999_EXP-1", 11), ("999_EXP-2", 12)):
        run = make_run(root / f"run_{name}", head, rig="multiview", num_frames=4, num_cameras=4, seed=seed)
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=root / "export" / name, mask_below_neck=False))
        out[name] = root / "export" / name
    return out


@pytest.fixture
def broken(tmp_path, exports) -> Path:
    """A private copy of a valid export, for corrupting."""
    dst = tmp_path / "999_broken"
    shutil.copytree(exports["999_EXP-1"], dst)
    assert validate_export(dst).ok
    return dst


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _only(rep, check: str, text: str) -> None:
    assert not rep.ok
    assert rep.has(check, text), [(i.check, i.message) for i in rep.issues]


# ---------------------------------------------------------------------------------------------- validator


def test_valid_exports_pass(exports):
    for path in exports.values():
        rep = validate_export(path, decode_images=True)
        assert rep.ok and rep.stats["num_timesteps"] == 4 and rep.stats["images_checked"] == 16


def test_non_rigid_c2w(broken):
    def scale(doc):
        doc["frames"][0]["transform_matrix"][0][0] *= 1.1

    _edit_json(broken / "transforms_train.json", scale)
    _only(validate_export(broken), "c2w_rigid", "not rigid")


def test_bad_last_row(broken):
    def row(doc):
        doc["frames"][1]["transform_matrix"][3] = [0, 0, 1, 1]

    _edit_json(broken / "transforms_test.json", row)
    _only(validate_export(broken), "c2w_rigid", "last row")


def test_reflection(broken):
    def mirror(doc):
        m = np.asarray(doc["frames"][0]["transform_matrix"])
        m[:3, 0] *= -1
        doc["frames"][0]["transform_matrix"] = m.tolist()

    _edit_json(broken / "transforms_val.json", mirror)
    _only(validate_export(broken), "c2w_rigid", "det -1")


def test_inconsistent_fov(broken):
    def fov(doc):
        doc["frames"][2]["camera_angle_x"] *= 1.05

    _edit_json(broken / "transforms_train.json", fov)
    _only(validate_export(broken), "fov", "inconsistent with w")


def test_missing_camera_angle(broken):
    def drop(doc):
        doc.pop("camera_angle_x")
        doc["frames"][0].pop("camera_angle_x")

    _edit_json(broken / "transforms_train.json", drop)
    _only(validate_export(broken), "frame_keys", "camera_angle_x missing")


def test_wrong_types(broken):
    def types(doc):
        doc["frames"][0]["timestep_index"] = "0"
        doc["frames"][1]["w"] = 48.5

    _edit_json(broken / "transforms_train.json", types)
    rep = validate_export(broken)
    _only(rep, "frame_keys", "timestep_index missing or not an int")
    assert rep.has("frame_keys", "w is not a positive int")


def test_camera_id_without_index(broken):
    def drop(doc):
        doc["frames"][0].pop("camera_index")

    _edit_json(broken / "transforms_test.json", drop)
    _only(validate_export(broken), "camera_index", "no integer camera_index")


def test_timestep_gap(broken):
    def shift(doc):
        for f in doc["frames"]:
            f["timestep_index"] += 2

    _edit_json(broken / "transforms_test.json", shift)
    _only(validate_export(broken), "timesteps", "not contiguous")


def test_train_test_overlap(broken):
    def overlap(doc):
        doc["frames"][0]["timestep_index"] = 0

    _edit_json(broken / "transforms_test.json", overlap)
    rep = validate_export(broken)
    _only(rep, "split_disjoint", "train and test share 1 timesteps")


def test_missing_referenced_files(broken):
    (broken / "images" / "00001_02.png").unlink()
    (broken / "flame_param" / "00002.npz").unlink()
    rep = validate_export(broken)
    _only(rep, "file_exists", "00001_02.png")
    assert rep.has("file_exists", "00002.npz")


def test_wrong_image_size_and_unreadable_image(broken):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(broken / "images" / "00000_00.png")
    (broken / "images" / "00000_01.png").write_bytes(b"not an image")
    rep = validate_export(broken)
    _only(rep, "image", "image is 10x10 but the frame declares w x h = 48x64")
    assert rep.has("image", "unreadable image")


def test_flame_param_shapes(broken):
    path = broken / "flame_param" / "00001.npz"
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["expr"] = d["expr"][:, :50]
    d["rotation"] = d["rotation"][0]  # lost its leading singleton dimension
    d.pop("eyes_pose")
    np.savez(path, **d)
    rep = validate_export(broken)
    _only(rep, "flame_param", "'expr' has shape (1, 50), expected (1, 100)")
    assert rep.has("flame_param", "'rotation' has shape (3,), expected (1, 3)")
    assert rep.has("flame_param", "key 'eyes_pose' missing")


def test_static_offset_vertex_count(broken):
    path = broken / "flame_param" / "00000.npz"
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["static_offset"] = d["static_offset"][:, :5023]  # without the 120 teeth vertices
    np.savez(path, **d)
    _only(validate_export(broken), "static_offset", "has 5023 vertices, expected 5143")


def test_missing_required_files(broken):
    (broken / "canonical_flame_param.npz").unlink()
    (broken / "transforms_val.json").unlink()
    rep = validate_export(broken)
    _only(rep, "required_file", "GaussianAvatars uses its existence")
    assert rep.has("required_file", "reads all three split files")


def test_inconsistent_head_model_record(broken):
    for name in ("transforms", "transforms_train", "transforms_val", "transforms_test"):
        _edit_json(broken / f"{name}.json", lambda d: d["head_model"].update(num_verts=5100))
    _only(validate_export(broken), "head_model", "recorded num_verts 5100")


def test_json_report_and_warning_only_datasets(broken, capsys):
    from vhap.cli import main

    # no static offset: GA needs a flag, but the dataset is valid
    for p in sorted((broken / "flame_param").glob("*.npz")):
        with np.load(p) as z:
            d = {k: z[k] for k in z.files if k != "static_offset"}
        np.savez(p, **d)
    rep = validate_export(broken)
    assert rep.ok and rep.has("static_offset", "--disable_flame_static_offset")
    assert main(["validate-export", str(broken), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["num_warnings"] >= 1
    with pytest.raises(VhapError, match="crashes without"):
        read_ga_dataset(broken)
    assert read_ga_dataset(broken, disable_static_offset=True).flame.static_offset is None


# ---------------------------------------------------------------------------------------------- union


def test_union_of_two_sequences_validates(exports, tmp_path):
    parent = next(iter(exports.values())).parent
    tgt = parent / "UNION_999_test"
    s = combine_datasets(CombineConfig(src=tuple(exports.values()), tgt=tgt, division_mode="last"))
    assert s.train_sequences == ["999_EXP-1"] and s.test_sequences == ["999_EXP-2"]
    rep = validate_export(tgt, decode_images=True)
    assert rep.ok, [(i.check, i.message) for i in rep.errors]
    assert rep.stats["num_timesteps"] == 8
    full = json.loads((tgt / "transforms.json").read_text())
    assert len(full["frames"]) == 32
    f = full["frames"][0]
    assert f["file_path"] == "../999_EXP-1/images/00000_00.png" and f["sequence"] == "999_EXP-1"
    assert "timestep_index_original" not in f
    test = json.loads((tgt / "transforms_test.json").read_text())
    assert test["timestep_indices"] == [4, 5, 6, 7] and test["frames"][0]["file_path"].startswith("../999_EXP-2/")
    val = json.loads((tgt / "transforms_val.json").read_text())
    assert val["camera_indices"] == [3] and val["timestep_indices"] == [0, 1, 2, 3]  # 4 cameras: the last is val
    assert (tgt / "sequences_test.txt").read_text() == "999_EXP-2\n"
    assert (tgt / "canonical_flame_param.npz").read_bytes() == (
        exports["999_EXP-1"] / "canonical_flame_param.npz"
    ).read_bytes()
    # different identities per sequence: GA uses timestep 0's (a warning, not an error)
    assert rep.has("flame_param", "different identity shapes")
    ds = read_ga_dataset(tgt, num_verts=5143)
    assert ds.flame.num_timesteps == 8 and len(ds.cameras["test"]) == 16
    assert ds.cameras["test"][0].image_path.is_file()


def test_union_refuses_mixed_subjects_and_single_sources(exports, tmp_path):
    a = exports["999_EXP-1"]
    other = a.parent / "123_EXP-1"
    if not other.exists():
        shutil.copytree(a, other)
    with pytest.raises(VhapError, match="different subjects"):
        combine_datasets(CombineConfig(src=(a, other), tgt=a.parent / "U1"))
    with pytest.raises(VhapError, match="at least two"):
        combine_datasets(CombineConfig(src=(a,), tgt=a.parent / "U2"))
    s = combine_datasets(CombineConfig(src=(a, other), tgt=a.parent / "U3", check_subject=False))
    assert validate_export(a.parent / "U3").ok and len(s.test_sequences) == 1
    shutil.rmtree(other)


def test_test_sequence_selection():
    names = [f"s{i}" for i in range(25)]
    picks = select_test_sequences(names, "random_group", seed="074")
    assert len(picks) == 2 and 0 <= picks[0] < 10 and 10 <= picks[1] < 20  # one per full group of 10
    assert picks == select_test_sequences(names, "random_group", seed="074")  # seeded by the subject
    many = {tuple(select_test_sequences(names, "random_group", seed=str(s))) for s in range(40)}
    assert len(many) > 10
    # exactly the members of group 1 can be drawn (VHAP's shrinking list shifts group 1 by one: original
    # index 10 could never be drawn, index 20 of the next group could)
    seen = {select_test_sequences(names, "random_group", seed=str(s))[1] for s in range(300)}
    assert seen == set(range(10, 20))
    assert select_test_sequences(names[:4], "random_group", seed="x")[0] in range(4)
    assert select_test_sequences(names, "last", seed="x") == [24]
    assert len(select_test_sequences(names, "random_single", seed="x")) == 1
    with pytest.raises(VhapError):
        select_test_sequences(names, "bogus", seed="x")


# ------------------------------------------------------------------ geometry and GaussianAvatars gaps (#17 13, 14)

SPLIT_FILES = ("transforms", "transforms_train", "transforms_val", "transforms_test")


def _edit_frames(root: Path, fn) -> None:
    for name in SPLIT_FILES:
        _edit_json(root / f"{name}.json", lambda d: [fn(f) for f in d["frames"]])


def _edit_npz(path: Path, fn) -> None:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    fn(d)
    np.savez(path, **d)


def test_head_in_view_holds_for_valid_exports(exports):
    for path in exports.values():
        stats = validate_export(path).stats["head_in_view"]
        assert stats["frames"] > 0 and stats["behind"] == stats["outside"] == stats["off_mask"] == 0


def test_wrong_axis_convention_puts_the_head_behind_every_camera(broken):
    """OpenCV camera-to-world written where GaussianAvatars reads OpenGL: still rigid, det +1 - but the head is
    behind each camera and GA renders nothing."""
    flip = np.diag([1.0, -1.0, -1.0, 1.0])

    def opencv(f):
        f["transform_matrix"] = (np.asarray(f["transform_matrix"]) @ flip).tolist()

    _edit_frames(broken, opencv)
    rep = validate_export(broken)
    _only(rep, "head_in_view", "the tracked head is behind the camera")
    assert rep.stats["head_in_view"]["behind"] == rep.stats["head_in_view"]["frames"]


def test_head_off_the_foreground_mask_and_out_of_the_image(broken):
    for p in (broken / "fg_masks").glob("*_00.png"):
        Image.fromarray(np.zeros((64, 48), np.uint8)).save(p)
    rep = validate_export(broken)
    _only(rep, "head_in_view", "where the foreground mask is empty")

    def shift(f):  # the principal point far off: the head lands outside the picture
        f["cx"] = f["cx"] + 10 * f["w"]

    _edit_frames(broken, shift)
    assert validate_export(broken).has("head_in_view", "outside the 48x64 image")


def test_camera_absurdly_far(broken):
    def far(f):
        m = np.asarray(f["transform_matrix"])
        m[:3, 3] *= 500.0  # the camera 500 x further out from the relocated head at the origin
        f["transform_matrix"] = m.tolist()

    _edit_frames(broken, far)
    _only(validate_export(broken), "camera_distance", "m from the head")


def test_nan_offsets(broken):
    _edit_npz(broken / "flame_param" / "00001.npz", lambda d: d["static_offset"].__setitem__((0, 7, 1), np.nan))
    _only(validate_export(broken), "static_offset", "'static_offset' has NaN/Inf")
    path = broken / "flame_param" / "00002.npz"
    _edit_npz(path, lambda d: d.__setitem__("dynamic_offset", np.full_like(d["static_offset"], np.inf)))
    assert validate_export(broken).has("static_offset", "'dynamic_offset' has NaN/Inf")


def test_truncated_image_found_by_default(broken, capsys):
    from vhap.cli import main

    img = broken / "images" / "00001_01.png"
    img.write_bytes(img.read_bytes()[:-200])  # the header (and so the size) intact
    assert validate_export(broken, decode_images=False).ok  # headers alone cannot tell
    _only(validate_export(broken), "image", "unreadable image")
    assert main(["validate-export", str(broken)]) == 1
    assert main(["validate-export", str(broken), "--no-decode-images"]) == 0
    capsys.readouterr()


def test_non_flame_vertex_count_and_tiny_splits_for_gaussian_avatars(broken):
    for name in SPLIT_FILES:
        _edit_json(broken / f"{name}.json", lambda d: d["head_model"].update(num_verts=6765, num_verts_base=6645))
    for p in [*(broken / "flame_param").glob("*.npz"), broken / "canonical_flame_param.npz"]:
        _edit_npz(p, lambda d: d.__setitem__("static_offset", np.zeros((1, 6765, 3), np.float32)))
    rep = validate_export(broken, head_model="unknown-model")
    _only(rep, "gaussian_avatars", "crops static_offset to 5143 rows")
    rep = validate_export(broken, head_model="unknown-model", for_gaussian_avatars=False)
    assert rep.ok, [(i.check, i.message) for i in rep.errors]
    # a val split of 1-9 frames: GA's evaluation takes every len//10-th frame
    n_val = len(json.loads((broken / "transforms_val.json").read_text())["frames"])
    assert 1 <= n_val <= 9
    assert validate_export(broken, head_model="unknown-model").has("gaussian_avatars", f"{n_val} frames")
