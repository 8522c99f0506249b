"""Count the ATen operators one tracker step dispatches (CPU, tiny synthetic sequence): a device-free proxy for the
number of GPU kernels a step launches, which bounds a CUDA-graph-replayed step on the GPU.

    python bench/step_ops.py --stages lmk_init_all rgb_init_offset rgb_global_tracking

Prints, per stage, the top-level ATen calls of one step (forward, backward, Adam) after two warm-up steps, how many
of them are not views (views launch no kernel), and the most frequent ones. The photometric stages run the
pure-PyTorch rasteriser here, so their counts include its operators, which the GPU backends replace.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: operators that only make views or metadata (no kernel launch)
VIEW_OPS = {
    "aten::select", "aten::reshape", "aten::view", "aten::unsqueeze", "aten::squeeze", "aten::transpose",
    "aten::expand", "aten::slice", "aten::narrow", "aten::detach", "aten::permute", "aten::as_strided", "aten::t",
    "aten::unbind", "aten::split", "aten::alias", "aten::to", "aten::_unsafe_view", "aten::view_as",
    "aten::expand_as", "aten::lift_fresh", "aten::empty", "aten::empty_like", "aten::resolve_conj",
    "aten::resolve_neg", "aten::contiguous", "aten::flatten", "aten::chunk", "aten::_reshape_alias",
    "aten::result_type",
}  # fmt: skip


def count_step_ops(tracker, stage_name: str, warmup: int = 2) -> collections.Counter:
    """Top-level ATen calls of one ``StepRunner.step_terms`` of ``stage_name`` (after ``warmup`` steps)."""
    from torch.profiler import ProfilerActivity, profile

    stage = tracker.plan[stage_name]
    runner = tracker.steps
    opt = runner.optimizer(stage)
    idx = tracker.problem.sample_idx[0]
    for _ in range(warmup):
        runner.step_terms(stage, opt, idx)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        runner.step_terms(stage, opt, idx)
    counts: collections.Counter = collections.Counter()
    for e in prof.events():
        parent = e.cpu_parent
        if e.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::")):
            counts[e.name] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="+", default=["lmk_init_all", "rgb_init_offset", "rgb_global_tracking"])
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", default=None, help="also write the counts here")
    args = ap.parse_args(argv)

    import torch

    from vhap.config import parse_config
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.track.config import TrackConfig
    from vhap.track.tracker import Tracker

    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        seq = generate_sequence(
            SynthConfig(output=Path(tmp), rig="monocular", head_model="open", num_frames=4, image_size=(64, 64)),
            progress=False,
        )
        cfg = parse_config(
            TrackConfig,
            ["--preset", "monocular", "--data.root", str(seq.root), "--data.sequence", seq.sequence,
             "--data.landmark-detector", seq.landmark_detector, "--model.head-model", "open",
             "--exp.output-folder", str(Path(tmp) / "run"), "--exp.device", "cpu", "--render.backend", "torch",
             "--exp.batch-size", "4", "--model.tex-resolution", "64", "--log.no-progress"],
            preset_group="track",
        )  # fmt: skip
        tracker = Tracker(cfg)
        for stage in args.stages:
            counts = count_step_ops(tracker, stage)
            total = sum(counts.values())
            kernels = sum(v for k, v in counts.items() if k not in VIEW_OPS)
            print(f"{stage}: {total} top-level ATen calls, {kernels} not views")
            for name, n in counts.most_common(args.top):
                print(f"  {n:5d} {name}")
            out[stage] = {"total": total, "not_views": kernels, "counts": dict(counts)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
