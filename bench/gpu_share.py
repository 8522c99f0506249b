"""Several tracking processes on one GPU: throughput (sequences per GPU-hour) for k = 1, 2, 4, 8 at once.

    python bench/gpu_share.py --k 1 2 4 8 --num-frames 24 --device cuda --out-dir $OUT [-- extra vhap track flags]

One synthetic 16-view NeRSemble-like sequence (802×550, DS4) is generated once; for each k, k ``vhap track``
worker processes (bench/track_worker.py) start together on it, each with its own output folder, and the wall
time until the last one exits gives the throughput ``k / wall``. GPU utilisation is sampled by ``nvidia-smi``.

Projection to a whole sequence: each worker's per-stage seconds are split into stages whose work grows with the
number of frames (sequential and global tracking, evaluations: scaled by ``frames / num_frames``) and the rest
(initialisation on the first frame, set-up, outputs: constant), giving the wall time of one
``--project-frames``-frame sequence when k run at once, and GPU-seconds per sequence = that / k.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.gpu_monitor import GpuMonitor, plot_timeline  # noqa: E402
from bench.run import NERSEMBLE_V2_SEQUENCES, hardware_info  # noqa: E402

#: stages whose cost grows with the number of frames (the rest run on the first frame or once per run)
PER_FRAME_STAGES = ("rgb_sequential_tracking", "rgb_global_tracking", "evaluation", "final_evaluation", "lmk_prepass")


def sequence_dir(args) -> tuple[Path, str, Path]:
    """(dataset root, sequence tag, sequence folder) of the synthetic sequence these flags describe."""
    tag = f"share_16view_{args.image_size[0]}x{args.image_size[1]}_t{args.num_frames}_s{args.seed}"
    root = args.data_dir / "sequences_multiview"
    return root, tag, root / "999" / "sequences" / tag


def generate(args, landmarks: Literal["projected", "detected"] = "projected") -> tuple[Path, str, str]:
    """Generate the sequence once (kept if it exists); returns (root, tag, landmark detector name to track).

    ``landmarks``: ``projected`` (ground truth + pixel noise) or ``detected`` (the project's detector run on the
    rendered frames: see bench/detect_synth_landmarks.py). With ``--landmarks-from DIR`` the ``<serial>.npz``
    files of DIR (detected elsewhere on this same sequence) are copied into ``landmark2d/<DIR name>/`` and
    tracked instead.
    """
    import numpy as np

    from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth

    root, tag, seq_dir = sequence_dir(args)
    if not (seq_dir / "ground_truth" / "meta.json").is_file():
        generate_sequence(
            SynthConfig(
                output=root,
                rig="multiview",
                sequence=tag,
                subject="999",
                seed=args.seed,
                num_frames=args.num_frames,
                image_size=tuple(args.image_size),
                num_cameras=16,
                device=args.device,
                backend="auto",
                landmarks=landmarks,
            )
        )
    detector = load_ground_truth(seq_dir)["meta"]["landmark_detector"]
    if args.landmarks_from is not None:
        files = sorted(args.landmarks_from.glob("*.npz"))
        if not files:
            sys.exit(f"{args.landmarks_from}: no landmark files (<serial>.npz); see bench/detect_synth_landmarks.py")
        detector = args.landmarks_from.name
        dest = seq_dir / "landmark2d" / detector
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            with np.load(f) as z:
                n = len(z["face_landmark_2d"])
            if n != args.num_frames:
                sys.exit(f"{f}: landmarks of {n} frames, the sequence has {args.num_frames}")
            (dest / f.name).write_bytes(f.read_bytes())
    return root, tag, detector


def add_sequence_args(ap: argparse.ArgumentParser, num_frames: int) -> None:
    """The flags :func:`generate` and :func:`start_worker` read (shared by the scripts that track this sequence)."""
    ap.add_argument("--num-frames", type=int, default=num_frames)
    ap.add_argument("--image-size", type=int, nargs=2, default=[802, 550])
    ap.add_argument("--preset", default="nersemble")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=Path("output/bench_data"))
    ap.add_argument("--out-dir", type=Path, default=Path("bench/results"))
    ap.add_argument(
        "--landmarks-from",
        type=Path,
        default=None,
        help="folder <detector>/ of <serial>.npz landmarks detected on this sequence's frames "
        "(bench/detect_synth_landmarks.py); tracked instead of the synthetic ones",
    )


def start_worker(args, root: Path, tag: str, detector: str, out: Path, extra: list[str]):
    """Start ``vhap track`` on the generated sequence in a bench/track_worker.py process writing ``out``; its log
    and worker record go beside ``out`` (``<out>.log``, ``<out>.worker.json``). Returns (process, open log,
    worker-record path, vhap track argv)."""
    argv = [
        "--preset", args.preset,
        "--data.root", str(root), "--data.subject", "999", "--data.sequence", tag,
        "--data.landmark-detector", detector,
        "--exp.output-folder", str(out), "--exp.device", args.device, "--exp.overwrite",
        "--log.no-progress", *extra,
    ]  # fmt: skip
    info = out.parent / f"{out.name}.worker.json"
    info.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "w")  # noqa: SIM115 (the caller closes it)
    cmd = [sys.executable, str(REPO / "bench" / "track_worker.py"), str(info), *argv]
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT), log, info, argv


def run_k(args, k: int, root: Path, tag: str, detector: str, extra: list[str]) -> dict:
    runs = args.data_dir / "share_runs" / f"k{k}"
    procs = []
    argvs = []
    with GpuMonitor(interval_ms=250) as mon:
        mon.mark(f"k={k}")
        t0 = time.perf_counter()
        for i in range(k):
            out = runs / f"p{i}"
            proc, log, info, argv = start_worker(args, root, tag, detector, out, extra)
            argvs.append(argv)
            procs.append((proc, log, info, out))
        rcs = []
        for p, log, _, _ in procs:
            rcs.append(p.wait())
            log.close()
        wall = time.perf_counter() - t0
    workers = []
    for (_, _, info, out), rc in zip(procs, rcs, strict=True):
        w = json.loads(info.read_text()) if info.is_file() else {}
        m = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
        stages = {n: s.get("seconds", 0.0) for n, s in m.get("timing", {}).get("stages", {}).items()}
        ms = {n: s.get("ms_per_step") for n, s in m.get("timing", {}).get("stages", {}).items()}
        steps = {n: s.get("steps") for n, s in m.get("timing", {}).get("stages", {}).items()}
        workers.append(
            {
                "returncode": rc,
                "wall_s": w.get("wall_s"),
                "cuda_max_allocated_mib": w.get("cuda_max_allocated_mib"),
                "stage_seconds": stages,
                "stage_ms_per_step": ms,
                "stage_steps": steps,
                "nme_percent": m.get("totals", {}).get("nme_percent"),
            }
        )
    ok = all(rc == 0 for rc in rcs)
    gpu = mon.summary()
    res = {
        "k": k,
        "ok": ok,
        "wall_s": wall,
        "sequences_per_gpu_hour": (k / wall * 3600.0) if ok else None,
        "gpu_mean_util_percent": gpu["mean_util_percent"],
        "gpu_peak_mem_used_mib": gpu["peak_mem_used_mib"],
        "workers": workers,
        "command_first_worker": "vhap track " + shlex.join(argvs[0]),
        "gpu_timeline": gpu,
    }
    if ok:
        res["projection"] = project(workers, k, args.num_frames, args.project_frames)
    return res


def project(workers: list[dict], k: int, frames: int, to_frames: int) -> dict:
    """Wall time of one ``to_frames``-frame sequence when k run at once, from the measured per-stage seconds."""
    scale = to_frames / frames
    walls = []
    for w in workers:
        per_frame = sum(s for n, s in w["stage_seconds"].items() if n in PER_FRAME_STAGES)
        fixed = w["wall_s"] - per_frame
        walls.append(fixed + per_frame * scale)
    wall = max(walls)
    gpu_s = wall / k
    return {
        "frames": to_frames,
        "wall_s_per_batch_of_k": wall,
        "gpu_seconds_per_sequence": gpu_s,
        "gpu_hours_nersemble_v2": gpu_s * NERSEMBLE_V2_SEQUENCES / 3600.0,
        "sequences_per_gpu_hour": 3600.0 / gpu_s,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="bench/gpu_share.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="processes at once on the GPU")
    add_sequence_args(ap, num_frames=24)
    ap.add_argument("--project-frames", type=int, default=150, help="frames of the sequence the projection is for")
    ap.add_argument("--name", default="gpu_share_16view")
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip further k once this much time has passed")
    args = ap.parse_args(own)
    if min(args.k) < 1 or args.num_frames < 1 or args.project_frames < 1:
        print("gpu_share: error: --k, --num-frames and --project-frames must be >= 1", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    root, tag, detector = generate(args)
    results = []
    for k in args.k:
        spent = time.perf_counter() - t_start
        if results and spent + 1.5 * results[-1]["wall_s"] * k / results[-1]["k"] > args.budget_s:
            print(f"gpu_share: k={k} skipped (budget)", flush=True)
            continue
        r = run_k(args, k, root, tag, detector, extra)
        results.append(r)
        p = r.get("projection") or {}
        print(
            f"k={k}: wall {r['wall_s']:.1f} s, ok={r['ok']}, {r['sequences_per_gpu_hour'] or 0:.1f} seq/GPU-h at "
            f"{args.num_frames} frames; projected {p.get('gpu_seconds_per_sequence', float('nan')):.1f} GPU-s per "
            f"{args.project_frames}-frame sequence, util {r['gpu_mean_util_percent']}",
            flush=True,
        )
    best = min((r for r in results if r["ok"]), key=lambda r: r["projection"]["gpu_seconds_per_sequence"], default=None)
    out = {
        "name": args.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware_info(args.device),
        "bench_command": "python bench/gpu_share.py " + shlex.join(argv),
        "num_frames": args.num_frames,
        "image_size": args.image_size,
        "preset": args.preset,
        "results": results,
        "best_k": best["k"] if best else None,
        "best_projection": best["projection"] if best else None,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    merged = {"samples": [], "phases": {}}
    offset = 0.0
    for r in results:
        g = r["gpu_timeline"]
        merged["samples"] += [[t + offset, u, m] for t, u, m in g["samples"]]
        for n, ph in g["phases"].items():
            merged["phases"][n] = {**ph, "start_s": ph["start_s"] + offset}
        offset += r["wall_s"] + 1.0
    plot_timeline(merged, args.out_dir / "plots" / f"{args.name}_timeline.png", f"{args.name}: k processes on one GPU")
    print(f"wrote {path}")
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
