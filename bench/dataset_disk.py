"""Disk per 16-view sequence and for NeRSemble v2, from ``bench/run.py --set nersemble_sequence`` runs.

    python bench/dataset_disk.py RUN_f2.json RUN_f4.json --out bench/results/dataset_disk_cpu.json

Each run records the size of every artefact (frames, mattes, landmarks, run folder, export; ``disk_mib``). A
straight line ``fixed + per_frame × frames`` through the runs (least squares; at least two lengths) separates
what every sequence pays once (e.g. the texture map in every parameter file) from what grows with its frames,
and projects a ``--frames``-frame sequence and ``--sequences`` of them. Only sizes are read: the runs may use
any tracking schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.run import NERSEMBLE_V2_SEQUENCES  # noqa: E402


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per_frame) of the least-squares line through (frames, MiB) points (≥ 2 distinct frame counts)."""
    n = len(points)
    mx = sum(f for f, _ in points) / n
    my = sum(m for _, m in points) / n
    sxx = sum((f - mx) ** 2 for f, _ in points)
    if sxx == 0:
        raise ValueError("runs of at least two different lengths are needed")
    slope = sum((f - mx) * (m - my) for f, m in points) / sxx
    return my - slope * mx, slope


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="bench/dataset_disk.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="bench/run.py --set nersemble_sequence result JSONs")
    ap.add_argument("--frames", type=int, default=150, help="frames of the projected sequence")
    ap.add_argument("--sequences", type=int, default=NERSEMBLE_V2_SEQUENCES)
    ap.add_argument("--out", type=Path, default=Path("bench/results/dataset_disk_cpu.json"))
    args = ap.parse_args(argv)
    records = []
    for path in args.runs:
        r = json.loads(path.read_text())
        for s in r["per_seed"]:
            records.append({"file": path.name, "frames": s["num_frames"], "image_size": s.get("image_size"),
                            "disk_mib": s["disk_mib"], "command": r.get("bench_command")})  # fmt: skip
    if len({rec["frames"] for rec in records}) < 2:
        print("dataset_disk: error: runs of at least two different lengths are needed", file=sys.stderr)
        return 2
    artefacts = {}
    for name in records[0]["disk_mib"]:
        fixed, per_frame = fit_line([(rec["frames"], rec["disk_mib"][name]) for rec in records])
        seq = fixed + per_frame * args.frames
        artefacts[name] = {
            "fixed_mib": fixed,
            "per_frame_mib": per_frame,
            "per_sequence_gib": seq / 1024,
            "dataset_tib": seq * args.sequences / 2**20,
        }
    out = {
        "name": args.out.stem,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "bench_command": "python bench/dataset_disk.py " + " ".join(argv),
        "frames_per_sequence": args.frames,
        "sequences": args.sequences,
        "runs": records,
        "artefacts": artefacts,
        "total": {
            "per_sequence_gib": sum(a["per_sequence_gib"] for a in artefacts.values()),
            "dataset_tib": sum(a["dataset_tib"] for a in artefacts.values()),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    for name, a in artefacts.items():
        print(f"{name}: {a['fixed_mib']:.1f} MiB + {a['per_frame_mib']:.2f} MiB/frame -> "
              f"{a['per_sequence_gib']:.2f} GiB/sequence, {a['dataset_tib']:.1f} TiB")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
