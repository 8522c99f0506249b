"""`vhap track --data.sequence-dir SEQ`: one sequence folder addresses the run (root, layout, subject follow)."""

from __future__ import annotations

import yaml

from vhap.cli import main


def test_track_cli_with_sequence_dir_only(tmp_path, capsys):
    from vhap.synth.generate import SynthConfig, generate_sequence

    seq = generate_sequence(
        SynthConfig(
            output=tmp_path / "data", rig="monocular", head_model="open", albedo_resolution=16, supersample=1,
            num_frames=2, image_size=(32, 32),
        ),
        progress=False,
    )  # fmt: skip
    run = tmp_path / "run"
    args = ["track", "--preset", "landmark_only", "--data.sequence-dir", str(seq.sequence_dir)]
    args += ["--data.landmark-detector", seq.landmark_detector, "--model.head-model", "open"]
    args += ["--exp.output-folder", str(run), "--exp.device", "cpu", "--exp.no-write-media", "--log.no-progress"]
    args += ["--pipeline.lmk-init-rigid.num-steps", "2", "--pipeline.lmk-init-all.num-steps", "2"]
    args += ["--pipeline.lmk-sequential-tracking.num-steps", "1", "--pipeline.lmk-global-tracking.num-epochs", "1"]
    assert main(args) == 0 and (run / "DONE").is_file()
    saved = yaml.safe_load((run / "config.yml").read_text())["data"]
    # the saved config names the sequence both ways, so it reads back to the same run
    assert saved["sequence_dir"] == str(seq.sequence_dir.resolve()) and saved["sequence"] == seq.sequence
    assert saved["root"] == str(seq.root.resolve()) and saved["layout"] == "monocular"

    capsys.readouterr()
    assert main(["track", "--data.sequence-dir", str(tmp_path / "nope"), "--exp.output-folder", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vhap track: error: ") and "nope: no such video file or sequence folder" in err
    bad = ["track", "--data.sequence-dir", str(seq.sequence_dir), "--data.sequence", "other"]
    assert main(bad + ["--exp.output-folder", str(tmp_path / "run2")]) == 2
    assert "--data.sequence other disagrees with --data.sequence-dir" in capsys.readouterr().err
