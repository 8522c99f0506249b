"""Export with the project's open head model (no FLAME files needed, so this runs on every machine): the neck
cut resolves its regions by name, vertex counts follow the model (V0 + 120 teeth), landmarks re-project
through the exported cameras, and a union of two sequences validates."""

from __future__ import annotations

import json

import numpy as np
import torch
from test_export_fixtures import make_run

from vhap.export.combine import combine_datasets
from vhap.export.config import CombineConfig, ExportConfig
from vhap.export.flame import build_head_model, pose_head, stack_params, timestep_params
from vhap.export.nerf import export_nerf_dataset
from vhap.export.validate import validate_export
from vhap.model import load_head_assets
from vhap.render import Cameras, c2w_opengl_to_opencv, invert_rigid


def test_open_model_export_and_union(tmp_path):
    v0 = load_head_assets("open").num_verts
    exports = []
    for name, seed in (("777_A", 1), ("777_B", 2)):
        run = make_run(tmp_path / f"run_{name}", "open", rig="multiview", num_frames=4, num_cameras=3, seed=seed)
        tgt = tmp_path / "export" / name
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tgt))
        # GaussianAvatars would crop the offsets to FLAME's 5143 rows: an error unless the export is for another reader
        rep = validate_export(tgt)
        assert not rep.ok and rep.has("gaussian_avatars", f"the export has {v0 + 120} vertices")
        rep = validate_export(tgt, for_gaussian_avatars=False)
        assert rep.ok, [(i.check, i.message) for i in rep.errors]
        assert rep.stats["expected_num_verts"] == v0 + 120
        assert rep.has("head_model", "is not FLAME")
        exports.append((run, tgt))

    run, tgt = exports[0]
    model = build_head_model("open", 300, 100, add_teeth=True)
    world = pose_head(model, stack_params([timestep_params(run.params, t) for t in range(4)])).landmarks.double()
    worst = 0.0
    for f in json.loads((tgt / "transforms.json").read_text())["frames"]:
        t, c = f["timestep_index"], f["camera_index"]
        with np.load(tgt / f["flame_param_path"]) as z:
            assert z["static_offset"].shape == (1, v0 + 120, 3)
            lmk = pose_head(model, stack_params([{k: z[k] for k in z.files}])).landmarks.double()
        w2c = invert_rigid(c2w_opengl_to_opencv(torch.tensor(f["transform_matrix"], dtype=torch.float64)))
        K = torch.tensor([[f["fl_x"], 0, f["cx"]], [0, f["fl_y"], f["cy"]], [0, 0, 1]], dtype=torch.float64)
        got = Cameras(K=K, w2c=w2c, image_size=(f["h"], f["w"])).project(lmk)[0]
        ref_cam = Cameras(K=torch.from_numpy(run.K[c]), w2c=torch.from_numpy(run.w2c[c]), image_size=run.image_size)
        ref = ref_cam.project(world[t : t + 1])[0]
        worst = max(worst, float((got - ref).norm(dim=-1).max()))
    assert worst < 0.5, worst

    union = tmp_path / "export" / "UNION_777"
    s = combine_datasets(CombineConfig(src=tuple(t for _, t in exports), tgt=union))
    assert len(s.test_sequences) == 1 and s.num_timesteps == 8
    rep = validate_export(union, for_gaussian_avatars=False)
    assert rep.ok, [(i.check, i.message) for i in rep.errors]
    assert json.loads((union / "transforms.json").read_text())["frames"][0]["file_path"].startswith("../777_")
