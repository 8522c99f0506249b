"""Smoke version of the benchmark suite (seconds): generator → tracker (a handful of steps) → score → report.

Keeps the harness from rotting; the numbers themselves are only checked for sanity here.
"""

from __future__ import annotations

import json

import pytest

from bench import accuracy_summary
from bench import report as bench_report
from bench import run as bench_run


def _result(name: str, acc: dict) -> dict:
    return {
        "name": name,
        "set": "synthetic_mono",
        "preset": "demo",
        "device": "cpu",
        "seeds": [0],
        "date": "",
        "hardware": {"cpu_count": 2},
        "bench_command": "python bench/run.py",
        "per_seed": [{"seed": 0, "accuracy": acc, "timing": {}, "command": "vhap track"}],
    }


def test_generator_oracle_and_report(tmp_path, flame_topology_dir):
    """Without the tracker: the ground truth scored as a run is perfect, and the report renders it."""
    from vhap.synth.evaluate import evaluate_synthetic_run, write_oracle_run
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.synth.heads import resolve_head_model

    head = resolve_head_model("standin", tmp_path)
    seq = generate_sequence(
        SynthConfig(output=tmp_path / "seq", num_frames=2, image_size=(64, 64), head_model=head, albedo_resolution=64),
        progress=False,
    )
    acc = evaluate_synthetic_run(write_oracle_run(seq.sequence_dir, tmp_path / "run"), seq.sequence_dir)
    assert acc["vertex_error"]["face"]["mean"] < 1e-3
    results = tmp_path / "results"
    results.mkdir()
    record = _result("oracle", acc)
    record["mean"] = bench_run.mean_over_seeds(record["per_seed"])
    (results / "oracle.json").write_text(json.dumps(record))
    out = bench_report.write_report(bench_report.ReportConfig(results_dir=results, output=tmp_path / "BENCHMARKS.md"))
    text = out.read_text()
    assert "| `oracle` | synthetic_mono |" in text and "0.00 /" in text
    assert (results / "plots" / "vertex_error.png").is_file()


@pytest.mark.slow
def test_bench_run_tracks_a_tiny_sequence(tmp_path, flame_topology_dir):
    """bench/run.py end to end with a few tracker steps (skipped when the tracker is not importable)."""
    pytest.importorskip("vhap.track.tracker")
    few = [
        "--pipeline.lmk-init-rigid.num-steps", "10",
        "--pipeline.lmk-init-all.num-steps", "10",
        "--pipeline.rgb-init-texture.num-steps", "2",
        "--pipeline.rgb-init-all.num-steps", "2",
        "--pipeline.rgb-init-offset.num-steps", "2",
        "--pipeline.rgb-sequential-tracking.num-steps", "2",
        "--pipeline.rgb-global-tracking.num-epochs", "1",
        "--model.tex-resolution", "64",
        "--exp.no-write-media",
        "--log.no-progress",
    ]  # fmt: skip
    argv = [
        "--set", "synthetic_mono", "--preset", "demo", "--head-model", "standin",
        "--num-frames", "2", "--image-size", "64", "64",
        "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "results"), "--name", "smoke",
        "--", *few,
    ]  # fmt: skip
    assert bench_run.main(argv) == 0
    res = json.loads((tmp_path / "results" / "smoke.json").read_text())
    seed = res["per_seed"][0]
    assert seed["accuracy"]["vertex_error"]["align"] == "similarity_frame"
    assert 0.0 < seed["accuracy"]["vertex_error"]["face"]["mean"] < 50.0  # mm: finite and plausible
    assert 0.0 <= seed["accuracy"]["silhouette_iou"]["mean"] <= 1.0
    assert seed["timing"]["stage_steps"]["lmk_init_rigid"] == 10
    assert res["mean"]["timing.peak_rss_mib"] > 0 and "vhap track --preset demo" in seed["command"]
    b = seed["accuracy"]["breakdown"]
    assert b["identity"]["face"] > 0.0 and len(b["per_frame_face"]) == 2
    summary = accuracy_summary.summarize_file(tmp_path / "results" / "smoke.json")
    assert any(line.startswith("seed 0: face") for line in summary)
    # --rescore scores the run folder again without tracking: same numbers, same tracking timing
    i = argv.index("--")
    assert bench_run.main([*argv[:i], "--rescore", *argv[i:]]) == 0
    again = json.loads((tmp_path / "results" / "smoke.json").read_text())["per_seed"][0]
    assert again["accuracy"]["vertex_error"]["face"]["mean"] == pytest.approx(
        seed["accuracy"]["vertex_error"]["face"]["mean"]
    )
    assert again["timing"]["wall_s"] == seed["timing"]["wall_s"]
    out = bench_report.write_report(
        bench_report.ReportConfig(results_dir=tmp_path / "results", output=tmp_path / "B.md")
    )
    assert "`smoke`" in out.read_text()


