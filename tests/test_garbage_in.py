"""#17 item 9: a tracking run with nothing to fit, or one that diverges, fails loudly instead of 'finishing'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vhap.config import parse_config
from vhap.errors import VhapError
from vhap.track.config import TrackConfig
from vhap.track.steps import StepRunner
from vhap.track.tracker import track

FAST = [
    "--preset", "landmark_only",
    "--model.head-model", "open",
    "--render.backend", "torch",
    "--pipeline.lmk-init-rigid.num-steps", "5",
    "--pipeline.lmk-init-all.num-steps", "5",
    "--pipeline.lmk-sequential-tracking.num-steps", "2",
    "--pipeline.lmk-global-tracking.num-epochs", "1",
    "--exp.device", "cpu",
    "--exp.no-write-media",
    "--log.no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    from vhap.synth.generate import SynthConfig, generate_sequence

    cfg = SynthConfig(
        output=tmp_path_factory.mktemp("mono"), rig="monocular", head_model="open", albedo_resolution=32,
        supersample=1, background="white", num_frames=2, image_size=(48, 48),
    )  # fmt: skip
    return generate_sequence(cfg, progress=False)


def _cfg(seq, out: Path, *extra: str) -> TrackConfig:
    args = ["--data.root", str(seq.root), "--data.sequence", seq.sequence, "--data.landmark-detector",
            seq.landmark_detector, "--exp.output-folder", str(out), *FAST, *extra]  # fmt: skip
    return parse_config(TrackConfig, args, preset_group="track")


def test_divergence_fails_the_run_and_is_recorded(seq, tmp_path, monkeypatch):
    original = StepRunner.run_fixed_stage

    def blow_up(self, *args, **kwargs):
        original(self, *args, **kwargs)
        with torch.no_grad():
            self.problem.params.expr.fill_(float("nan"))  # what a too-large learning rate ends in

    monkeypatch.setattr(StepRunner, "run_fixed_stage", blow_up)
    out = tmp_path / "run"
    with pytest.raises(VhapError, match="tracking diverged: non-finite .*expr"):
        track(_cfg(seq, out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] is True and "expr" in metrics["diverged_in"]
    assert not (out / "DONE").exists()


def test_healthy_run_records_not_diverged(seq, tmp_path):
    out = tmp_path / "run"
    track(_cfg(seq, out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] is False and (out / "DONE").is_file()


def test_nothing_to_fit_fails_before_tracking(seq, tmp_path, capsys):
    """All-NaN landmarks, or none at all with --data.no-require-landmarks: exit 2 with one line, no run."""
    from vhap.cli import main

    root = tmp_path / "data"
    shutil.copytree(seq.root, root)
    lmk_files = sorted((root / seq.sequence / "landmark2d").glob("*.npz"))
    with np.load(lmk_files[0]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["face_landmark_2d"] = np.full_like(arrays["face_landmark_2d"], np.nan)
    np.savez(lmk_files[0], **arrays)
    base = ["track", "--data.root", str(root), "--data.sequence", seq.sequence, "--data.landmark-detector",
            seq.landmark_detector, *FAST]  # fmt: skip
    assert main([*base, "--exp.output-folder", str(tmp_path / "a")]) == 2
    assert "nothing to fit the head to" in capsys.readouterr().err
    shutil.rmtree(root / seq.sequence / "landmark2d")
    assert main([*base, "--exp.output-folder", str(tmp_path / "b"), "--data.no-require-landmarks"]) == 2
    assert "nothing to fit the head to" in capsys.readouterr().err
    assert not (tmp_path / "a" / "DONE").exists() and not (tmp_path / "b" / "DONE").exists()
