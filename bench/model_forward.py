"""Time a 16-frame forward pass of the head model on CPU; write bench/results/model_forward_cpu.json.

Uses the open head model when it has been generated, else the FLAME-topology stand-in of
../shared/flame-topology (real FLAME sizes: 5023 vertices + teeth, 300 + 100 bases).

    python bench/model_forward.py [--frames 16] [--runs 50] [--threads N] [--model open|DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO.parent / "shared" / "flame-topology"


def _standin_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="vhap_standin_"))
    for src in (
        STANDIN / "standin" / "flame2023.pkl",
        STANDIN / "standin" / "FLAME_masks.pkl",
        STANDIN / "head_template_mesh.obj",
        STANDIN / "landmark_embedding_with_eyes.npy",
    ):
        (d / src.name).symlink_to(src)
    return d


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    from vhap.model import HeadModel, load_head_assets
    from vhap.model.io import OPEN_HEAD_NPZ
    from vhap.utils.atomic import write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--model", default="auto", help="auto | open | a FLAME directory")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "model_forward_cpu.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = args.model
    if spec == "auto":
        spec = "open" if OPEN_HEAD_NPZ.is_file() else str(_standin_dir())
        label = "open" if spec == "open" else "flame-topology stand-in (synthetic bases)"
    else:
        label = spec
    assets = load_head_assets(spec)
    model = HeadModel(assets, n_shape=300, n_expr=100, add_teeth=True).eval()

    g = torch.Generator().manual_seed(0)
    b = args.frames
    params = dict(
        shape=0.5 * torch.randn(300, generator=g),
        expr=0.5 * torch.randn(b, 100, generator=g),
        rotation=0.1 * torch.randn(b, 3, generator=g),
        neck_pose=0.05 * torch.randn(b, 3, generator=g),
        jaw_pose=0.1 * torch.rand(b, 3, generator=g),
        eyes_pose=0.05 * torch.randn(b, 6, generator=g),
        translation=0.01 * torch.randn(b, 3, generator=g),
        static_offset=torch.zeros(1, model.num_verts, 3),
    )

    def timed(grad: bool) -> list[float]:
        times = []
        for i in range(args.warmup + args.runs):
            inputs = {k: v.clone().requires_grad_(grad) for k, v in params.items()}
            t0 = time.perf_counter()
            with torch.set_grad_enabled(grad):
                out = model(**inputs)
                if grad:
                    (out.verts.sum() + out.landmarks.sum()).backward()
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times.append(dt * 1000)
        return times

    load_at_start = os.getloadavg()[0]
    fwd = timed(False)
    fwd_bwd = timed(True)
    result = {
        "benchmark": "HeadModel forward, CPU",
        "model": label,
        "num_verts": model.num_verts,
        "num_faces": int(model.faces.shape[0]),
        "real_bases": {"shape": assets.num_shape, "expr": assets.num_expr},
        "frames": b,
        "runs": args.runs,
        "forward_ms": {"median": statistics.median(fwd), "min": min(fwd), "max": max(fwd)},
        "forward_backward_ms": {"median": statistics.median(fwd_bwd), "min": min(fwd_bwd), "max": max(fwd_bwd)},
        "target_ms": 50.0,
        "hardware": {
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "load_average_1min_at_start": load_at_start,
        },
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "note": "median of runs after warm-up; the machine's cores may be shared with other jobs",
    }
    text = json.dumps(result, indent=2)
    write_text_atomic(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
