"""Tracking schedules side by side on one long 16-view sequence: accuracy after every evaluated epoch vs work.

    python bench/schedule_sweep.py --num-frames 150 --device cuda --out-dir $OUT \\
        --variant base= --variant short="--pipeline.rgb-sequential-tracking.num-steps 25" [-- flags for every variant]
    python bench/schedule_sweep.py --pick $OUT/schedule_sweep_16view.json 0.5   # → "NAME FLAGS" to adopt

One synthetic 16-view NeRSemble-like sequence (802×550, DS4; the one bench/gpu_share.py uses) is generated once;
every variant (``NAME=FLAGS``: extra ``vhap track`` flags on top of ``--preset``) is tracked on it in its own
worker process, all at once on one GPU (``--parallel`` of them at a time), each evaluating after the global
epochs of ``--eval-epochs``. Then every ``tracked_flame_params_<e>.npz`` of every variant is scored against the
ground truth (vertex error only; no renders), so one call gives the face error as a function of the global epochs
and of the sequential steps.

Cost is reported as photometric work — steps of each stage × 16 views — and as the seconds each stage took
while the variants shared the GPU (not a clean per-variant time: measure the chosen schedule alone and shared
with bench/gpu_share.py).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.gpu_share import add_sequence_args, generate, start_worker  # noqa: E402
from bench.run import hardware_info  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=FLAGS`` → (NAME, shlex-split FLAGS); FLAGS may be empty (the preset as it is)."""
    name, sep, flags = text.partition("=")
    if not sep or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=FLAGS with NAME of letters/digits/_-")
    return name, shlex.split(flags)


def launch(args, name: str, flags: list[str], root: Path, tag: str, detector: str) -> tuple:
    out = args.data_dir / "sweep_runs" / args.name / name
    extra = [
        *([] if args.media else ["--exp.no-write-media"]),
        "--pipeline.eval-epochs", *[str(e) for e in args.eval_epochs], *args.common, *flags,
    ]  # fmt: skip
    proc, log, info, argv = start_worker(args, root, tag, detector, out, extra)
    return proc, log, info, out, argv


