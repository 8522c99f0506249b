"""The landmark pre-pass (``pipeline.lmk_prepass``, issue 6): a head turn between two samples that the
sequential pass alone cannot follow, resume across the new phase, and old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.config import parse_config
from vhap.errors import VhapError
from vhap.track import checkpoint as ckpt
from vhap.track.config import TrackConfig, stage_plan
from vhap.track.tracker import Tracker, TrackingInterrupted

#: yaw (rad) of the 6 frames, samples [0, 1, 2] and [3, 4, 5] (batch size 3): a steady turn of 0.05 rad per
#: frame, so the second sample's frames lie 0.05-0.15 rad from the first sample's last frame, more than 10
#: sequential steps at lr 5e-3 can reach (~0.05 rad) but well within the pre-pass's 40 × 4 × 5e-3 rad
GT_YAW = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)

FAST = [
    "--preset", "landmark_only",
    "--model.head-model", "open",
    "--pipeline.lmk-init-rigid.num-steps", "60",
    "--pipeline.lmk-init-all.num-steps", "60",
    "--pipeline.lmk-sequential-tracking.num-steps", "10",
    "--pipeline.lmk-global-tracking.num-epochs", "0",
    "--pipeline.eval-epochs", "0",
    "--exp.device", "cpu",
    "--exp.batch-size", "3",
    "--exp.checkpoint-every-samples", "1",
    "--exp.no-write-media",
    "--log.interval-scalar", "5",
    "--log.no-progress",
]  # fmt: skip

PREPASS = [
    "--pipeline.lmk-prepass.num-steps", "40",
    "--pipeline.lmk-prepass-lr-scale", "4",
    "--pipeline.sequential-warm-start",
]  # fmt: skip


@pytest.fixture(scope="module")
def turn_seq(tmp_path_factory):
    """A 6-frame monocular sequence; its landmarks are replaced by :func:`_turning_landmarks`."""
    from vhap.synth.generate import SynthConfig, generate_sequence

    cfg = SynthConfig(
        output=tmp_path_factory.mktemp("turn"),
        rig="monocular",
        head_model="open",
        num_frames=6,
        image_size=(48, 48),
        albedo_resolution=32,
        supersample=1,
        background="white",
        landmark_noise_px=0.0,
    )
    return generate_sequence(cfg, progress=False)


def _cfg(seq, out, *extra) -> TrackConfig:
    args = [
        "--data.root", str(seq.root),
        "--data.sequence", seq.sequence,
        "--data.landmark-detector", seq.landmark_detector,
        "--exp.output-folder", str(out),
        *FAST,
        *extra,
    ]  # fmt: skip
    return parse_config(TrackConfig, args, preset_group="track")


def _turning_tracker(seq, cfg) -> Tracker:
    """A tracker whose target landmarks are the head model's own, turning by ``GT_YAW`` (exact, noise-free):
    the known answer of every frame's head rotation."""
    tr = Tracker(cfg, seq=_load(cfg))
    with torch.no_grad():
        T = tr.problem.T
        gt = {k: None if v is None else torch.zeros_like(v) for k, v in tr.params.frame_params(torch.arange(T)).items()}
        gt["rotation"][:, 1] = torch.tensor(GT_YAW)
        out = tr.model(**gt)
        px = tr.problem.cameras(T).project(out.landmarks[:, :68])  # (T,68,2), focal = the initial 1.5
        norm = px / torch.tensor([tr.problem.W, tr.problem.H], dtype=torch.float32)
        tr.problem.landmarks = torch.cat([norm, torch.ones_like(norm[..., :1])], -1)[:, None]  # (T,1,68,3)
        tr.problem.lmk_conf = torch.ones(T, 1, 68)
    return tr


def _load(cfg):
    from vhap.data import load_sequence

    return load_sequence(cfg.data)


def _yaw_error(tr: Tracker) -> np.ndarray:
    """(T,) |tracked − true| head yaw (global rotation + neck; both turn about the same axis here)."""
    yaw = (tr.params.rotation[:, 1] + tr.params.neck_pose[:, 1]).detach().numpy()
    return np.abs(yaw - np.asarray(GT_YAW))


