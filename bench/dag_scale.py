"""Dry-run scale of the workflow: `snakemake -n` over a synthetic NeRSemble-v2-sized dataset.

Builds a NeRSemble v2 folder tree of empty placeholder videos (default 425 subjects x 24 sequences
= 10,200 sequences x 16 cameras = 163,200 files; no real video is needed for a dry run) plus the
same dataset as a TSV listing, then times `snakemake -n` over each:

- ``scan``: the workflow discovers the sequences with ``vhap.data.discover`` (one directory listing
  per subject and sequence) and every preprocess job has its 16 videos as inputs;
- ``listing``: the sequences come from ``datasets.<name>.listing`` (no scan; one folder input per job).

and, for reference, a chain of trivial rules with as many jobs (snakemake's own floor). Wall and
CPU seconds are both recorded (a shared machine's wall time depends on its load, also recorded).
Writes bench/results/dag_scale.json (or --out). Requirement (issue 8): each dry run <= 60 s.

    python bench/dag_scale.py                 # full size
    python bench/dag_scale.py --subjects 20   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMERAS = [f"2222000{i:02d}" for i in range(16)]


def make_dataset(root: Path, n_subjects: int, n_sequences: int) -> tuple[int, Path]:
    """NeRSemble v2 layout of empty cam_<serial>.mp4 files, and the equivalent listing TSV."""
    listing = root.parent / "listing.tsv"
    rows = []
    for s in range(n_subjects):
        subject = f"{s:03d}"
        calib = root / subject / "calibration"
        calib.mkdir(parents=True, exist_ok=True)
        (calib / "camera_params.json").touch()
        for q in range(n_sequences):
            seq = f"SEQ-{q:02d}"
            folder = root / subject / "sequences" / seq
            folder.mkdir(parents=True, exist_ok=True)
            for cam in CAMERAS:
                (folder / f"cam_{cam}.mp4").touch()
            rows.append(f"{subject}\t{seq}\t300")
    listing.write_text("\n".join(rows) + "\n")
    return len(rows), listing


# The floor: snakemake's own per-job cost, measured on a chain of trivial rules with as many jobs.
BASELINE_SNAKEFILE = (
    """
N = int(config["count"])
rule all:
    input: expand("out/{s}.f", s=range(N))
"""
    + "".join(
        f"""
rule {b}:
    input: "out/{{s}}.{a}"
    output: "out/{{s}}.{b}"
    shell: "touch {{output}}"
"""
        for a, b in zip("abcde", "bcdef", strict=True)
    )
    + """
rule a:
    output: "out/{s}.a"
    shell: "touch {output}"
"""
)


def timed(cmd: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; return (result, wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, wall, cpu


def summarise(proc: subprocess.CompletedProcess, wall: float, cpu: float, quiet: bool) -> dict:
    out = proc.stdout + proc.stderr
    m = re.search(r"^total\s+(\d+)", out, re.M)
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "jobs": int(m.group(1)) if m else None,
        "quiet": quiet,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def dry_run(workdir: Path, config: Path, quiet: bool) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        "1",
    ]
    if quiet:
        cmd += ["--quiet", "rules"]
    return summarise(*timed(cmd, workdir), quiet)


def startup(workdir: Path) -> dict:
    """A one-job dry run: snakemake's fixed cost (imports, plugin discovery) included in every number above.

    With a SLURM client installed but no controller answering, the SLURM executor plugin's import waits
    for ``scontrol show config`` to time out (~9 s of wall time, no CPU) in every snakemake process.
    """
    (workdir / "Snakefile").write_text(BASELINE_SNAKEFILE)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "rules", "--config", "count=1"]
    return summarise(*timed(cmd, workdir), True)


def baseline(workdir: Path, n_chains: int) -> dict:
    (workdir / "Snakefile").write_text(BASELINE_SNAKEFILE)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "rules", "--config", f"count={n_chains}"]
    return summarise(*timed(cmd, workdir), True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=425)
    ap.add_argument("--sequences", type=int, default=24)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dag_scale.json")
    ap.add_argument("--tmp", type=Path, default=None, help="where to build the synthetic tree (default: a temp dir)")
    ap.add_argument("--modes", default="scan,listing", help="which dry runs: scan, listing or both")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        root = tmp / "nersemble_v2"
        t0 = time.perf_counter()
        n_seq, listing = make_dataset(root, args.subjects, args.sequences)
        make_s = time.perf_counter() - t0
        results = {}
        for mode in args.modes.split(","):
            cfg = tmp / f"config_{mode}.yaml"
            ds = {"layout": "nersemble_v2", "root": str(root)}
            if mode == "listing":
                ds["listing"] = str(listing)
            cfg.write_text(json.dumps({"datasets": {"nersemble": ds}, "results": str(tmp / "results")}))
            for quiet in (True, False) if mode == "scan" else (True,):
                r = dry_run(tmp, cfg, quiet)
                results[f"{mode}{'_quiet' if quiet else ''}"] = r
                print(
                    f"{mode:8s} quiet={quiet!s:5s} {r['wall_seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s CPU"
                    f"  jobs={r['jobs']}  load={r['load_average_1min']}",
                    flush=True,
                )
        base_dir = tmp / "baseline"
        base_dir.mkdir()
        first = startup(base_dir)
        print(f"startup  {first['wall_seconds']:7.1f} s wall {first['cpu_seconds']:7.1f} s CPU  jobs={first['jobs']}")
        # chains of 6 trivial jobs, as many jobs as the real DAG: 5 per sequence + 2 per subject
        base = baseline(base_dir, (5 * n_seq + 2 * args.subjects) // 6)
        print(f"baseline {base['wall_seconds']:7.1f} s wall {base['cpu_seconds']:7.1f} s CPU  jobs={base['jobs']}")

    report = {
        "what": "snakemake -n over a synthetic NeRSemble v2 tree (empty cam_*.mp4 placeholders)",
        "subjects": args.subjects,
        "sequences": n_seq,
        "cameras_per_sequence": len(CAMERAS),
        "video_files": n_seq * len(CAMERAS),
        "make_tree_seconds": round(make_s, 1),
        "dry_runs": results,
        "startup_one_job": first,
        "startup_note": "snakemake -n of a 1-job workflow: the fixed cost of every snakemake process (imports, "
        "executor plugin discovery; with a SLURM client but no controller, ~9 s waiting for scontrol)",
        "baseline_trivial_chain": base,
        "baseline_note": "snakemake -n over a chain of 6 trivial rules per item with about as many jobs: "
        "snakemake's own per-job cost, the floor for any workflow of this size",
        "limit_seconds": 60,
        "ok_wall": all(r["wall_seconds"] <= 60 for r in results.values()),
        "ok_cpu": all(r["cpu_seconds"] <= 60 for r in results.values()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "snakemake": subprocess.run(
            [sys.executable, "-m", "snakemake", "--version"], capture_output=True, text=True
        ).stdout.strip(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if report["ok_wall"] else 1


if __name__ == "__main__":
    sys.exit(main())