def test_dataset_cost_table_fills_what_is_measured(tmp_path):
    """#19 item 4: disk as fixed + per-frame from runs of two lengths; GPU cells 'unmeasured' with the device
    command until a GPU sharing result exists, then filled from its best k."""
    from bench import dataset_disk

    assert dataset_disk.fit_line([(2, 12.0), (4, 16.0), (6, 20.0)]) == pytest.approx((8.0, 2.0))
    runs = []
    for frames in (2, 4):
        path = tmp_path / f"run_f{frames}.json"
        disk = {"frames": 3.0 * frames, "run": 150.0 + 0.5 * frames}
        path.write_text(json.dumps({"bench_command": "x", "per_seed": [{"num_frames": frames, "disk_mib": disk}]}))
        runs.append(str(path))
    results = tmp_path / "results"
    assert dataset_disk.main([*runs, "--out", str(results / "dataset_disk_cpu.json")]) == 0
    d = json.loads((results / "dataset_disk_cpu.json").read_text())
    assert d["artefacts"]["run"]["fixed_mib"] == pytest.approx(150.0)
    assert d["artefacts"]["frames"]["per_sequence_gib"] == pytest.approx(3.0 * 150 / 1024)
    assert d["total"]["dataset_tib"] == pytest.approx((450.0 + 225.0) * 10_800 / 2**20)
    table = bench_report.dataset_cost_table(results)
    assert "| GPU-hours, tracking (`nersemble` preset) | unmeasured | unmeasured |" in table
    assert bench_report.DATASET_GPU_COMMAND in table and "| disk, run | 0.22 GiB (150 MiB + 0.50 MiB/frame)" in table
    res = [{"k": k, "ok": True, "projection": {"gpu_seconds_per_sequence": s}} for k, s in ((1, 72.0), (4, 36.0))]
    (results / "gpu_share_16view.json").write_text(json.dumps({"hardware": {"gpu": "H1"}, "results": res}))
    (results / "gpu_share_cpu.json").write_text(json.dumps({"hardware": {}, "results": res}))  # a CPU smoke: left out
    table = bench_report.dataset_cost_table(results)
    h1_k1 = "| GPU-hours, tracking, schedule ?, 1 per GPU | 0.020 (72 GPU-s) | 216 | `gpu_share_16view.json`, H1 |"
    assert h1_k1 in table
    assert "| GPU-hours, tracking, schedule ?, 4 per GPU (best on H1) | 0.010 (36 GPU-s) | 108 |" in table
    assert "unmeasured" not in table and "gpu_share_cpu" not in table
    # a second GPU's file keeps its own rows (a k it shares with the first does not replace the first's figure)
    res2 = [{"k": k, "ok": True, "projection": {"gpu_seconds_per_sequence": s}} for k, s in ((1, 50.0), (8, 40.0))]
    (results / "gpu_share_16view_h2.json").write_text(json.dumps({"hardware": {"gpu": "H2"}, "results": res2}))
    table = bench_report.dataset_cost_table(results)
    assert h1_k1 in table
    assert "schedule ?, 1 per GPU | 0.014 (50 GPU-s) | 150 | `gpu_share_16view_h2.json`, H2 |" in table
    assert "4 per GPU (best on H1)" in table and "8 per GPU (best on H2) | 0.011 (40 GPU-s) | 120 |" in table
    # a shorter schedule's file (its stage steps say which) gets rows of its own beside the unrecorded one's
    w = {"stage_steps": {"rgb_sequential_tracking": 600, "rgb_global_tracking": 360}}
    res3 = [{"k": 4, "ok": True, "projection": {"gpu_seconds_per_sequence": 30.0}, "workers": [w]}]
    d3 = {"hardware": {"gpu": "H1"}, "num_frames": 24, "results": res3}
    (results / "gpu_share_16view_short.json").write_text(json.dumps(d3))
    table = bench_report.dataset_cost_table(results)
    assert "| GPU-hours, tracking, schedule 25/15, 4 per GPU (best on H1) | 0.008 (30 GPU-s) | 90 |" in table
    assert "| GPU-hours, tracking, schedule ?, 4 per GPU | 0.010 (36 GPU-s) | 108 |" in table
    # schedule sweeps of whole runs count only where every variant ran one schedule, evaluated at the end only
    steps = {"rgb_sequential_tracking": 3750, "rgb_global_tracking": 2250, "final_evaluation": 0}
    ok = {"returncode": 0, "stage_steps": steps}
    sweep = {
        "hardware": {"gpu": "H2"},
        "num_frames": 150,
        "tracking_wall_s": 171.0,
        "variants": {"a": ok, "b": ok, "c": ok},
    }
    (results / "schedule").mkdir()
    (results / "schedule" / "schedule_sweep_a.json").write_text(json.dumps(sweep))
    between = {"returncode": 0, "stage_steps": {**steps, "evaluation": 0}}
    (results / "schedule" / "schedule_sweep_b.json").write_text(json.dumps({**sweep, "variants": {"a": between}}))
    failed = {"a": ok, "b": {**ok, "returncode": -9}}
    (results / "schedule" / "schedule_sweep_c.json").write_text(json.dumps({**sweep, "variants": failed}))
    other = {"a": ok, "b": {**ok, "stage_steps": {**steps, "rgb_global_tracking": 4500}}}
    (results / "schedule" / "schedule_sweep_d.json").write_text(json.dumps({**sweep, "variants": other}))
    table = bench_report.dataset_cost_table(results)
    row = "| GPU-hours, tracking, schedule 25/15, 3 whole 150-frame runs at once | 0.016 (57 GPU-s) | 171 |"
    assert row in table and "`schedule/schedule_sweep_a.json`, H2 |" in table
    assert not any(f"schedule_sweep_{x}" in table for x in "bcd")
    assert dataset_disk.main([runs[0], "--out", str(tmp_path / "x.json")]) == 2  # one length: no line


