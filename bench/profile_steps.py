"""Time and profile tracker steps: ``python bench/profile_steps.py --stage rgb_global_tracking [track flags]``.

Builds the :class:`~vhap.track.tracker.Tracker` of the given ``vhap track`` flags (presets included), runs
``--warmup`` steps of one stage on the first sample, then times ``--steps`` steps (wall clock, with a device
sync only at the ends) and profiles ``--profile-steps`` more with ``torch.profiler``. Prints ms/step, the time
per tracker scope (head model, render, losses, regularisers, backward, optimiser) and the top operators, and
writes the numbers as JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def profile_stage(tracker, stage_name: str, warmup: int, steps: int, profile_steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    stage = tracker.plan[stage_name]
    runner, problem = tracker.steps, tracker.problem
    runner.stop_after = None
    opt = runner.optimizer(stage)
    idx = problem.sample_idx[0]
    device = problem.device
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        runner.step(stage_name, stage, opt, idx)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        runner.step(stage_name, stage, opt, idx)
    sync()
    ms = 1000 * (time.perf_counter() - t0) / max(1, steps)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(profile_steps):
            runner.step(stage_name, stage, opt, idx)
        sync()
    events = prof.key_averages()
    dev_attr = "device_time_total" if cuda else "cpu_time_total"
    scopes = {
        e.key: {
            "cpu_ms_per_step": e.cpu_time_total / 1000 / profile_steps,
            "device_ms_per_step": getattr(e, dev_attr, 0) / 1000 / profile_steps if cuda else None,
        }
        for e in events
        if e.key.startswith("track/")
    }
    kernels = kernel_table(prof, profile_steps) if cuda else []
    sort_key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    graphed = graphed_steps(tracker, stage_name, steps) if cuda else None
    return {
        "stage": stage_name,
        "frames_per_step": int(idx.numel()),
        "views_per_step": int(idx.numel()) * problem.C,
        "image_size": [problem.H, problem.W],
        "device": str(device),
        "backend": problem.renderer.backend,
        "ms_per_step": ms,
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        "profile_steps": profile_steps,
        # GPU kernel time per step: the sum of the kernels' own durations (operator rows would count them twice)
        "device_ms_total_per_step": sum(k["ms_per_step"] for k in kernels) if cuda else None,
        "kernels": kernels[:60],
        "scopes": scopes,
        "top_ops": events.table(sort_by=sort_key, row_limit=20, max_name_column_width=50),
        "cuda_graph": graphed,
    }


def kernel_table(prof, steps: int) -> list[dict]:
    """GPU kernels of a ``torch.profiler`` run, merged by name, longest first: ``name``, ``ms_per_step``,
    ``calls_per_step``."""
    from torch.autograd import DeviceType

    acc: dict[str, list[float]] = {}
    for e in prof.events():
        # GPU-side ranges of record_function scopes are reported as CUDA events too: not kernels
        if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False):
            row = acc.setdefault(e.name, [0.0, 0])
            row[0] += e.time_range.elapsed_us()
            row[1] += 1
    rows = [
        {"name": name, "ms_per_step": us / 1000 / steps, "calls_per_step": n / steps} for name, (us, n) in acc.items()
    ]
    return sorted(rows, key=lambda r: -r["ms_per_step"])


def graphed_steps(tracker, stage_name: str, steps: int) -> dict | None:
    """Wall ms per step of the same step replayed from a CUDA graph (``vhap.track.graphs``), or None where the
    stage cannot be recorded (e.g. a photometric stage with nvdiffrast's rasteriser)."""
    from vhap.track.graphs import StepGraph

    stage = tracker.plan[stage_name]
    runner = tracker.steps
    device = tracker.problem.device
    if not runner.use_cuda_graph(stage, steps + StepGraph.WARMUP + 3):
        return None
    opt = runner.optimizer(stage)
    idx = tracker.problem.sample_idx[0]
    graph = runner.record(stage_name, stage, opt, idx.numel())
    try:
        t0 = time.perf_counter()
        for _ in range(StepGraph.WARMUP + 1):  # eager warm-up steps, then the recording and its first replay
            runner.step(stage_name, stage, opt, idx, graph)
        torch.cuda.synchronize(device)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            runner.step(stage_name, stage, opt, idx, graph)
        torch.cuda.synchronize(device)
        ms = 1000 * (time.perf_counter() - t0) / max(1, steps)
    finally:
        failed = graph.failed
        runner.release(graph, opt)
    return {"ms_per_step": ms, "setup_s": setup_s, "recorded": not failed, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    from vhap.config import parse_config
    from vhap.track.config import TrackConfig
    from vhap.track.tracker import Tracker

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="rgb_global_tracking")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--profile-steps", type=int, default=5)
    ap.add_argument("--json", default=None)
    args, rest = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(TrackConfig, rest, preset_group="track")
    cfg.log.progress = False
    tracker = Tracker(cfg)
    res = profile_stage(tracker, args.stage, args.warmup, args.steps, args.profile_steps)
    print(f"{res['stage']}: {res['ms_per_step']:.2f} ms/step, {res['views_per_step']} views of {res['image_size']}")
    for k, v in sorted(res["scopes"].items()):
        dev = "" if v["device_ms_per_step"] is None else f"  device {v['device_ms_per_step']:.2f} ms"
        print(f"  {k:<22} cpu {v['cpu_ms_per_step']:.2f} ms{dev}")
    print(res["top_ops"])
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
