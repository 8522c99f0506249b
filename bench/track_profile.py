"""Profile tracker steps on synthetic data at the issue-6 target sizes and write one JSON.

    python bench/track_profile.py --device cuda --backend nvdiffrast --out bench/results/track_profile_cuda.json

Generates (once, under ``--data-dir``) a monocular 16-frame 512×512 sequence and a 16-view NeRSemble-DS4
(802×550) sequence, builds a :class:`~vhap.track.tracker.Tracker` for each with the ``monocular`` /
``nersemble`` preset, and times ``--steps`` steps of each listed stage on the first sample
(:func:`bench.profile_steps.profile_stage`: wall clock per step with a device sync only at the ends, then a
``torch.profiler`` pass for the per-scope CPU / device times and the top operators).

``--graph-stages lmk_init_all ...`` also times whole fixed-sample stage runs (``StepRunner.run_fixed_stage``,
``--graph-steps`` steps) eagerly and with ``exp.cuda_graphs`` (``vhap.track.graphs``), and records whether the
CUDA-graph capture succeeded (a failed capture warns and falls back to eager steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETS = {
    "mono_16x512": dict(rig="monocular", num_frames=16, image_size=(512, 512), preset="monocular"),
    "16view_ds4": dict(rig="multiview", num_frames=1, image_size=(802, 550), preset="nersemble"),
}


def build_tracker(set_name: str, args, extra: list[str]):
    from vhap.config import parse_config
    from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth
    from vhap.track.config import TrackConfig
    from vhap.track.tracker import Tracker

    spec = SETS[set_name]
    tag = f"profile_{set_name}"
    scfg = SynthConfig(
        output=Path(args.data_dir) / ("sequences_mono" if spec["rig"] == "monocular" else "sequences_multiview"),
        rig=spec["rig"],
        sequence=tag,
        seed=0,
        num_frames=spec["num_frames"],
        image_size=spec["image_size"],
        num_cameras=16,
        device=args.device,
        backend=args.backend,
    )
    mono = spec["rig"] == "monocular"
    seq_dir = (scfg.output / tag) if mono else (scfg.output / "999" / "sequences" / tag)
    if not (seq_dir / "ground_truth" / "meta.json").is_file():
        generate_sequence(scfg, progress=False)
    meta = load_ground_truth(seq_dir)["meta"]
    argv = ["--preset", spec["preset"], "--data.root", str(scfg.output), "--data.sequence", tag]
    argv += ["--data.landmark-detector", meta["landmark_detector"], "--exp.device", args.device]
    argv += ["--render.backend", args.backend, "--exp.output-folder", str(Path(args.data_dir) / "runs" / tag)]
    if not mono:
        argv += ["--data.subject", "999"]
    cfg = parse_config(TrackConfig, argv + extra, preset_group="track")
    cfg.log.progress = False
    return Tracker(cfg), argv + extra


def time_fixed_stage(tracker, stage_name: str, num_steps: int, graphs: bool) -> dict:
    """Wall clock of one ``run_fixed_stage`` call of ``num_steps`` steps (eager or CUDA-graphed)."""
    import warnings

    import torch

    stage = dataclasses.replace(tracker.plan[stage_name], num_steps=num_steps)
    runner = tracker.steps
    device = tracker.problem.device
    old_graphs = runner.cuda_graphs
    runner.cuda_graphs = graphs
    runner.stop_after = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            runner.run_fixed_stage(stage_name, stage, 0)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall = time.perf_counter() - t0
    finally:
        runner.cuda_graphs = old_graphs
    failures = [str(w.message) for w in caught if "CUDA graph" in str(w.message)]
    return {
        "stage": stage_name,
        "cuda_graphs": graphs,
        "graphed": graphs and runner.use_cuda_graph(stage, num_steps) and not failures,
        "steps": num_steps,
        "wall_s": wall,
        "ms_per_step": 1000 * wall / num_steps,
        "capture_failures": failures,
        "last_loss": tracker.log.state.loss_history[-1] if tracker.log.state.loss_history else None,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.profile_steps import profile_stage
    from vhap.utils.atomic import write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backend", default="nvdiffrast")
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--stages", nargs="+", default=["lmk_init_all", "rgb_sequential_tracking", "rgb_global_tracking"])
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--profile-steps", type=int, default=5)
    ap.add_argument("--data-dir", default="output/bench_data")
    ap.add_argument("--out", default=None)
    ap.add_argument("--print-ops", action="store_true")
    ap.add_argument("--print-kernels", type=int, default=0, help="print the N longest GPU kernels per stage")
    ap.add_argument("--graph-stages", nargs="*", default=[], help="also time these whole stages with CUDA graphs")
    ap.add_argument("--graph-steps", type=int, default=200)
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    results, graph_results = [], []

    def write() -> None:
        """(Re)write the JSON after every measurement: a run cut short by a timeout keeps what it measured."""
        if not args.out:
            return
        sys.path.insert(0, str(REPO / "bench"))
        from run import hardware_info

        doc = {
            "hardware": hardware_info(args.device),
            "command": "python bench/track_profile.py " + " ".join(argv or sys.argv[1:]),
            "results": results,
            "fixed_stage_runs": graph_results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(args.out), json.dumps(doc, indent=1))

    for set_name in args.sets:
        t0 = time.perf_counter()
        tracker, targv = build_tracker(set_name, args, extra)
        build_s = time.perf_counter() - t0
        for stage in args.stages:
            if stage not in tracker.plan:
                continue
            t1 = time.perf_counter()
            r = profile_stage(tracker, stage, args.warmup, args.steps, args.profile_steps)
            r.update(set=set_name, track_args=targv, build_s=build_s, stage_wall_s=time.perf_counter() - t1)
            print(f"[{set_name}] {stage}: {r['ms_per_step']:.2f} ms/step ({r['views_per_step']} views)", flush=True)
            for k, v in sorted(r["scopes"].items()):
                # a scope's "device" figure is the GPU time its range spans (idle gaps included), not a kernel sum:
                # scopes overlap and do not add up — the kernel table (--print-kernels) is the breakdown to trust
                dev = "" if v["device_ms_per_step"] is None else f" device range {v['device_ms_per_step']:.2f}"
                print(f"    {k:<22} cpu {v['cpu_ms_per_step']:.2f}{dev}", flush=True)
            if args.print_ops:
                print(r["top_ops"], flush=True)
            if args.print_kernels:
                print(f"    GPU kernels {r['device_ms_total_per_step']:.2f} ms/step, top {args.print_kernels}:")
                for k in r["kernels"][: args.print_kernels]:
                    print(f"    {k['ms_per_step']:7.3f} ms {k['calls_per_step']:5.1f}x  {k['name'][:110]}", flush=True)
            results.append(r)
            write()
        for stage in args.graph_stages:
            if stage not in tracker.plan:
                continue
            for graphs in (False, True):
                g = time_fixed_stage(tracker, stage, args.graph_steps, graphs)
                g.update(set=set_name, kind="fixed_stage")
                print(
                    f"[{set_name}] {stage} whole stage, graphs={graphs}: {g['ms_per_step']:.2f} ms/step "
                    f"(graphed={g['graphed']}) {g['capture_failures'][:1]}",
                    flush=True,
                )
                graph_results.append(g)
                write()
        del tracker
    write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