def test_landmark_views_sets():
    from bench.landmark_views import parse_views

    assert parse_views("all", 16) is None and parse_views("9,6,7,8", 16) == [6, 7, 8, 9]
    for bad in ("6,6", "16", "", "-1"):
        with pytest.raises(ValueError, match="distinct camera indices 0..15"):
            parse_views(bad, 16)


def test_schedule_sweep_picks_the_cheapest_variant_within_the_error_bound(tmp_path, capsys):
    from bench.schedule_sweep import main as sweep_main
    from bench.schedule_sweep import parse_variant, pick_variant

    def var(face, seconds, flags, rc=0):
        return {"returncode": rc, "flags": flags, "stage_seconds": {"a": seconds, "evaluation": None},
                "by_epoch": [{"epoch": 0, "face_mm": 9.0}, {"epoch": 15, "face_mm": face}]}  # fmt: skip

    rec = {"variants": {"base": var(0.48, 100.0, ""), "short": var(0.49, 60.0, "--x 1"),
                        "shorter": var(0.55, 40.0, "--x 2"), "broken": var(0.1, 1.0, "--x 3", rc=1)}}  # fmt: skip
    assert pick_variant(rec, 0.5) == "short"  # the cheapest within the bound; the failed run never counts
    assert pick_variant(rec, 0.6) == "shorter"
    assert pick_variant(rec, 0.3) == "base"  # none within: the most accurate
    (tmp_path / "r.json").write_text(json.dumps(rec))
    assert sweep_main(["--pick", str(tmp_path / "r.json"), "0.5"]) == 0
    assert capsys.readouterr().out.strip() == "short --x 1"
    assert parse_variant("s25=--a 1 --b 'x y'") == ("s25", ["--a", "1", "--b", "x y"])
    assert parse_variant("base=") == ("base", [])
