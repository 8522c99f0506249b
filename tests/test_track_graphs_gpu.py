"""Tracking with CUDA-graph-replayed steps (``exp.cuda_graphs``, the ``cuda`` render backend) against the same
schedule run eagerly: same losses and parameters up to GPU non-determinism, every stage recorded (no capture
fell back to eager steps), and the steps kept across the samples of the pre-pass and the sequential pass
(``run_fixed_stage(keep_graph=True)``) behave like freshly recorded ones. Skipped without CUDA."""

from __future__ import annotations

import warnings

import pytest
import torch

from vhap.config import parse_config
from vhap.track.config import TrackConfig
from vhap.track.tracker import Tracker

pytestmark = pytest.mark.gpu

SCHEDULE = [
    "--model.tex-resolution", "128",
    "--render.backend", "cuda",
    "--pipeline.lmk-init-rigid.num-steps", "60",
    "--pipeline.lmk-init-all.num-steps", "60",
    "--pipeline.rgb-init-texture.num-steps", "12",
    "--pipeline.rgb-init-all.num-steps", "12",
    "--pipeline.rgb-init-offset.num-steps", "12",
    "--pipeline.lmk-prepass.num-steps", "12",
    "--pipeline.rgb-sequential-tracking.num-steps", "12",
    "--pipeline.rgb-global-tracking.num-epochs", "3",
    "--pipeline.eval-epochs", "0",
    "--exp.device", "cuda",
    "--exp.batch-size", "4",
    "--exp.no-write-media",
    "--log.interval-scalar", "4",
    "--log.no-progress",
]  # fmt: skip


def _run(seq, out, graphs: bool):
    args = [
        "--preset", "monocular",
        "--data.root", str(seq.root),
        "--data.sequence", seq.sequence,
        "--data.landmark-detector", seq.landmark_detector,
        "--model.head-model", "open",
        "--exp.output-folder", str(out),
        *SCHEDULE,
        "--exp.cuda-graphs" if graphs else "--exp.no-cuda-graphs",
    ]  # fmt: skip
    tracker = Tracker(parse_config(TrackConfig, args, preset_group="track"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker.run()
    failures = [str(w.message) for w in caught if "CUDA graph" in str(w.message)]
    return tracker, failures


def test_graph_replayed_schedule_matches_eager(tmp_path):
    from vhap.render import nvdiffrast_available

    if not torch.cuda.is_available() or not nvdiffrast_available():
        pytest.skip("needs CUDA and nvdiffrast (pip install diffrp-nvdiffrast ninja)")
    from vhap.synth.generate import SynthConfig, generate_sequence

    # 12 frames in samples of 4: the pre-pass and the sequential pass reuse their recorded step twice
    seq = generate_sequence(
        SynthConfig(output=tmp_path / "data", rig="monocular", head_model="open", num_frames=12, image_size=(128, 128)),
        progress=False,
    )
    eager, _ = _run(seq, tmp_path / "eager", graphs=False)
    graphed, failures = _run(seq, tmp_path / "graphed", graphs=True)
    assert not failures, failures
    assert "stage_graph_init" in graphed.overhead and "stage_graph_init" not in eager.overhead

    e_hist = [h for h in eager.run_state.loss_history if h["stage"] == "rgb_global_tracking"]
    g_hist = [h for h in graphed.run_state.loss_history if h["stage"] == "rgb_global_tracking"]
    assert len(e_hist) == len(g_hist) > 0
    # same optimisation: the last global losses agree to GPU non-determinism (atomics in the backward passes)
    assert abs(g_hist[-1]["total"] - e_hist[-1]["total"]) <= 0.02 * abs(e_hist[-1]["total"])
    for name in ("rotation", "translation", "expr", "jaw_pose"):
        a, b = getattr(eager.params, name).detach(), getattr(graphed.params, name).detach()
        assert (a - b).abs().max().item() <= 2e-3, name
    assert torch.isfinite(graphed.params.tex_extra).all()
