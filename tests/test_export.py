"""``vhap export`` end to end on synthetic tracked runs (monocular and multi-view), the GA-semantics reader,
landmark re-projection through the exported cameras, splits, hard links, neck cut and meshes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_export_fixtures import make_run, standin_head

from vhap.errors import VhapError
from vhap.export.config import ExportConfig
from vhap.export.flame import build_head_model, pose_head, stack_params, timestep_params
from vhap.export.ga_reader import read_ga_dataset
from vhap.export.neck_mask import blur_kernel_size, gaussian_blur, neck_line_keep_mask
from vhap.export.nerf import export_nerf_dataset
from vhap.export.splits import split_frames
from vhap.export.validate import validate_export
from vhap.render import Cameras, c2w_opengl_to_opencv, invert_rigid


@pytest.fixture(scope="module")
def head(tmp_path_factory, flame_topology_dir) -> str:
    return standin_head(tmp_path_factory.mktemp("heads"))


@pytest.fixture(scope="module")
def mono_run(tmp_path_factory, head):
    return make_run(tmp_path_factory.mktemp("mono"), head, rig="monocular", num_frames=4, seed=1)


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory, head):
    return make_run(tmp_path_factory.mktemp("multi"), head, rig="multiview", num_frames=4, num_cameras=10, seed=2)


@pytest.fixture(scope="module")
def multi_export(tmp_path_factory, multi_run):
    tgt = tmp_path_factory.mktemp("exports") / "999_multi"
    export_nerf_dataset(ExportConfig(src=multi_run.run_dir, tgt=tgt))
    return tgt


@pytest.fixture(scope="module")
def mono_export(tmp_path_factory, mono_run):
    tgt = tmp_path_factory.mktemp("exports") / "999_mono"
    export_nerf_dataset(ExportConfig(src=mono_run.run_dir, tgt=tgt))
    return tgt


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _exported_cameras(frame: dict) -> Cameras:
    """OpenCV camera of an exported frame: full intrinsics (top-origin cy) + inverted OpenGL c2w."""
    c2w_gl = torch.tensor(frame["transform_matrix"], dtype=torch.float64)
    w2c = invert_rigid(c2w_opengl_to_opencv(c2w_gl))
    K = torch.tensor([[frame["fl_x"], 0, frame["cx"]], [0, frame["fl_y"], frame["cy"]], [0, 0, 1]], dtype=torch.float64)
    return Cameras(K=K, w2c=w2c, image_size=(frame["h"], frame["w"]))


def _landmarks_from_file(model, npz_path: Path) -> torch.Tensor:
    with np.load(npz_path) as z:
        params = {k: z[k] for k in z.files}
    return pose_head(model, stack_params([params])).landmarks[0].double()


# ---------------------------------------------------------------------------------------------- exports


def test_multiview_export_layout_splits_and_validation(multi_export, multi_run):
    rep = validate_export(multi_export)
    assert rep.ok, [i.message for i in rep.errors]
    full = _load(multi_export / "transforms.json")
    assert len(full["frames"]) == 4 * 10
    convention = {"transform_matrix": "opengl_c2w", "intrinsics": "opencv_pixels_top_left_origin"}
    assert full["camera_convention"] == convention
    # splits (§6.3 step 4): ceil(0.7*4) = 3 train timesteps; val = camera 8; test = all cameras of timestep 3
    tr, va, te = (_load(multi_export / f"transforms_{s}.json") for s in ("train", "val", "test"))
    assert tr["timestep_indices"] == [0, 1, 2] and tr["camera_indices"] == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    assert va["timestep_indices"] == [0, 1, 2] and va["camera_indices"] == [8]
    assert te["timestep_indices"] == [3] and te["camera_indices"] == list(range(10))
    assert (len(tr["frames"]), len(va["frames"]), len(te["frames"])) == (27, 3, 10)
    # calibrated data: cy is written top-origin (OpenCV), equal to the tracking K
    f = full["frames"][13]
    K = multi_run.K[f["camera_index"]]
    assert (f["fl_x"], f["fl_y"], f["cx"], f["cy"]) == pytest.approx((K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    assert f["camera_angle_x"] == pytest.approx(2 * math.atan(48 / (2 * K[0, 0])))
    assert f["file_path"] == "images/00001_03.png" and f["camera_id"] == multi_run.camera_ids[3]
    for name in ("images/00003_09.png", "fg_masks/00003_09.png", "flame_param/00003.npz", "export_config.yml"):
        assert (multi_export / name).is_file(), name
    # relocation: the exported translations have zero mean, the head stays where the cameras see it
    tr_ex = np.concatenate([np.load(multi_export / f"flame_param/{t:05d}.npz")["translation"] for t in range(4)])
    assert np.abs(tr_ex.mean(0)).max() < 1e-6
    np.testing.assert_allclose(
        tr_ex + np.asarray(full["relocation_translation"]), multi_run.params["translation"], atol=1e-6
    )
    canon = np.load(multi_export / "canonical_flame_param.npz")
    assert canon["jaw_pose"].tolist() == [[pytest.approx(0.3), 0.0, 0.0]]
    assert canon["static_offset"].shape == (1, 5143, 3) and np.abs(canon["expr"]).max() == 0
    assert full["head_model"]["num_verts"] == 5143 and full["head_model"]["teeth"] is True


def test_monocular_export_uses_optimised_intrinsics_and_splits(mono_export, mono_run):
    rep = validate_export(mono_export)
    assert rep.ok, [i.message for i in rep.errors]
    full = _load(mono_export / "transforms.json")
    K = mono_run.K[0]
    # top level = the real (optimised) camera, not VHAP's 512 placeholder
    assert full["fl_x"] == pytest.approx(K[0, 0]) and full["cx"] == pytest.approx(K[0, 2])
    assert full["w"] == 48 and full["h"] == 64
    tr, va, te = (_load(mono_export / f"transforms_{s}.json") for s in ("train", "val", "test"))
    assert [f["timestep_index"] for f in tr["frames"]] == [0, 1, 2]
    assert va["frames"] == [] and [f["timestep_index"] for f in te["frames"]] == [3]
    assert all(f["camera_index"] == 0 and f["camera_id"] == mono_run.camera_ids[0] for f in full["frames"])


@pytest.mark.parametrize("which", ["mono", "multi"])
def test_landmarks_through_exported_cameras_match_tracker_projection(which, request, head):
    run = request.getfixturevalue(f"{which}_run")
    export = request.getfixturevalue(f"{which}_export")
    model = build_head_model(head, 300, 100, add_teeth=True)
    tracked = stack_params([timestep_params(run.params, t) for t in range(4)])
    lmk_world = pose_head(model, tracked).landmarks.double()  # (T,70,3) tracking world
    cams_world = Cameras(K=torch.from_numpy(run.K), w2c=torch.from_numpy(run.w2c), image_size=run.image_size)
    worst = 0.0
    frames = _load(export / "transforms.json")["frames"]
    for f in frames:
        t, c = f["timestep_index"], f["camera_index"]
        ref = cams_world[c].project(lmk_world[t : t + 1])[0]
        got = _exported_cameras(f).project(_landmarks_from_file(model, export / f["flame_param_path"])[None])[0]
        worst = max(worst, float((got - ref).norm(dim=-1).max()))
    assert worst < 0.5, worst
    assert worst < 1e-2  # in practice float32 round-off only
    # and against the generator's own (numpy) projection of the ground-truth landmarks
    gt = np.load(run.frame_paths[0][0].parents[1] / "ground_truth" / "landmarks_2d.npz")["pixels"]
    f = next(f for f in frames if f["timestep_index"] == 2)
    got = _exported_cameras(f).project(_landmarks_from_file(model, export / f["flame_param_path"])[None])[0]
    assert float(np.abs(got[:68].numpy() - gt[2, f["camera_index"]]).max()) < 0.5


def test_ga_reader_loads_cameras_and_params(multi_export, multi_run, head):
    ds = read_ga_dataset(multi_export, num_verts=5143)
    assert [len(ds.cameras[s]) for s in ("train", "val", "test")] == [27, 3, 10]
    assert ds.flame.num_timesteps == 4 and ds.flame.static_offset.shape == (1, 5143, 3)
    np.testing.assert_allclose(ds.flame.per_timestep["expr"], multi_run.params["expr"], atol=1e-7)
    np.testing.assert_allclose(ds.flame.shape, multi_run.params["shape"], atol=1e-7)
    # GA renders with a centred principal point and fov-x only: with the synthetic rig's centred K, its
    # cameras reproduce the tracking projection of the landmarks
    model = build_head_model(head, 300, 100, add_teeth=True)
    cam = ds.cameras["test"][5]
    K_run = multi_run.K[cam.camera_index]
    assert K_run[0, 2] == pytest.approx(24.0) and K_run[1, 2] == pytest.approx(32.0)
    np.testing.assert_allclose(cam.K(), K_run, rtol=1e-9, atol=1e-9)
    lmk = _landmarks_from_file(model, multi_export / "flame_param" / f"{cam.timestep_index:05d}.npz")
    ga = Cameras(K=torch.from_numpy(cam.K()), w2c=torch.from_numpy(cam.w2c()), image_size=(cam.height, cam.width))
    tracked = stack_params([timestep_params(multi_run.params, 3)])
    ref_world = pose_head(model, tracked).landmarks.double()
    ref = Cameras(
        K=torch.from_numpy(K_run), w2c=torch.from_numpy(multi_run.w2c[cam.camera_index]), image_size=(64, 48)
    ).project(ref_world)[0]
    assert float((ga.project(lmk[None])[0] - ref).norm(dim=-1).max()) < 0.5


def test_split_rule_counts():
    frames = [{"timestep_index": t, "camera_index": c} for t in range(10) for c in range(16)]
    s = split_frames(frames)
    assert sorted({f["timestep_index"] for f in s["train"]}) == list(range(7))
    assert {f["camera_index"] for f in s["val"]} == {8} and len(s["val"]) == 7
    assert {f["timestep_index"] for f in s["test"]} == {7, 8, 9} and len(s["test"]) == 48
    # fewer than 9 cameras: the last one is val
    s = split_frames([{"timestep_index": t, "camera_index": c} for t in range(3) for c in range(4)])
    assert {f["camera_index"] for f in s["val"]} == {3}
    assert sorted({f["timestep_index"] for f in s["train"]}) == [0, 1, 2] and s["test"] == []


# ---------------------------------------------------------------------------------------------- options


def test_hard_links_when_nothing_is_recomposited(tmp_path, mono_run):
    tgt = tmp_path / "linked"
    s = export_nerf_dataset(
        ExportConfig(src=mono_run.run_dir, tgt=tgt, background="none", mask_below_neck=False, image_format="jpg")
    )
    assert s.images_linked == 4 and s.masks_linked == 4
    assert os.path.samefile(tgt / "images" / "00000_00.jpg", mono_run.frame_paths[0][0])
    assert os.path.samefile(tgt / "fg_masks" / "00002_00.png", mono_run.alpha_paths[2][0])
    assert _load(tgt / "transforms.json")["frames"][0]["file_path"] == "images/00000_00.jpg"
    assert validate_export(tgt).ok
    # asking for PNG from JPEG frames re-encodes (no link) but keeps the pixels
    tgt2 = tmp_path / "png"
    s = export_nerf_dataset(ExportConfig(src=mono_run.run_dir, tgt=tgt2, background="none", mask_below_neck=False))
    assert s.images_linked == 0 and s.masks_linked == 4
    a = np.asarray(Image.open(tgt2 / "images" / "00001_00.png"))
    b = np.asarray(Image.open(mono_run.frame_paths[1][0]))
    assert np.array_equal(a, b)
    # compositing never links
    s = export_nerf_dataset(
        ExportConfig(src=mono_run.run_dir, tgt=tmp_path / "white", mask_below_neck=False, image_format="jpg")
    )
    assert s.images_linked == 0


def test_background_compositing_uses_the_matte(tmp_path, mono_run):
    for bg, value in (("white", 255), ("black", 0)):
        tgt = tmp_path / bg
        export_nerf_dataset(ExportConfig(src=mono_run.run_dir, tgt=tgt, background=bg, mask_below_neck=False))
        img = np.asarray(Image.open(tgt / "images" / "00000_00.png")).astype(int)
        alpha = np.asarray(Image.open(mono_run.alpha_paths[0][0]))
        src = np.asarray(Image.open(mono_run.frame_paths[0][0])).astype(int)
        assert np.all(img[alpha == 0] == value)
        assert np.array_equal(img[alpha == 255], src[alpha == 255])


def test_neck_cut_removes_everything_below_the_projected_line(tmp_path, head):
    run = make_run(tmp_path, head, rig="multiview", num_frames=2, num_cameras=3, image_size=(80, 60), seed=5)
    # full-frame mattes: the exported foreground mask is then exactly the (un-blurred at this width) keep mask
    for row in run.alpha_paths:
        for p in row:
            Image.fromarray(np.full((80, 60), 255, np.uint8)).save(p)
    tgt = tmp_path / "cut"
    export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tgt, background="white"))
    assert blur_kernel_size(60) == 1
    model = build_head_model(head, 300, 100, add_teeth=True)
    ids = [int(model.regions.vertex_ids(n)[0]) for n in ("neck_left_point", "neck_right_point")]
    ids.append(int(model.regions.vertex_ids("front_middle_bottom_point_boundary")[0]))
    tracked = stack_params([timestep_params(run.params, 1)])
    verts = pose_head(model, tracked).verts[:, ids].double()
    for c in range(3):
        cam = Cameras(K=torch.from_numpy(run.K[c]), w2c=torch.from_numpy(run.w2c[c]), image_size=(80, 60))
        pl, pr, pb = cam.project(verts)[0].numpy()
        mask = np.asarray(Image.open(tgt / "fg_masks" / f"00001_{c:02d}.png")) / 255.0
        img = np.asarray(Image.open(tgt / "images" / f"00001_{c:02d}.png"))
        k = (pr[1] - pl[1]) / (pr[0] - pl[0])
        ys, xs = np.mgrid[0:80, 0:60] + 0.5
        line = pb[1] + k * (xs - pb[0])
        below, above = ys > line + 0.5, ys < line - 0.5
        assert below.sum() > 20 and above.sum() > 20
        assert np.all(mask[below] == 0) and np.all(mask[above] == 1)
        assert np.all(img[below] == 255)


def test_neck_keep_mask_geometry_and_blur():
    left, right, bottom = np.array([10.0, 20.0]), np.array([50.0, 20.0]), np.array([30.0, 30.0])
    m = neck_line_keep_mask(left, right, bottom, (40, 60), blur=False)
    assert np.all(m[:29] == 1) and np.all(m[30:] == 0)  # pixel centres y < 30 kept
    # a tilted line: slope 0.5 through (0, 10)
    m = neck_line_keep_mask(np.array([0.0, 0.0]), np.array([2.0, 1.0]), np.array([0.0, 10.0]), (40, 40), blur=False)
    assert m[int(10 + 0.5 * 30) - 1, 30] == 1 and m[int(10 + 0.5 * 30) + 1, 30] == 0
    k = blur_kernel_size(550)
    assert k == 17
    step = np.zeros((40, 40), np.float32)
    step[:20] = 1
    out = gaussian_blur(step, k, k)
    assert out.sum() == pytest.approx(step.sum(), rel=1e-5)  # mirror borders keep the mass
    assert 0 < out[20, 5] < out[19, 5] < 1


def test_mesh_mode_writes_posed_meshes(tmp_path, mono_run, head):
    tgt = tmp_path / "mesh"
    export_nerf_dataset(ExportConfig(src=mono_run.run_dir, tgt=tgt, flame_mode="mesh", mask_below_neck=False))
    from vhap.model.mesh_io import read_obj

    mesh = read_obj(tgt / "meshes" / "00002.obj")
    assert mesh.verts.shape == (5143, 3) and mesh.faces.shape == (10144, 3)
    model = build_head_model(head, 300, 100, add_teeth=True)
    with np.load(tgt / "flame_param" / "00002.npz") as z:
        ref = pose_head(model, stack_params([{k: z[k] for k in z.files}])).verts[0].numpy()
    np.testing.assert_allclose(mesh.verts, ref, atol=2e-6)
    assert np.loadtxt(tgt / "flame" / "exp" / "00002.txt").shape == (100,)
    assert read_obj(tgt / "canonical.obj").verts.shape == (5143, 3)
    f = _load(tgt / "transforms.json")["frames"][2]
    assert f["mesh_path"] == "meshes/00002.obj" and f["exp_path"] == "flame/exp/00002.txt"
    assert validate_export(tgt).ok


def test_errors_and_atomicity(tmp_path, head):
    run = make_run(tmp_path, head, rig="monocular", num_frames=2, done=False, seed=3)
    with pytest.raises(VhapError, match="not finished"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "x"))
    (run.run_dir / "DONE").write_text("")
    (tmp_path / "exists").mkdir()
    with pytest.raises(VhapError, match="already exists"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "exists"))
    with pytest.raises(VhapError, match="fills the removed part"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "x", background="none"))
    # a frame vanishes mid-way: nothing appears at the target, no temporary folder is left behind
    run.frame_paths[1][0].unlink()
    with pytest.raises(VhapError, match="image not found"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "x", mask_below_neck=False))
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.")]
    # no mattes: compositing is refused, --background none works
    frames = json.loads((run.run_dir / "frames.json").read_text())
    for f in frames["frames"]:
        f.pop("alpha_path")
    (run.run_dir / "frames.json").write_text(json.dumps(frames))
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(run.frame_paths[1][0])
    with pytest.raises(VhapError, match="needs alpha mattes"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "y", mask_below_neck=False))
    export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "y", background="none", mask_below_neck=False))
    assert "fg_mask_path" not in _load(tmp_path / "y" / "transforms.json")["frames"][0]
    assert validate_export(tmp_path / "y").ok


def test_cli_export_and_validate(tmp_path, mono_run, capsys):
    from vhap.cli import main

    tgt = tmp_path / "cli_export"
    rc = main(["export", "--src", str(mono_run.run_dir), "--tgt", str(tgt), "--image-format", "jpg"])
    assert rc == 0 and (tgt / "images" / "00003_00.jpg").is_file()
    assert "image_format: jpg" in (tgt / "export_config.yml").read_text()
    capsys.readouterr()
    assert main(["validate-export", str(tgt), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["num_errors"] == 0
    (tgt / "transforms_val.json").unlink()
    assert main(["validate-export", str(tgt)]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_dynamic_offsets_resized_frames_and_copy_fallback(tmp_path, head, monkeypatch):
    run = make_run(tmp_path, head, rig="monocular", num_frames=2, dynamic_offset=True, seed=7)
    # frames stored at twice the tracking resolution: exported at the tracking size (K is for that size)
    for row in run.frame_paths:
        img = Image.open(row[0])
        img.resize((96, 128), Image.BILINEAR).save(row[0], quality=95)
    tgt = tmp_path / "dyn"
    s = export_nerf_dataset(
        ExportConfig(src=run.run_dir, tgt=tgt, background="none", mask_below_neck=False, image_format="jpg")
    )
    assert s.images_linked == 0 and s.masks_linked == 2  # resized frames cannot be links; mattes can
    assert Image.open(tgt / "images" / "00001_00.jpg").size == (48, 64)
    with np.load(tgt / "flame_param" / "00001.npz") as z:
        np.testing.assert_array_equal(z["dynamic_offset"], run.params["dynamic_offset"][1:2])
    assert validate_export(tgt, decode_images=True).ok

    # hard links impossible (another filesystem): files are copied instead
    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    tgt2 = tmp_path / "copied"
    s = export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tgt2, background="none", mask_below_neck=False))
    assert s.masks_linked == 0
    assert not os.path.samefile(tgt2 / "fg_masks" / "00000_00.png", run.alpha_paths[0][0])
    assert (tgt2 / "fg_masks" / "00000_00.png").read_bytes() == run.alpha_paths[0][0].read_bytes()