def score_run(out: Path, seq_dir: Path, device: str) -> list[dict]:
    """Face/head vertex error of every ``tracked_flame_params_<e>.npz`` in the run folder, by epoch."""
    from vhap.synth.evaluate import evaluate_synthetic_run

    rows = []
    files = sorted(out.glob("tracked_flame_params_*.npz"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    for f in files:
        acc = evaluate_synthetic_run(out, seq_dir, params_file=f.name, render=False, device=device)
        b = acc["breakdown"]
        rows.append(
            {
                "epoch": int(f.stem.rsplit("_", 1)[1]),
                "face_mm": acc["vertex_error"]["face"]["mean"],
                "face_p95_mm": acc["vertex_error"]["face"]["p95"],
                "head_mm": acc["vertex_error"]["head"]["mean"],
                "face_similarity_mm": acc["vertex_error_similarity"]["face"]["mean"],
                "landmark_nme": acc["landmark_nme"]["mean"],
                "regions": b["regions"],
                "expression_face_mm": b["expression"]["face"],
                "skull_offset_mm": b["head_pose"]["skull_centroid_offset_mm"]["mean"],
                "rotation_deg": b["head_pose"]["rotation_deg"]["mean"],
                "nonrigid_face_mm": b["head_pose"]["nonrigid_face_mean"],
                "face_normal_offset_mm": b["face_normal_offset_mm"],
            }
        )
    return rows


def pick_variant(record: dict, max_face_mm: float) -> str | None:
    """The variant to adopt from a sweep record: the one that spent the fewest stage-seconds among those whose last
    evaluated epoch scores ≤ ``max_face_mm`` of mean face error, else the most accurate one (None if none
    finished)."""
    scored = {n: v for n, v in record["variants"].items() if v.get("returncode") == 0 and v.get("by_epoch")}
    if not scored:
        return None
    face = {n: v["by_epoch"][-1]["face_mm"] for n, v in scored.items()}
    cost = {n: sum(s or 0.0 for s in v["stage_seconds"].values()) for n, v in scored.items()}
    good = [n for n in scored if face[n] <= max_face_mm]
    return min(good, key=lambda n: cost[n]) if good else min(scored, key=lambda n: face[n])


def save(args, argv: list[str], gen_s: float, track_wall: float, done: dict) -> None:
    """The record so far (rewritten after every variant: a sweep cut short still leaves what it measured)."""
    out = {
        "name": args.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware_info(args.device),
        "bench_command": "python bench/schedule_sweep.py " + shlex.join(argv),
        "num_frames": args.num_frames,
        "image_size": args.image_size,
        "preset": args.preset,
        "generation_s": gen_s,
        "tracking_wall_s": track_wall,
        "parallel": args.parallel,
        "variants": done,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--pick"]:  # --pick RECORD.json MAX_FACE_MM: print the chosen variant's name and flags
        record = json.loads(Path(argv[1]).read_text())
        name = pick_variant(record, float(argv[2]))
        if name is None:
            print("schedule_sweep: error: no variant finished", file=sys.stderr)
            return 2
        flags = shlex.split(record["variants"][name]["flags"])
        print(name, shlex.join(flags))
        return 0
    own, common = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="bench/schedule_sweep.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", type=parse_variant, action="append", required=True, help="NAME=FLAGS (repeat)")
    add_sequence_args(ap, num_frames=150)
    ap.add_argument("--eval-epochs", type=int, nargs="+", default=[0, 5, 10, 15, 20, 30])
    ap.add_argument("--parallel", type=int, default=8, help="variants tracked at once")
    ap.add_argument("--media", action="store_true", help="let the runs write overlays and meshes (default off)")
    ap.add_argument("--name", default="schedule_sweep_16view")
    ap.add_argument("--budget-s", type=float, default=1e9, help="kill variants still tracking after this long")
    args = ap.parse_args(own)
    args.common = common
    names = [n for n, _ in args.variant]
    if len(set(names)) != len(names) or args.num_frames < 1 or args.parallel < 1:
        print("schedule_sweep: error: variant names must differ; --num-frames, --parallel >= 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    root, tag, detector = generate(args)
    seq_dir = root / "999" / "sequences" / tag
    gen_s = time.perf_counter() - t0
    print(f"schedule_sweep: sequence ready ({gen_s:.0f} s)", flush=True)

    pending = list(args.variant)
    running: list[tuple] = []
    done: dict[str, dict] = {}
    t1 = time.perf_counter()
    while pending or running:
        over = time.perf_counter() - t0 > args.budget_s
        while pending and len(running) < args.parallel and not over:
            name, flags = pending.pop(0)
            running.append((name, time.perf_counter(), *launch(args, name, flags, root, tag, detector)))
        if over:
            for name, *_ in pending:
                print(f"schedule_sweep: {name} not started (budget)", flush=True)
            pending = []
        for item in list(running):
            name, started, proc, log, info, out, targv = item
            if over and proc.poll() is None:
                proc.kill()  # its evaluated epochs are scored below all the same
                print(f"schedule_sweep: {name} killed at the budget", flush=True)
            if over:
                proc.wait()
            elif proc.poll() is None:
                continue
            log.close()
            running.remove(item)
            w = json.loads(info.read_text()) if info.is_file() else {}
            m = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
            st = m.get("timing", {}).get("stages", {})
            rec = done[name] = {
                "returncode": proc.returncode,
                "flags": shlex.join(dict(args.variant)[name]),
                "command": "vhap track " + shlex.join(targv),
                "wall_s": w.get("wall_s", time.perf_counter() - started),
                "started_s": started - t1,
                "stage_seconds": {n: s.get("seconds") for n, s in st.items()},
                "stage_steps": {n: s.get("steps") for n, s in st.items()},
                "cuda_max_allocated_mib": w.get("cuda_max_allocated_mib"),
                "run_dir": str(out),
            }
            print(f"schedule_sweep: {name} rc={proc.returncode} after {rec['wall_s']:.0f} s", flush=True)
            # scored while the others still track (CPU + a little GPU)
            rec["by_epoch"] = score_run(out, seq_dir, args.device)
            if rec["by_epoch"]:
                last = rec["by_epoch"][-1]
                print(
                    f"{name}: " + ", ".join(f"e{r['epoch']} {r['face_mm']:.3f}" for r in rec["by_epoch"])
                    + f" mm face; last: skull offset {last['skull_offset_mm']:.2f} mm, normal offset "
                    f"{last['face_normal_offset_mm']['mean']:+.3f} mm",
                    flush=True,
                )  # fmt: skip
            save(args, argv, gen_s, time.perf_counter() - t1, done)
        time.sleep(0.5)

    save(args, argv, gen_s, time.perf_counter() - t1, done)
    return 0 if all(r["returncode"] == 0 for r in done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