def test_prepass_recovers_a_turn_the_sequential_pass_cannot_reach(turn_seq, tmp_path):
    old = _turning_tracker(turn_seq, _cfg(turn_seq, tmp_path / "old"))
    assert "lmk_prepass" not in old.plan
    old.run()
    new = _turning_tracker(turn_seq, _cfg(turn_seq, tmp_path / "new", *PREPASS))
    assert list(new.plan)[2:] == ["lmk_prepass", "lmk_sequential_tracking", "lmk_global_tracking"]
    new.run()
    err_old, err_new = _yaw_error(old), _yaw_error(new)
    # the first sample is fitted by the init stages in both schedules
    assert err_old[:3].max() < 0.05 and err_new[:3].max() < 0.05, (err_old, err_new)
    # the old schedule starts the second sample 0.05-0.15 rad away and stops short of the later frames
    # (measured on two CPUs: 0.032-0.037 0.075-0.079 0.100-0.107 rad); the pre-pass fits them (0.018-0.021
    # 0.029-0.032 0.038: the rest is the pull of the temporal terms towards the previous frame). The first of
    # those frames is nearly reached by both, so the ratio is asserted where the old schedule falls short.
    assert err_old[4:].min() > 0.06, err_old
    assert err_new[3:].max() < 0.05, err_new
    assert err_new[3] < err_old[3], (err_old, err_new)
    assert (err_new[4:] < 0.6 * err_old[4:]).all(), (err_old, err_new)
    with torch.no_grad():
        nme_old, nme_new = old.evaluate().per_frame["nme"][:, 0], new.evaluate().per_frame["nme"][:, 0]
    assert nme_new[5] < 0.5 * nme_old[5], (nme_old, nme_new)
    state = torch.load(tmp_path / "new" / "checkpoints" / "latest.pt", weights_only=False)
    assert state["stage_steps"]["lmk_prepass"] == 40  # one sample after the first, 40 steps


def test_prepass_run_resumes_to_the_same_parameters(turn_seq, tmp_path):
    ref = _turning_tracker(turn_seq, _cfg(turn_seq, tmp_path / "ref", *PREPASS))
    ref.run()
    init_steps = 120
    for k in (init_steps + 15, init_steps + 40 + 5):  # inside the pre-pass, inside the sequential pass after it
        cut = _turning_tracker(turn_seq, _cfg(turn_seq, tmp_path / "cut", *PREPASS))
        with pytest.raises(TrackingInterrupted):
            cut.run(stop_after_steps=k)
        phase = torch.load(tmp_path / "cut" / "checkpoints" / "latest.pt", weights_only=False)["position"]["phase"]
        assert phase == ("lmk_prepass" if k < init_steps + 40 else "sequential"), (k, phase)
    done = _turning_tracker(turn_seq, _cfg(turn_seq, tmp_path / "cut", *PREPASS))
    assert done.run()["timing"]["resumed"]
    for name in ("rotation", "translation", "neck_pose", "jaw_pose", "expr", "shape", "focal_length"):
        a, b = getattr(ref.params, name).detach(), getattr(done.params, name).detach()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_fingerprint_follows_the_result_options_only():
    """The checkpoint fingerprint changes with an option that changes the result and ignores where files go or
    how often they are written (a resume may change those)."""
    base = ckpt.config_fingerprint(TrackConfig())
    on = parse_config(TrackConfig, ["--pipeline.lmk-prepass.num-steps", "5"], preset_group="track")
    assert ckpt.config_fingerprint(on) != base
    moved = parse_config(
        TrackConfig,
        ["--exp.output-folder", "elsewhere", "--exp.checkpoint-dir", "/tmp/ck", "--exp.checkpoint-every-epochs", "2"],
        preset_group="track",
    )
    assert ckpt.config_fingerprint(moved) == base
    assert ckpt.config_differences(TrackConfig(), on) == ["pipeline.lmk_prepass.num_steps"]


def test_unknown_phase_is_refused():
    with pytest.raises(VhapError, match="unknown phase"):
        ckpt.restore_run_state({"position": {"phase": "warmup", "index": 0, "global_step": 3}})


def test_begin_stage_past_the_sequential_pass_skips_the_prepass():
    cfg = parse_config(
        TrackConfig,
        ["--pipeline.lmk-prepass.num-steps", "5", "--pipeline.begin-stage", "rgb_global_tracking"],
        preset_group="track",
    )
    assert stage_plan(cfg)["lmk_prepass"].num_steps == 0
    args = ["--pipeline.lmk-prepass.num-steps", "5", "--pipeline.begin-stage", "rgb_init_all"]
    cfg = parse_config(TrackConfig, args, preset_group="track")
    assert stage_plan(cfg)["lmk_prepass"].num_steps == 5
