"""Landmarks of fewer views: track the synthetic 16-view set with the 2D landmarks of all cameras and of subsets.

    python bench/landmark_views.py --views all 6,7,8,9 [bench/run.py flags] [-- vhap track flags]

(``--preset nersemble`` unless bench/run.py flags name another.)

Every camera's frames are fitted in each run; a subset (camera indices in calibration order, 8 = frontal on the
synthetic arc, ``all`` = every camera) only limits which cameras' landmarks the fit uses
(``--data.landmark-cameras``), i.e. which views the landmark step would have to run on. Each view set is one
``bench/run.py --set synthetic_16view`` run on the same generated sequence (its result in
``<out-dir>/landmark_views/``); the summary ``<out-dir>/<name>.json`` lists face error (mm), landmark NME
against the ground truth in *all* views, masked PSNR and the wall time per view set, with the exact commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.run import hardware_info  # noqa: E402
from vhap.synth.rigs import nersemble_serials  # noqa: E402

#: what the summary keeps of each run's ``mean``
KEYS = {
    "face_error_mm": "accuracy.vertex_error.face.mean",
    "face_error_p95_mm": "accuracy.vertex_error.face.p95",
    "head_error_mm": "accuracy.vertex_error.head.mean",
    "nme_percent": "accuracy.landmark_nme.mean",
    "masked_psnr_db": "accuracy.masked_psnr.mean",
    "wall_s": "timing.wall_s",
    "tracking_s": "timing.tracking_s",
}


def parse_views(text: str, num_cameras: int) -> list[int] | None:
    """``all`` -> None; ``6,7,8,9`` -> camera indices (checked against ``num_cameras``)."""
    if text == "all":
        return None
    idx = [int(t) for t in text.split(",") if t.strip()]
    if not idx or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= num_cameras:
        raise ValueError(f"--views {text}: give distinct camera indices 0..{num_cameras - 1}, or 'all'")
    return sorted(idx)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, track = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="bench/landmark_views.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", nargs="+", default=["all", "6,7,8,9"], help="view sets: 'all' or indices a,b,c")
    ap.add_argument("--num-cameras", type=int, default=16)
    ap.add_argument("--name", default="landmark_views_cpu")
    ap.add_argument("--out-dir", type=Path, default=Path("bench/results"))
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip further view sets once this much time passed")
    args, run_flags = ap.parse_known_args(own)
    if "--preset" not in run_flags:
        run_flags = ["--preset", "nersemble", *run_flags]
    serials = nersemble_serials(args.num_cameras)
    try:
        sets = [(v, parse_views(v, args.num_cameras)) for v in args.views]
    except ValueError as e:
        print(f"landmark_views: error: {e}", file=sys.stderr)
        return 2
    # each view set's own bench/run.py result goes one folder down: bench/report.py tabulates only the summary
    runs_dir = args.out_dir / "landmark_views"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for text, idx in sets:
        spent = time.perf_counter() - t0
        if rows and spent + 1.2 * max(r.get("wall_s") or 0 for r in rows) > args.budget_s:
            print(f"landmark_views: {text} skipped (budget)", flush=True)
            continue
        tag = "all" if idx is None else "v" + "_".join(map(str, idx))
        name = f"{args.name}_{tag}"
        lmk = [] if idx is None else ["--data.landmark-cameras", *[serials[i] for i in idx]]
        cmd = [
            sys.executable, str(REPO / "bench" / "run.py"), "--set", "synthetic_16view",
            "--num-cameras", str(args.num_cameras), "--out-dir", str(runs_dir), "--name", name,
            *run_flags, "--", *track, *lmk,
        ]  # fmt: skip
        print("+ " + shlex.join(cmd[1:]), flush=True)
        rc = subprocess.run(cmd, cwd=REPO, check=False).returncode
        row = {"views": text, "camera_indices": idx, "landmark_cameras": len(idx or serials), "returncode": rc}
        res = runs_dir / f"{name}.json"
        if rc == 0 and res.is_file():
            mean = json.loads(res.read_text())["mean"]
            row.update({k: mean.get(v) for k, v in KEYS.items()})
        row["command"] = "python " + shlex.join([str(Path(c).relative_to(REPO)) if c.startswith(str(REPO)) else c
                                                  for c in cmd[1:]])  # fmt: skip
        rows.append(row)
        print(f"landmark_views: {text}: {json.dumps({k: row.get(k) for k in KEYS})}", flush=True)
    out = {
        "name": args.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware_info("cuda" if any("cuda" in f for f in run_flags) else "cpu"),
        "bench_command": "python bench/landmark_views.py " + shlex.join(argv),
        "rows": rows,
    }
    path = args.out_dir / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {path}")
    return 0 if rows and all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
