"""The Snakemake workflow (Snakefile, rules/, config/): dry runs, real runs on tiny fixtures, provenance
reruns, failure handling, the HTML report and a run through a real SLURM cluster.

The heavy tests run the real `vhap` subcommands on two 3-frame clips cut from the carphone video
with a tracking schedule of a few steps (the `tiny` config below), so the whole chain takes about a
minute on a 2-core CPU.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
VHAP_CMD = f"{sys.executable} -m vhap.cli"

pytest.importorskip("snakemake")

# A tracking schedule of a few steps per stage (real code paths, tiny cost).
TINY_TRACK = {
    "preset": "demo",
    "config": {
        "model": {"head_model": "open", "tex_resolution": 32},
        "pipeline": {
            "lmk_init_rigid": {"num_steps": 3},
            "lmk_init_all": {"num_steps": 3},
            "rgb_init_texture": {"num_steps": 2},
            "rgb_init_all": {"num_steps": 2},
            "rgb_init_offset": {"num_steps": 2},
            "rgb_sequential_tracking": {"num_steps": 1},
            "rgb_global_tracking": {"num_epochs": 1},
            "lmk_sequential_tracking": {"num_steps": 1},
            "lmk_global_tracking": {"num_epochs": 1},
            "eval_epochs": [],
        },
        "exp": {"batch_size": 3, "device": "cpu"},
    },
}
# Small enough for any test machine / the single-node test cluster.
TINY_RESOURCES = {
    step: {"threads": 1, "mem_mb": 1000, "runtime": 10}
    for step in ("preprocess", "matting", "landmarks", "track", "export", "validate", "combine", "report")
}


def snakemake(workdir: Path, *args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in ``workdir``; killed (whole group) after ``timeout``."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir), *args]
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we started (snakemake and its jobs)
        out, _ = proc.communicate()
        raise AssertionError(f"snakemake timed out after {timeout} s:\n{out[-5000:]}") from None
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{out[-8000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: rule -> count."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def pending_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job of a dry run's listing."""
    jobs, rule = [], None
    for line in output.splitlines():
        m = re.match(r"^\s*(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            jobs.append((rule, {}))
            continue
        m = re.match(r"^\s*wildcards: (.*)$", line)
        if m and jobs:
            jobs[-1] = (jobs[-1][0], dict(kv.split("=", 1) for kv in m.group(1).split(", ")))
    return jobs


def write_config(workdir: Path, cfg: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cut_clip(src: Path, dst: Path, start: int, n: int) -> None:
    """``n`` frames of ``src`` from frame ``start`` re-encoded as H.264 at 25 fps."""
    import av

    with av.open(str(src)) as inp:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(start + n), inp.decode(video=0), strict=False)]
    frames = frames[start:]
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for fr in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")))
        out.mux(stream.encode())


# ---------------------------------------------------------------------------------------------
# dry runs (no video is opened)
# ---------------------------------------------------------------------------------------------


def _placeholder_datasets(root: Path) -> dict:
    """A monocular folder of 2 videos and a NeRSemble v2 tree of 2 subjects x 2 sequences x 3 cameras."""
    mono = root / "mono"
    mono.mkdir(parents=True)
    for name in ("alice", "bob"):
        (mono / f"{name}.mp4").touch()
    v2 = root / "v2"
    for subject in ("074", "104"):
        (v2 / subject / "calibration").mkdir(parents=True)
        for seq in ("EMO-1", "EXP-2"):
            folder = v2 / subject / "sequences" / seq
            folder.mkdir(parents=True)
            for cam in ("220700191", "221501007", "222200036"):
                (folder / f"cam_{cam}.mp4").touch()
        (v2 / subject / "sequences" / "BACKGROUND").mkdir()
    return {
        "mono": {"layout": "monocular", "root": str(mono)},
        "v2": {
            "layout": "nersemble_v2",
            "root": str(v2),
            "combine": {"BOTH": ["EMO-1", "EXP-2"]},
            "steps": {"track": {"preset": "nersemble"}},
        },
    }


