"""Scoring a run against synthetic ground truth: the oracle run (ground truth as a run) scores perfectly."""

from __future__ import annotations

import numpy as np
import pytest

from vhap.synth.evaluate import evaluate_synthetic_run, write_oracle_run
from vhap.synth.generate import SynthConfig, generate_sequence
from vhap.synth.heads import resolve_head_model


@pytest.fixture(scope="module")
def head_model(tmp_path_factory, flame_topology_dir) -> str:
    return resolve_head_model("standin", tmp_path_factory.mktemp("heads"))


@pytest.mark.parametrize("rig", ["monocular", "multiview"])
def test_oracle_run_scores_perfectly(tmp_path, head_model, rig):
    cfg = SynthConfig(
        output=tmp_path,
        rig=rig,
        num_frames=2,
        num_cameras=3,
        image_size=(64, 48),
        head_model=head_model,
        albedo_resolution=128,
        landmark_noise_px=2.0,
        supersample=1,
    )
    seq = generate_sequence(cfg, progress=False)
    run = write_oracle_run(seq.sequence_dir, tmp_path / "run")
    res = evaluate_synthetic_run(run, seq.sequence_dir)
    assert res["vertex_error"]["face"]["max"] < 1e-3  # mm (float32 round-off only)
    assert res["vertex_error"]["head"]["mean"] < 1e-3
    assert res["landmark_nme"]["mean"] < 1e-3
    assert res["landmark_nme_input_noise"]["mean"] > 1.0  # the 2 px input noise is visible in the metric
    assert res["silhouette_iou"]["mean"] > 0.97
    assert res["masked_psnr"]["mean"] > 28.0  # JPEG + bilinear texture, same geometry
    if rig == "multiview":
        assert res["calibrated"] and res["vertex_error"]["align"] == "none"
    else:
        assert res["vertex_error"]["scales"] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_perturbed_run_scores_worse(tmp_path, head_model):
    cfg = SynthConfig(output=tmp_path, num_frames=2, image_size=(64, 48), head_model=head_model, albedo_resolution=64)
    seq = generate_sequence(cfg, progress=False)
    run = write_oracle_run(seq.sequence_dir, tmp_path / "run")
    params = dict(np.load(run / "tracked_flame_params.npz"))
    params["jaw_pose"] = params["jaw_pose"] + np.array([0.2, 0.0, 0.0], np.float32)  # open the mouth more
    np.savez(run / "tracked_flame_params.npz", **params)
    res = evaluate_synthetic_run(run, seq.sequence_dir, render=False)
    assert res["vertex_error"]["face"]["p95"] > 1.0  # mm
    assert res["landmark_nme"]["mean"] > 0.5
    # the breakdown puts a jaw-only change in the expression part, none in the identity part
    b = res["breakdown"]
    assert b["identity"]["face"] < 1e-3
    assert b["expression"]["face"] > 0.3
    assert len(b["per_frame_face"]) == 2


def test_breakdown_separates_identity_from_expression(tmp_path, head_model):
    cfg = SynthConfig(output=tmp_path, num_frames=2, image_size=(64, 48), head_model=head_model, albedo_resolution=64)
    seq = generate_sequence(cfg, progress=False)
    run = write_oracle_run(seq.sequence_dir, tmp_path / "run")
    params = dict(np.load(run / "tracked_flame_params.npz"))
    params["shape"] = params["shape"] * 0.5  # identity only
    np.savez(run / "tracked_flame_params.npz", **params)
    b = evaluate_synthetic_run(run, seq.sequence_dir, render=False)["breakdown"]
    assert b["identity"]["face"] > 0.3  # mm, after the similarity fit of an uncalibrated rig
    assert b["expression"]["face"] < 1e-3  # the expression part uses the ground-truth shape for both
    assert b["head_pose"]["rotation_deg"]["max"] < 5.0
