"""Export of a run written by the real tracker (``vhap track``, landmark-only, a few steps on a tiny synthetic
monocular sequence): the run folder is read as the tracker writes it, the export validates, and the tracked
landmarks projected through the exported cameras match the tracker-world projection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_export_fixtures import standin_head

from vhap.export.config import ExportConfig
from vhap.export.flame import build_head_model, pose_head, stack_params, timestep_params
from vhap.export.ga_reader import read_ga_dataset
from vhap.export.nerf import export_nerf_dataset
from vhap.export.validate import validate_export
from vhap.render import Cameras, c2w_opengl_to_opencv, invert_rigid


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, flame_topology_dir):
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.track.cli import main as track_main

    root = tmp_path_factory.mktemp("tracked")
    head = standin_head(root / "cache")
    seq = generate_sequence(
        SynthConfig(
            output=root / "data",
            rig="monocular",
            num_frames=4,
            image_size=(64, 48),
            head_model=head,
            albedo_resolution=64,
            supersample=1,
        ),
        progress=False,
    )
    run = root / "run"
    steps = ["--pipeline.lmk-init-rigid.num-steps", "10", "--pipeline.lmk-init-all.num-steps", "10"]
    steps += ["--pipeline.lmk-sequential-tracking.num-steps", "5", "--pipeline.lmk-global-tracking.num-epochs", "1"]
    rc = track_main(
        ["--preset", "landmark_only", "--data.root", str(root / "data"), "--data.sequence", seq.sequence]
        + ["--data.landmark-detector", seq.landmark_detector, "--model.head-model", head]
        + ["--exp.output-folder", str(run), "--exp.device", "cpu", "--exp.no-write-media", "--log.no-progress"]
        + steps
    )
    assert rc == 0 and (run / "DONE").is_file()
    return run, head


def test_export_of_a_tracked_run(tracked_run, tmp_path):
    run, head = tracked_run
    tgt = tmp_path / "export"
    s = export_nerf_dataset(ExportConfig(src=run.parent, tgt=tgt))  # the parent: newest run folder is used
    assert s.num_timesteps == 4 and s.num_cameras == 1 and s.split_sizes == {"train": 3, "val": 0, "test": 1}
    rep = validate_export(tgt)
    assert rep.ok, [(i.check, i.message) for i in rep.errors]

    params = dict(np.load(run / "tracked_flame_params.npz"))
    cams = np.load(run / "cameras.npz")
    model = build_head_model(head, 300, 100, add_teeth=True)
    lmk_world = pose_head(model, stack_params([timestep_params(params, t) for t in range(4)])).landmarks.double()
    world_cam = Cameras(
        K=torch.from_numpy(cams["K"]).double(), w2c=torch.from_numpy(cams["w2c"]).double(), image_size=(64, 48)
    )
    doc = json.loads((tgt / "transforms.json").read_text())
    # monocular: the optimised focal length is in the top-level intrinsics (not a placeholder)
    assert doc["fl_x"] == pytest.approx(float(params["focal_length"][0]) * 64, rel=1e-5)
    ga = read_ga_dataset(tgt, num_verts=5143)
    ga_cams = {c.timestep_index: c for s in ("train", "test") for c in ga.cameras[s]}
    worst = 0.0
    for f in doc["frames"]:
        t = f["timestep_index"]
        with np.load(tgt / f["flame_param_path"]) as z:
            lmk = pose_head(model, stack_params([{k: z[k] for k in z.files}])).landmarks.double()
        w2c = invert_rigid(c2w_opengl_to_opencv(torch.tensor(f["transform_matrix"], dtype=torch.float64)))
        K = torch.tensor([[f["fl_x"], 0, f["cx"]], [0, f["fl_y"], f["cy"]], [0, 0, 1]], dtype=torch.float64)
        got = Cameras(K=K, w2c=w2c, image_size=(f["h"], f["w"])).project(lmk)[0]
        ref = world_cam.project(lmk_world[t : t + 1])[0]
        worst = max(worst, float((got - ref).norm(dim=-1).max()))
        # GaussianAvatars' reading (fov-x only, centred principal point) agrees for this centred camera
        g = ga_cams[t]
        got_ga = Cameras(
            K=torch.from_numpy(g.K()), w2c=torch.from_numpy(g.w2c()), image_size=(g.height, g.width)
        ).project(lmk)[0]
        worst = max(worst, float((got_ga - ref).norm(dim=-1).max()))
    assert worst < 0.5, worst


def test_export_of_an_epoch_snapshot(tracked_run, tmp_path):
    from vhap.errors import VhapError

    run, _ = tracked_run
    tgt = tmp_path / "epoch0"
    export_nerf_dataset(ExportConfig(src=run, tgt=tgt, epoch=0, mask_below_neck=False))
    doc = json.loads((tgt / "transforms.json").read_text())
    assert doc["source_params"] == "tracked_flame_params_0.npz"
    snap = np.load(run / "tracked_flame_params_0.npz")
    with np.load(tgt / "flame_param" / "00002.npz") as z:
        np.testing.assert_allclose(z["expr"], snap["expr"][2:3], atol=1e-7)
    with pytest.raises(VhapError, match="no parameters for epoch 7"):
        export_nerf_dataset(ExportConfig(src=run, tgt=tmp_path / "epoch7", epoch=7))