def test_dry_run_lists_pending_jobs(tmp_path):
    cfg = write_config(tmp_path, {"datasets": _placeholder_datasets(tmp_path / "data"), "vhap": VHAP_CMD})
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "2").stdout
    # one job per (subject, sequence) per step; validation, unions and reports per subject
    assert job_counts(out) == {
        "preprocess": 6,
        "matting": 6,
        "landmarks": 6,
        "track": 6,
        "export": 6,
        "validate_export": 4,
        "combine": 2,
        "report": 4,
        "all": 1,
    }
    jobs = pending_jobs(out)
    tracks = {(w["ds"], w["subject"], w["seq"]) for r, w in jobs if r == "track"}
    assert tracks == {
        ("mono", "alice", "alice"),
        ("mono", "bob", "bob"),
        ("v2", "074", "EMO-1"),
        ("v2", "074", "EXP-2"),
        ("v2", "104", "EMO-1"),
        ("v2", "104", "EXP-2"),
    }
    # NeRSemble tracking is told its subject and gets the dataset preset; GPU rules ask for a GPU and a
    # runtime that grows with frames x cameras (3 cameras x 300 estimated frames here)
    v2_track = re.search(r"vhap\.cli track --preset nersemble .*--data\.subject 074 --data\.sequence EMO-1", out)
    assert v2_track, out[-3000:]
    track_block = out[out.index("rule track:") :].split("\n\n", 1)[0]
    assert "gpu=1" in track_block
    runtimes = {int(m) for m in re.findall(r"rule track:.*?runtime=(\d+)", out, re.S)}
    assert runtimes == {30 + round(0.05 * 300), 30 + round(0.05 * 900)}
    assert "UNION_BOTH" in out


def test_config_is_validated_against_the_schema(tmp_path):
    cfg = write_config(tmp_path, {"datasets": {"x": {"layout": "nersemble_v3", "root": "."}}})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    assert "nersemble_v3" in res.stdout and "is not one of" in res.stdout
    cfg = write_config(tmp_path, {"resultz": "x"})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0 and "resultz" in res.stdout


def test_preset_is_checked_at_config_time(tmp_path):
    """Only preprocess and track have presets; a preset elsewhere, or an unknown name, fails before any job runs."""
    data = _placeholder_datasets(tmp_path / "data")
    cfg = write_config(tmp_path, {"datasets": {"mono": data["mono"]}, "steps": {"matting": {"preset": "fast"}}})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    assert "steps.matting.preset" in res.stdout and "has no presets" in res.stdout
    mono = dict(data["mono"], steps={"track": {"preset": "nersemb"}})
    cfg = write_config(tmp_path, {"datasets": {"mono": mono}})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    assert "datasets.mono.steps" in res.stdout and "unknown preset 'nersemb'" in res.stdout
    assert "nersemble" in res.stdout  # the known presets are listed
    # in a subject file too, named by its path
    (tmp_path / "subjects").mkdir()
    (tmp_path / "subjects" / "bob.yaml").write_text("sequences: {bob: {steps: {export: {preset: x}}}}\n")
    cfg = write_config(tmp_path, {"datasets": {"mono": data["mono"]}, "subjects_dir": "subjects"})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0 and "bob.yaml: sequences.bob" in res.stdout and "steps.export.preset" in res.stdout
    # per-subject steps (validate, combine, report) cannot be set per sequence
    (tmp_path / "subjects" / "bob.yaml").write_text("sequences: {bob: {steps: {report: {config: {}}}}}\n")
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0 and "report" in res.stdout
    # the presets that exist pass
    presets = "steps: {track: {preset: monocular}, preprocess: {preset: monocular}}\n"
    (tmp_path / "subjects" / "bob.yaml").write_text(presets)
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1").stdout
    assert re.search(r"track --preset monocular .*--data\.sequence bob", out), out[-3000:]


def test_subject_file_is_validated(tmp_path):
    data = _placeholder_datasets(tmp_path / "data")
    (tmp_path / "subjects").mkdir()
    (tmp_path / "subjects" / "alice.yaml").write_text("steps: {track: {confg: {}}}\n")
    cfg = write_config(tmp_path, {"datasets": {"mono": data["mono"]}, "subjects_dir": "subjects"})
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1", check=False)
    assert res.returncode != 0 and "confg" in res.stdout


def test_listing_replaces_the_scan(tmp_path):
    listing = tmp_path / "listing.tsv"
    listing.write_text("074\tEMO-1\t120\n074\tEXP-2\t\n")
    (tmp_path / "v2" / "074" / "sequences" / "EMO-1").mkdir(parents=True)
    (tmp_path / "v2" / "074" / "sequences" / "EXP-2").mkdir(parents=True)
    ds = {"layout": "nersemble_v2", "root": str(tmp_path / "v2"), "listing": str(listing)}
    cfg = write_config(tmp_path, {"datasets": {"n": ds}})
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1").stdout
    assert job_counts(out)["track"] == 2
    # a listing names folders, not cameras: runtime assumes a 16-camera rig (120 listed frames / 300 default)
    runtimes = sorted(int(m) for m in re.findall(r"rule track:.*?runtime=(\d+)", out, re.S))
    assert runtimes == [30 + round(0.05 * 120 * 16), 30 + round(0.05 * 300 * 16)]


