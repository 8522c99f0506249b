"""Dataset-scale cost of the workflow: dry run, SLURM submissions and per-job parse over a NeRSemble-sized tree.

Builds a NeRSemble v2 folder tree of empty placeholder videos (default 400 subjects x 27 sequences =
10,800 sequences x 16 cameras; no real video is needed: nothing is run) and measures, for the
workflow of ``--repo`` (default: this checkout; pass an older checkout for a before/after):

- ``dry_run``: ``snakemake -n --quiet rules`` over the whole dataset: wall and CPU seconds, peak memory
  (max RSS), the size of what it prints, and the same for a chain of trivial rules with as many jobs
  in the same run (snakemake's own floor on this machine at this moment);
- ``submissions``: how many SLURM jobs the dataset becomes under ``profiles/slurm`` (a dry run with
  ``--executor slurm`` prints one "Group job" per group submission and one ``rule X:`` per ungrouped job;
  local rules are not submitted). The plugin's array submission is not used by the profile (see
  docs/workflow.md), so every submission is one ``sbatch`` call;
- ``per_job_parse``: what one SLURM job pays before it runs its command: the Snakefile parsed with
  ``--target-jobs`` as the job step does it, wall/CPU seconds and the directory listings it makes
  (``os.scandir``/``os.listdir`` counted with an audit hook).

Writes bench/results/dag_scale.json (or --out). Target (issue 18): the dry run <= 60 s and <= 1 GB.

    python bench/dag_scale.py                                 # full size, this checkout
    python bench/dag_scale.py --subjects 20                   # quick
    python bench/dag_scale.py --repo /tmp/old --out before.json
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
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMERAS = [f"2222000{i:02d}" for i in range(16)]
LOCAL_RULES = {"all", "demo", "qa", "dashboard"}

# Counts directory listings of a Python process (and writes them at exit) without touching its code.
AUDIT_SITECUSTOMIZE = textwrap.dedent(
    """
    import atexit, os, sys
    _counts = {"os.scandir": 0, "os.listdir": 0}
    def _hook(event, args):
        if event in _counts:
            _counts[event] += 1
    sys.addaudithook(_hook)
    atexit.register(lambda: open(os.environ["DAG_SCALE_AUDIT_OUT"], "w").write(repr(_counts)))
    """
)


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


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd`` under /usr/bin/time; (result, wall s, CPU s = user + system, max RSS MB, output MB)."""
    rss_file = cwd / ".maxrss"
    full = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(full, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = proc.stdout + proc.stderr
    m = re.search(r"^total\s+(\d+)", out, re.M)
    return proc, {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "max_rss_mb": round(int(rss_file.read_text().split()[-1]) / 1024),
        "printed_mb": round(len(out.encode()) / 1e6, 2),
        "jobs": int(m.group(1)) if m else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def snakemake_cmd(repo: Path, workdir: Path, config: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(config), "--cores", "1", *extra,
    ]  # fmt: skip


def dry_run(repo: Path, workdir: Path, config: Path) -> dict:
    return timed(snakemake_cmd(repo, workdir, config, "-n", "--quiet", "rules"), workdir)[1]


def submissions(repo: Path, workdir: Path, config: Path) -> dict:
    """SLURM submissions of the whole dataset under profiles/slurm, counted from a dry run's job listing."""
    cmd = snakemake_cmd(repo, workdir, config, "-n", "--profile", str(repo / "profiles" / "slurm"))
    cmd += ["--executor", "slurm", "--jobs", "1000"]
    proc, stats = timed(cmd, workdir)
    out = proc.stdout + proc.stderr
    groups = re.findall(r"^\[[^\]]*\] Group job (\S+)", out, re.M)
    # top level (not inside a group); the Snakefile's local rules (all, demo, qa) are never submitted
    single = [r for r in re.findall(r"^rule (\w+):", out, re.M) if r not in LOCAL_RULES]
    by_kind: dict[str, int] = {}
    for g in groups:
        by_kind[f"group {g}"] = by_kind.get(f"group {g}", 0) + 1
    for r in single:
        by_kind[f"rule {r}"] = by_kind.get(f"rule {r}", 0) + 1
    return {"sbatch_calls": len(groups) + len(single), "by_kind": dict(sorted(by_kind.items())), "dry_run": stats}


def per_job_parse(repo: Path, workdir: Path, config: Path, subject: str, seq: str) -> dict:
    """One SLURM job's Snakefile parse: what the job step runs before the job's command."""
    hook_dir = workdir / "audit"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(AUDIT_SITECUSTOMIZE)
    counts_file = workdir / "audit_counts.txt"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook_dir), env.get("PYTHONPATH", "")) if p)
    env["DAG_SCALE_AUDIT_OUT"] = str(counts_file)
    target = f"preprocess:ds=nersemble,subject={subject},seq={seq}"
    cmd = snakemake_cmd(repo, workdir, config, "-n", "--quiet", "all", "--target-jobs", target)
    cmd += ["--allowed-rules", "preprocess", "--mode", "remote"]
    _, stats = timed(cmd, workdir, env)
    counts = eval(counts_file.read_text())  # our own repr of a dict of ints
    stats["directory_listings"] = counts["os.scandir"] + counts["os.listdir"]
    return stats


