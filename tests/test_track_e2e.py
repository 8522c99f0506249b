"""End-to-end tracking on tiny synthetic sequences (open head model, CPU, torch rasteriser): outputs, falling
losses, pose recovery, multi-view, landmark-only, resume after a kill, empty-render guard, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vhap.config import parse_config
from vhap.model import load_head_assets
from vhap.track.config import TrackConfig
from vhap.track.tracker import Tracker, TrackingInterrupted, track

TINY = [
    "--model.tex-resolution", "32",
    "--render.backend", "torch",
    "--pipeline.lmk-init-rigid.num-steps", "100",
    "--pipeline.lmk-init-all.num-steps", "100",
    "--pipeline.rgb-init-texture.num-steps", "3",
    "--pipeline.rgb-init-all.num-steps", "3",
    "--pipeline.rgb-init-offset.num-steps", "2",
    "--pipeline.lmk-prepass.num-steps", "4",
    "--pipeline.rgb-sequential-tracking.num-steps", "2",
    "--pipeline.rgb-global-tracking.num-epochs", "2",
    "--pipeline.lmk-sequential-tracking.num-steps", "5",
    "--pipeline.lmk-global-tracking.num-epochs", "2",
    "--pipeline.eval-epochs", "0", "1",
    "--exp.device", "cpu",
    "--exp.batch-size", "2",
    "--exp.checkpoint-every-samples", "1",
    "--exp.checkpoint-every-epochs", "1",
    "--log.interval-scalar", "5",
    "--log.no-progress",
]  # fmt: skip


def _synth(root: Path, rig: str, **kw):
    from vhap.synth.generate import SynthConfig, generate_sequence

    cfg = SynthConfig(
        output=root,
        rig=rig,
        head_model="open",
        albedo_resolution=32,
        supersample=1,
        background="white",
        landmark_noise_px=0.2,
        **kw,
    )
    return generate_sequence(cfg, progress=False)


@pytest.fixture(scope="module")
def mono_seq(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("mono"), "monocular", num_frames=3, image_size=(48, 48))


@pytest.fixture(scope="module")
def mv_seq(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("mv"), "multiview", num_frames=2, num_cameras=3, image_size=(48, 40))


def _args(seq, out: Path, *extra: str) -> list[str]:
    args = [
        "--data.root", str(seq.root),
        "--data.sequence", seq.sequence,
        "--data.landmark-detector", seq.landmark_detector,
        "--model.head-model", "open",
        "--exp.output-folder", str(out),
        *TINY,
        *extra,
    ]  # fmt: skip
    if seq.subject:
        args += ["--data.subject", seq.subject]
    return args


def _cfg(seq, out: Path, *extra: str) -> TrackConfig:
    return parse_config(TrackConfig, _args(seq, out, *extra), preset_group="track")


@pytest.fixture(scope="module")
def mono_run(mono_seq, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mono"
    cfg = _cfg(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")
    metrics = track(cfg)
    return out, metrics


def test_monocular_run_writes_every_output(mono_run):
    out, metrics = mono_run
    for name in (
        "config.yml",
        "tracked_flame_params.npz",
        "tracked_flame_params_0.npz",
        "tracked_flame_params_1.npz",
        "tracked_flame_params_2.npz",
        "cameras.npz",
        "frames.json",
        "metrics.json",
        "loss_curves.png",
        "overlay.mp4",
        "mesh/canonical.obj",
        "mesh/canonical.png",
        "DONE",
    ):
        assert (out / name).is_file(), name
    assert len(list((out / "overlays").glob("*.jpg"))) == 3
    p = np.load(out / "tracked_flame_params.npz")
    assert p["rotation"].shape == (3, 3) and p["expr"].shape == (3, 100) and p["shape"].shape == (300,)
    assert p["eyes_pose"].shape == (3, 6) and p["focal_length"].shape == (1,) and p["lights"].shape == (9, 3)
    v_teeth = load_head_assets("open").num_verts + 120
    assert p["static_offset"].shape == (1, v_teeth, 3) and p["tex_extra"].shape == (3, 32, 32)
    assert list(p["timestep_id"]) == ["000000", "000001", "000002"] and str(p["head_model"]) == "open"
    cams = np.load(out / "cameras.npz")
    assert cams["K"].shape == (1, 3, 3) and cams["w2c"].shape == (1, 4, 4) and not bool(cams["calibrated"])
    assert cams["K"][0, 0, 0] == pytest.approx(float(p["focal_length"][0]) * 48, rel=1e-5)
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["per_frame"]) == 3 and {"nme", "psnr_face", "psnr_matte", "iou"} <= set(m["per_frame"][0])
    assert m["totals"]["nme"] is not None and m["totals"]["psnr_face"] > 10
    # whole-head block (vhap.eval.whole_head): the synthetic head is rendered from the model itself
    wh = m["whole_head"]
    assert 0.5 < wh["head_coverage"] <= 1.0 and 0.0 <= wh["spill"] < 0.2 and wh["head_psnr_db"] > 10, wh
    assert wh["mouth_nme"] is not None and "head_coverage" in m["per_frame"][0]
    st = m["timing"]["stages"]
    assert st["rgb_init_all"]["steps"] == 3 and st["rgb_init_all"]["ms_per_step"] > 0
    assert m["timing"]["peak_memory_mib"] > 0
    # time outside the stages is accounted for: set-up, checkpoints, parameter files, outputs; little is left over
    over = m["timing"]["overhead_s"]
    assert {"setup", "load_sequence", "checkpoints", "params_npz", "outputs", "unaccounted_in_run"} <= set(over)
    assert all(v >= 0 for k, v in over.items() if k != "unaccounted_in_run")
    assert abs(over["unaccounted_in_run"]) < 0.25 * m["timing"]["wall_s_this_process"]
    assert m["timing"]["process_age_s"] >= m["timing"]["wall_s_this_process"]
    assert {"video", "meshes", "loss_curves", "overlay_jpgs"} <= set(m["timing"]["outputs_jobs_s"])
    assert (out / "mesh" / "frame_000000.mtl").read_text().strip().endswith("map_Kd canonical.png")
    assert all(np.isfinite(v).all() for k, v in p.items() if v.dtype.kind == "f")


def test_landmark_loss_falls_and_pose_is_recovered(mono_run, mono_seq):
    out, metrics = mono_run
    hist = metrics["evaluations"]
    m = json.loads((out / "metrics.json").read_text())
    # evaluation landmark energy after the schedule is far below the start (all-zero parameters)
    tracker = Tracker(_cfg(mono_seq, out.parent / "scratch", "--data.background-color", "white"))
    with torch.no_grad():
        start = tracker.problem.energy(torch.arange(3), None, train=False).terms["landmark"].item()
    assert hist["2"]["landmark"] < 0.5 * start
    assert m["totals"]["nme"] < 0.08
    # the head points where the ground truth points: compare projected face vertices in pixels
    gt = np.load(Path(mono_seq.ground_truth_dir) / "meshes.npz")["verts"]
    p = np.load(out / "tracked_flame_params.npz")
    with torch.no_grad():
        tracker.params.load_npz(out / "tracked_flame_params.npz")
        verts = tracker.problem.forward(torch.arange(3)).verts
        cams = tracker.problem.cameras(3)
        pred_px = cams.project(verts)
        gt_cams = tracker.problem.cameras(3)
        gt_cams.K = torch.as_tensor(np.load(Path(mono_seq.ground_truth_dir) / "cameras.npz")["K"]).expand(3, 3, 3)
        gt_px = gt_cams.project(torch.as_tensor(gt, dtype=torch.float32))
    face = tracker.model.regions.vertex_ids("face")
    err_px = (pred_px[:, face] - gt_px[:, face]).norm(dim=-1).mean().item()
    assert err_px < 1.5, f"face vertices off by {err_px:.2f} px at 48x48 (p focal {p['focal_length']})"


def test_losses_fall_within_stages(mono_run):
    out, _ = mono_run
    m = json.loads((out / "metrics.json").read_text())
    assert m["evaluations"]["0"]["photo"] is not None
    # the loss history is in the checkpoint and the curve file; compare first and last landmark entries
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=False)
    hist = [h for h in state["loss_history"] if h["stage"] == "lmk_init_rigid"]
    assert hist[-1]["landmark"] < hist[0]["landmark"]


@pytest.mark.slow
def test_multiview_landmark_only_recovers_geometry(mv_seq, tmp_path):
    cfg = _cfg(
        mv_seq, tmp_path / "mv", "--preset", "landmark_only", "--exp.batch-size", "1", "--data.downsample", "4",
        "--pipeline.lmk-init-rigid.num-steps", "120", "--pipeline.lmk-init-all.num-steps", "150",
    )  # fmt: skip
    metrics = track(cfg)
    assert metrics["num_cameras"] == 3 and metrics["totals"]["nme"] < 0.15
    p = np.load(tmp_path / "mv" / "tracked_flame_params.npz")
    assert "focal_length" not in p.files and "tex_extra" not in p.files
    cams = np.load(tmp_path / "mv" / "cameras.npz")
    assert cams["K"].shape == (3, 3, 3) and bool(cams["calibrated"])
    # compare with the ground truth in the tracker's (axis-aligned) world
    from vhap.data import load_sequence

    seq = load_sequence(cfg.data)
    tracker = Tracker(cfg, seq=seq)
    tracker.params.load_npz(tmp_path / "mv" / "tracked_flame_params.npz")
    with torch.no_grad():
        verts = tracker.problem.forward(torch.arange(2)).verts.numpy()
    gt = np.load(Path(mv_seq.ground_truth_dir) / "meshes.npz")["verts"]
    R = np.eye(3) if seq.world_rotation is None else seq.world_rotation
    gt_aligned = gt @ R.T
    face = tracker.model.regions.vertex_ids("face")
    err_mm = 1000 * np.linalg.norm(verts[:, face] - gt_aligned[:, face], axis=-1).mean()
    assert err_mm < 15.0, err_mm


def test_multiview_photometric_step_renders_views_times_frames(mv_seq, tmp_path):
    cfg = _cfg(mv_seq, tmp_path / "mvp", "--preset", "nersemble")
    tr = Tracker(cfg)
    res = tr.problem.energy(torch.arange(2), tr.plan["rgb_init_all"], train=True)
    assert res.render.rgb.shape == (2 * 3, 48, 40, 3)
    assert torch.isfinite(res.total) and {"landmark", "photo", "reg_tex_tv"} <= set(res.terms)
    res.total.backward()
    assert torch.isfinite(tr.params.translation.grad).all() and tr.params.tex_extra.grad.abs().sum() > 0


def test_nersemble_preset_evaluates_only_at_the_end(mv_seq, tmp_path):
    args = _args(mv_seq, tmp_path / "mvn", "--preset", "nersemble", "--exp.batch-size", "1")
    cut = args.index("--pipeline.eval-epochs")
    args = args[:cut] + args[cut + 3 :]  # the preset's own evaluation setting, not TINY's "0 1"
    cfg = parse_config(TrackConfig, args, preset_group="track")
    assert cfg.pipeline.eval_epochs == ()
    track(cfg)
    out = tmp_path / "mvn"
    assert sorted(p.name for p in out.glob("tracked_flame_params*.npz")) == [
        "tracked_flame_params.npz",
        "tracked_flame_params_2.npz",  # the last epoch's copy (VHAP's completeness check reads it)
    ]
    assert set(json.loads((out / "metrics.json").read_text())["evaluations"]) == {"2"}


def test_global_shared_lr_scale_slows_only_the_shared_tensors(mono_seq, tmp_path):
    """Adam's first step moves every element with a gradient by its learning rate (m̂ / √v̂ = ±1), so one global
    step shows each tensor's rate: per-frame tensors at lr × global_lr_scale, shared ones × global_shared_lr_scale
    on top."""
    tr = Tracker(_cfg(mono_seq, tmp_path / "lr", "--data.background-color", "white"))
    stage = tr.plan["rgb_global_tracking"]
    lr = tr.cfg.lr
    expect = {"rotation": lr.base * 0.1, "expr": lr.expr * 0.1, "shape": lr.base * 0.1 * 0.01}
    expect["lights"] = lr.light * 0.1 * 0.01
    opt = tr.steps.optimizer(stage, 0.1, 0.01)
    rates = {g["name"]: float(g["lr"]) for g in opt.param_groups}
    for name, rate in expect.items():
        assert rates[name] == pytest.approx(rate, rel=1e-6), name
    before = {name: getattr(tr.params, name).detach().clone() for name in expect}
    tr.steps.step_terms(stage, opt, torch.tensor([1]))
    for name, rate in expect.items():
        moved = (getattr(tr.params, name).detach() - before[name]).abs()
        # the elements with a gradient; float32 rounding of the values (lights ~3.5) blurs tiny steps by ~0.2 %
        assert moved.max().item() == pytest.approx(rate, rel=2e-2), name
    assert (tr.params.rotation.detach()[[0, 2]] == before["rotation"][[0, 2]]).all()  # frames not in the batch


def test_off_screen_head_falls_back_to_landmarks(mono_seq, tmp_path):
    """VHAP #58: an empty render must never produce inf/NaN; the photometric term drops that sample."""
    tr = Tracker(_cfg(mono_seq, tmp_path / "empty", "--data.background-color", "white"))
    with torch.no_grad():
        tr.params.translation[:] = torch.tensor([5.0, 0.0, 0.0])  # far outside the view
    st = tr.plan["rgb_init_all"]
    opt = tr.params.optimizer(st.params, tr.cfg.lr)
    res = tr.problem.energy(torch.arange(2), st, train=True)
    assert not res.photo_valid.any() and res.terms["photo"].item() == 0.0
    assert torch.isfinite(res.total)
    res.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in tr.params.parameters() if p.grad is not None)
    opt.step()
    assert all(torch.isfinite(p).all() for p in tr.params.parameters())


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters(mono_seq, mono_run, tmp_path):
    ref_out, _ = mono_run
    out = tmp_path / "resume"
    cfg = _cfg(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")
    # steps: init 1-208, landmark pre-pass 209-212 (second sample only), sequential 213-216, global 217-220
    for k in (25, 211, 215, 218):  # inside an init stage, the pre-pass, the sequential pass, the global epochs
        with pytest.raises(TrackingInterrupted):
            track(cfg, stop_after_steps=k)
        assert not (out / "DONE").exists()
    metrics = track(cfg)
    assert metrics["timing"]["resumed"]
    a, b = np.load(ref_out / "tracked_flame_params.npz"), np.load(out / "tracked_flame_params.npz")
    for key in a.files:
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_cli_skips_finished_run_and_report(mono_run, mono_seq, tmp_path, capsys):
    from vhap.track.cli import main
    from vhap.track.report import main as report_main

    out, _ = mono_run
    same = _args(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")
    # options that do not change the result may differ (device, progress, checkpoint place)
    assert main([*same, "--log.progress", "--exp.checkpoint-dir", str(tmp_path / "ck")]) == 0
    assert "already finished" in capsys.readouterr().out
    assert report_main(["--runs", str(out), str(out), "--output", str(tmp_path / "rep")]) == 0
    table = (tmp_path / "rep" / "summary.md").read_text()
    assert (
        "NME" in table
        and (tmp_path / "rep" / "summary.json").is_file()
        and (tmp_path / "rep" / "summary.png").is_file()
    )


def test_finished_run_with_other_options_is_refused(mono_run, mono_seq, capsys):
    """#17 item 6: the same output folder with another frame subset or learning rate is not "already finished": one
    clear error naming the differing keys and the flag that overwrites, exit 2; the run is left as it was."""
    from vhap.cli import main

    out, _ = mono_run
    before = (out / "tracked_flame_params.npz").read_bytes()
    args = _args(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")
    assert main(["track", *args, "--lr.base", "1e-2", "--data.timesteps", "000000", "000001"]) == 2
    err = capsys.readouterr().err
    assert f"vhap track: error: {out}: finished with other options (differing: data.timesteps, lr.base)" in err
    assert "--exp.overwrite" in err and "already finished" not in err
    assert (out / "tracked_flame_params.npz").read_bytes() == before and (out / "DONE").is_file()


def test_finished_run_is_found_by_folder_or_by_name(mono_run, mono_seq, tmp_path, capsys):
    """The run was made with ``--data.root R --data.sequence NAME``: ``--data.sequence-dir`` with its folder, or a
    name prefix, names the same data (already finished, exit 0); the same sequence under another root does not."""
    import shutil

    from vhap.cli import main

    out, _ = mono_run
    before = (out / "tracked_flame_params.npz").read_bytes()
    rest = _args(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")[4:]
    assert rest[0] == "--data.landmark-detector"  # _args starts with --data.root R --data.sequence NAME
    by_dir = ["--data.sequence-dir", str(mono_seq.sequence_dir), *rest]
    by_prefix = ["--data.root", str(mono_seq.root), "--data.sequence", mono_seq.sequence[:-1], *rest]
    for args in (by_dir, by_prefix):
        assert main(["track", *args]) == 0
        assert "already finished" in capsys.readouterr().out
    copy = tmp_path / "elsewhere" / mono_seq.sequence
    shutil.copytree(mono_seq.sequence_dir, copy)
    assert main(["track", "--data.sequence-dir", str(copy), *rest]) == 2
    err = capsys.readouterr().err
    assert "finished with other options (differing: data.root, data.sequence_dir)" in err
    assert (out / "tracked_flame_params.npz").read_bytes() == before


def test_mediapipe_landmarks_drive_the_landmark_term(mono_seq, tmp_path):
    cfg = _cfg(mono_seq, tmp_path / "mp", "--preset", "landmark_only", "--model.landmarks", "mediapipe")
    tr = Tracker(cfg)
    assert tr.problem.landmarks.shape[2] == tr.model.mp_landmark_ids.numel() > 68
    before = tr.evaluate().per_frame["nme"].mean()
    tr.run_fixed_stage("lmk_init_rigid", 0)
    after = tr.evaluate().per_frame["nme"].mean()  # measured on the iBUG-68 points
    assert np.isfinite(after) and after < before


def test_interrupted_overwrite_leaves_the_old_run(mono_run, mono_seq, tmp_path):
    """#17 item 4: ``--exp.overwrite`` builds the new run beside the old one and swaps it in only when complete; a
    run killed mid-overwrite leaves the old run whole (DONE, parameters, config, checkpoint)."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(mono_run[0], out)
    files = ("DONE", "config.yml", "tracked_flame_params.npz", "metrics.json", "checkpoints/latest.pt")
    before = {name: (out / name).read_bytes() for name in files}
    cfg = _cfg(mono_seq, out, "--preset", "landmark_only", "--exp.overwrite", "--exp.no-write-media")
    with pytest.raises(TrackingInterrupted):
        track(cfg, stop_after_steps=150)
    assert {name: (out / name).read_bytes() for name in files} == before
    metrics = track(cfg)  # the overwrite, uninterrupted
    assert not metrics["timing"]["resumed"] and (out / "DONE").is_file()
    assert "tex_extra" not in np.load(out / "tracked_flame_params.npz").files  # the landmark-only run's
    assert not (out / "overlay.mp4").exists()  # nothing of the old run is left in the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left behind


def test_killed_run_resumes_from_the_checkpoint_dir_after_its_folder_is_deleted(mono_run, mono_seq, tmp_path):
    """#17 item 5: with ``--exp.checkpoint-dir`` outside the run folder, a run killed mid-way whose outputs are then
    deleted (as Snakemake does for a failed job) resumes from the checkpoint and ends with the uninterrupted run's
    result; the checkpoint folder is removed after success."""
    import shutil

    out, ck = tmp_path / "results" / "run", tmp_path / "checkpoints" / "seq"
    cfg = _cfg(mono_seq, out, "--preset", "monocular", "--data.background-color", "white")
    cfg.exp.checkpoint_dir = ck
    with pytest.raises(TrackingInterrupted):
        track(cfg, stop_after_steps=215)  # in the sequential pass (see the test above)
    assert (ck / "latest.pt").is_file() and not (out / "checkpoints").exists()
    shutil.rmtree(out)
    metrics = track(cfg)
    assert metrics["timing"]["resumed"] and (out / "DONE").is_file() and (out / "config.yml").is_file()
    assert not ck.exists()
    a, b = np.load(mono_run[0] / "tracked_flame_params.npz"), np.load(out / "tracked_flame_params.npz")
    for key in a.files:
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    ref = json.loads((mono_run[0] / "metrics.json").read_text())["totals"]
    assert metrics["totals"]["nme"] == pytest.approx(ref["nme"], rel=1e-4)