# ---------------------------------------------------------------------------------------------
# real runs on tiny fixtures
# ---------------------------------------------------------------------------------------------


def _tiny_config() -> dict:
    # paths relative to the working directory: a copied working directory is still up to date
    return {
        "vhap": VHAP_CMD,
        "subjects_dir": "subjects",
        "datasets": {"mono": {"layout": "monocular", "root": "data"}},
        "steps": {"track": TINY_TRACK},
        "resources": copy.deepcopy(TINY_RESOURCES),
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, carphone_path):
    """The whole DAG run locally on two 3-frame clips (alice, bob)."""
    wd = tmp_path_factory.mktemp("wf_tiny")
    data = wd / "data"
    data.mkdir()
    cut_clip(carphone_path, data / "alice.mp4", 0, 3)
    cut_clip(carphone_path, data / "bob.mp4", 60, 3)
    (wd / "subjects").mkdir()
    (wd / "subjects" / "alice.yaml").write_text("steps:\n  track:\n    config:\n      w: {reg_tex_tv: 300.0}\n")
    write_config(wd, _tiny_config())
    res = snakemake(wd, "--configfile", "config.yaml", "--cores", "2", timeout=900)
    return wd, res.stdout


@pytest.mark.slow
def test_tiny_run_produces_every_output(tiny_run):
    wd, out = tiny_run
    counts = job_counts(out)
    assert {k: counts[k] for k in ("preprocess", "matting", "landmarks", "track", "export")} == dict.fromkeys(
        ("preprocess", "matting", "landmarks", "track", "export"), 2
    )
    for name in ("alice", "bob"):
        seq = wd / "data" / name
        assert len(list((seq / "images").glob("*.jpg"))) == 3
        assert len(list((seq / "alpha_maps").glob("*.png"))) == 3
        assert (seq / "landmark2d" / "mediapipe.npz").is_file()
        run = wd / "results" / "track" / "mono" / name / name
        assert (run / "DONE").is_file() and (run / "tracked_flame_params.npz").is_file()
        export = wd / "results" / "export" / "mono" / name / f"{name}_{name}"
        assert len(json.loads((export / "transforms.json").read_text())["frames"]) == 3
        validation = json.loads((wd / "results" / "validate" / "mono" / name / f"{name}.json").read_text())
        assert validation["ok"] is True and validation["num_errors"] == 0
        summary = wd / "results" / "report" / "mono" / name
        assert (summary / "summary.png").is_file() and name in (summary / "summary.md").read_text()
    # the subject file reached alice's tracking, and only hers
    alice_cfg = yaml.safe_load((wd / "results" / "track" / "mono" / "alice" / "alice" / "config.yml").read_text())
    bob_cfg = yaml.safe_load((wd / "results" / "track" / "mono" / "bob" / "bob" / "config.yml").read_text())
    assert alice_cfg["w"]["reg_tex_tv"] == 300.0 and bob_cfg["w"]["reg_tex_tv"] != 300.0
    assert alice_cfg["model"]["tex_resolution"] == 32 and alice_cfg["exp"]["device"] == "cpu"