def baseline(workdir: Path, n_chains: int) -> dict:
    (workdir / "Snakefile").write_text(BASELINE_SNAKEFILE)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "rules", "--config", f"count={n_chains}"]
    return timed(cmd, workdir)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=400)
    ap.add_argument("--sequences", type=int, default=27)
    ap.add_argument("--repo", type=Path, default=REPO, help="the workflow checkout to measure (default: this one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dag_scale.json")
    ap.add_argument("--tmp", type=Path, default=None, help="where to build the synthetic tree (default: a temp dir)")
    ap.add_argument("--parts", default="dry_run,submissions,per_job_parse,baseline")
    args = ap.parse_args()
    parts = args.parts.split(",")
    report: dict = {
        "what": "workflow cost over a synthetic NeRSemble v2 tree (empty cam_*.mp4 placeholders)",
        "repo": str(args.repo),
        "commit": subprocess.run(
            ["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or None,
        "subjects": args.subjects,
    }
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        root = tmp / "nersemble_v2"
        t0 = time.perf_counter()
        n_seq, _ = make_dataset(root, args.subjects, args.sequences)
        report.update(
            sequences=n_seq, cameras_per_sequence=len(CAMERAS), make_tree_seconds=round(time.perf_counter() - t0, 1)
        )
        cfg = tmp / "config.yaml"
        cfg.write_text(json.dumps({"datasets": {"nersemble": {"layout": "nersemble_v2", "root": str(root)}},
                                   "results": str(tmp / "results")}))  # fmt: skip
        if "dry_run" in parts:
            report["dry_run"] = r = dry_run(args.repo, tmp, cfg)
            print(f"dry run    {r}", flush=True)
        if "submissions" in parts:
            report["submissions"] = r = submissions(args.repo, tmp, cfg)
            print(f"submissions {r['sbatch_calls']} {r['by_kind']}", flush=True)
        if "per_job_parse" in parts:
            report["per_job_parse"] = r = per_job_parse(args.repo, tmp, cfg, "000", "SEQ-00")
            print(f"per job    {r}", flush=True)
        if "baseline" in parts:
            base_dir = tmp / "baseline"
            base_dir.mkdir()
            jobs = report.get("dry_run", {}).get("jobs") or 5 * n_seq
            report["baseline_trivial_chain"] = r = baseline(base_dir, jobs // 6)
            report["baseline_note"] = (
                "snakemake -n over chains of 6 trivial rules with about as many jobs, in the same run: snakemake's "
                "own per-job cost on this machine at this moment, the floor for any workflow of this size"
            )
            print(f"baseline   {r}", flush=True)
    report["limits"] = {"wall_seconds": 60, "max_rss_mb": 1024}
    if "dry_run" in report:
        report["ok_wall"] = report["dry_run"]["wall_seconds"] <= 60
        report["ok_memory"] = report["dry_run"]["max_rss_mb"] <= 1024
    report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    report["snakemake"] = subprocess.run(
        [sys.executable, "-m", "snakemake", "--version"], capture_output=True, text=True
    ).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if report.get("ok_wall", True) and report.get("ok_memory", True) else 1


if __name__ == "__main__":
    sys.exit(main())