@pytest.mark.slow
def test_rerun_has_nothing_to_do_and_report_builds(tiny_run):
    wd, _ = tiny_run
    out = snakemake(wd, "-n", "--configfile", "config.yaml", "--cores", "1").stdout
    assert "Nothing to be done" in out
    snakemake(wd, "--configfile", "config.yaml", "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    for name in ("loss_curves.png", "overlay.mp4", "metrics.json", "summary.png", "summary.md"):
        assert name in html


@pytest.mark.slow
def test_editing_one_subject_reruns_only_its_tracking_and_export(tiny_run):
    wd, _ = tiny_run
    subject_file = wd / "subjects" / "alice.yaml"
    original = subject_file.read_text()
    try:
        subject_file.write_text("steps:\n  track:\n    config:\n      w: {reg_tex_tv: 1000.0}\n")
        out = snakemake(wd, "-n", "--configfile", "config.yaml", "--cores", "1").stdout
        jobs = pending_jobs(out)
        assert {r for r, _ in jobs} == {"track", "export", "validate_export", "report", "all"}
        assert all(w.get("subject") == "alice" for r, w in jobs if r != "all")
        assert "Params have changed" in out and "reg_tex_tv" in out
        # a formatting-only edit (same values, other key order / style) reruns nothing
        subject_file.write_text("steps:\n  track:\n    config:\n      w:\n        reg_tex_tv: 300.0\n")
        assert "Nothing to be done" in snakemake(wd, "-n", "--configfile", "config.yaml", "--cores", "1").stdout
    finally:
        subject_file.write_text(original)


@pytest.mark.slow
def test_failing_job_leaves_no_partial_output_and_is_reported(tiny_run, tmp_path):
    src, _ = tiny_run
    wd = tmp_path / "wd"
    shutil.copytree(src, wd, symlinks=True)
    cfg = _tiny_config()
    write_config(wd, cfg)
    # bob's tracking now asks for a camera that does not exist: `vhap track` fails after it started
    (wd / "subjects" / "bob.yaml").write_text("steps:\n  track:\n    config:\n      data: {cameras: ['nope']}\n")
    res = snakemake(wd, "--configfile", "config.yaml", "--cores", "1", "--retries", "0", check=False)
    assert res.returncode != 0
    assert "Error in rule track" in res.stdout and "subject=bob" in res.stdout
    assert not (wd / "results" / "track" / "mono" / "bob" / "bob").exists()  # removed, not half-written
    # bob's older export stays, but as outdated: the next dry run still lists the failed chain
    out = snakemake(wd, "-n", "--configfile", "config.yaml", "--cores", "1").stdout
    pending = pending_jobs(out)
    assert {w.get("subject") for r, w in pending if r != "all"} == {"bob"}, out[-4000:]
    assert {r for r, w in pending if w.get("subject") == "bob"} == {"track", "export", "validate_export", "report"}
    log = (wd / "results" / "logs" / "track" / "mono" / "bob" / "bob.log").read_text()
    assert "nope" in log
    # alice is untouched and complete
    assert (wd / "results" / "track" / "mono" / "alice" / "alice" / "DONE").is_file()


# ---------------------------------------------------------------------------------------------
# a real SLURM cluster (scripts/slurm-local.sh start)
# ---------------------------------------------------------------------------------------------


def _slurm_ready() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client (run scripts/slurm-local.sh start)"
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo does not answer"
    if res.returncode != 0 or not re.search(r"^(idle|mixed|allocated)", res.stdout, re.M):
        return f"no usable SLURM node (sinfo: {res.stdout.strip() or res.stderr.strip()})"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    return None


@pytest.mark.slurm
@pytest.mark.slow
def test_reduced_demo_through_sbatch(tmp_path, carphone_path):
    reason = _slurm_ready()
    if reason:
        pytest.skip(reason)
    wd = tmp_path
    data = wd / "data"
    data.mkdir()
    cut_clip(carphone_path, data / "carphone.mp4", 0, 3)
    cfg = _tiny_config()
    cfg["resources"]["track"]["gpu"] = 1  # -> sbatch --gpus=1 (the cluster declares a fake GPU)
    write_config(wd, cfg)
    # the test profile: profiles/slurm with the settings a one-node cluster without accounting needs
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    profile.update(
        {
            "jobs": 2,
            "max-threads": os.cpu_count() or 1,
            "latency-wait": 5,
            "retries": 0,
            "keep-going": False,
            "slurm-status-command": "squeue",  # no slurmdbd: sacct would hang the run
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
            "default-resources": {"slurm_partition": "debug", "mem_mb": 1000, "runtime": 10},
        }
    )
    (wd / "profile").mkdir()
    (wd / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    res = snakemake(wd, "--profile", str(wd / "profile"), "--configfile", "config.yaml", timeout=600)
    out = res.stdout
    assert re.search(r"Job \d+ has been submitted with SLURM jobid \d+", out), out[-3000:]
    run = wd / "results" / "track" / "mono" / "carphone" / "carphone"
    assert (run / "DONE").is_file()
    validation = json.loads((wd / "results" / "validate" / "mono" / "carphone" / "carphone.json").read_text())
    assert validation["ok"] is True
    # every step went through sbatch; the GPU rules asked for a GPU (--gpus=1 -> TresPerJob=gres:gpu:1)
    slurm_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    shown = {}
    for job_id in slurm_ids:
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        rule = re.search(r"Comment=rule_(\w+?)_wildcards|Comment=rule_(small)_", info)
        if rule:
            shown[rule.group(1) or rule.group(2)] = info
    assert {"preprocess", "matting", "landmarks", "track", "export", "small"} <= set(shown), shown.keys()
    assert "gres:gpu:1" in shown["track"] and "gres:gpu" not in shown["preprocess"]
    assert "JobState=COMPLETED" in shown["track"]
    assert (
        "Nothing to be done"
        in snakemake(wd, "--profile", str(wd / "profile"), "-n", "--configfile", "config.yaml").stdout
    )
