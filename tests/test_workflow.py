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
        "gate": 4,
        "combine": 2,
        "report": 4,
        "dashboard": 2,
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
    # tracking addresses a sequence by its folder (as matting and landmarks do) and gets the dataset preset; GPU
    # rules ask for a GPU and a runtime that grows with frames x cameras (3 cameras x 300 estimated frames here)
    v2_track = re.search(r"vhap\.cli track --preset nersemble .*--data\.sequence-dir \S*/v2/074/sequences/EMO-1\s", out)
    assert v2_track, out[-3000:]
    # the layouts' default presets: NeRSemble frames at 1/4 resolution, matting and landmarks on them;
    # monocular videos keep every frame and track with the monocular preset
    assert re.search(r"'downsample: 4'.*vhap\.cli matting .*/v2/074/sequences/EMO-1", out)
    assert re.search(r"'downsample: 4'.*vhap\.cli landmarks .*/v2/074/sequences/EMO-1", out)
    assert re.search(r"vhap\.cli preprocess --preset nersemble .*/v2/074/sequences/EMO-1", out)
    assert re.search(r"vhap\.cli preprocess --preset monocular .*/mono/alice\.mp4", out)
    assert re.search(r"vhap\.cli track --preset monocular .*--data\.sequence-dir \S*/mono/alice\s", out)
    track_block = out[out.index("rule track:") :].split("\n\n", 1)[0]
    assert "gpu_track_slots=1" in track_block and "gres=gpu:1" in track_block  # a share of a GPU (tracks_per_gpu 4)
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
    assert re.search(r"track --preset monocular .*--data\.sequence-dir \S*/mono/bob\s", out), out[-3000:]


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


def test_every_bad_step_key_is_listed_before_anything_runs(tmp_path):
    """One error names every unknown or ill-typed key of every step, wherever it is set; nothing is queued."""
    data = _placeholder_datasets(tmp_path / "data")
    v2 = dict(
        data["v2"], steps={"preprocess": {"config": {"downsample_scales": [4]}}, "matting": {"preset": "nersemble"}}
    )
    (tmp_path / "subjects").mkdir()
    (tmp_path / "subjects" / "074.yaml").write_text(
        "sequences: {EMO-1: {steps: {track: {config: {exp: {batch_sise: 2}}}}}}\n"
    )
    cfg = {
        "datasets": {"v2": v2},
        "subjects_dir": "subjects",
        "steps": {
            "track": {"config": {"w": {"reg_exprr": 1.0}, "modle": {}}},
            "export": {"config": {"jpeg_quality": "high"}},
        },
    }
    res = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, cfg)), "--cores", "1", check=False)
    assert res.returncode != 0
    out = res.stdout
    assert "the config has 5 problem(s); nothing was run" in out, out[-3000:]
    assert "config: steps: steps.track.config: unknown key(s) ['w.reg_exprr', 'modle']" in out
    assert "config: steps: steps.export.config: config key 'jpeg_quality'" in out
    assert "config: datasets.v2.steps: steps.preprocess.config: unknown key(s) ['downsample_scales']" in out
    assert "config: datasets.v2.steps: steps.matting.preset = 'nersemble', but `vhap matting` has no presets" in out
    assert "074.yaml: sequences.EMO-1: steps.track.config: unknown key(s) ['exp.batch_sise']" in out
    assert "rule preprocess" not in out and not (tmp_path / "results" / ".plan").exists()


def test_missing_union_member_is_a_warning_naming_subject_and_sequences(tmp_path):
    data = _placeholder_datasets(tmp_path / "data")
    shutil.rmtree(tmp_path / "data" / "v2" / "104" / "sequences" / "EXP-2")
    v2 = dict(data["v2"], combine={"BOTH": ["EMO-1", "EXP-2"], "THREE": ["EMO-1", "EXP-2", "EXP-9"]})
    cfg = write_config(tmp_path, {"datasets": {"v2": v2}, "vhap": VHAP_CMD})
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1").stdout
    assert "vhap workflow: warning: 3 union(s) cannot be built" in out
    assert "v2/104: union BOTH left out, missing sequence(s): EXP-2" in out
    assert "v2/074: union THREE left out, missing sequence(s): EXP-9" in out
    assert "v2/104: union THREE left out, missing sequence(s): EXP-2, EXP-9" in out
    assert job_counts(out)["combine"] == 1  # 074's BOTH


def test_union_leaves_out_members_that_failed_their_gate_unless_forced(tmp_path):
    """The combine rule's member filter, with a stand-in `vhap` that records what it was asked to combine."""
    data = _placeholder_datasets(tmp_path / "data")
    fake = tmp_path / "fake_vhap.sh"
    fake.write_text('#!/bin/sh\n# record the --src list in the --tgt folder\nsrc=""; tgt=""; mode=""\n'
                    'for a in "$@"; do case "$a" in --src) mode=s;; --tgt) mode=t;; --*) mode="";; *) '
                    '[ "$mode" = s ] && src="$src ${a##*/}"; [ "$mode" = t ] && tgt="$a";; esac; done\n'
                    'mkdir -p "$tgt" && echo $src > "$tgt/members.txt"\n')  # fmt: skip
    fake.chmod(0o755)
    for seq in ("EMO-1", "EXP-2"):
        (tmp_path / "results" / "export" / "v2" / "074" / f"074_{seq}").mkdir(parents=True)
    gates = tmp_path / "results" / "qa" / "v2" / "074"
    gates.mkdir(parents=True)
    (gates / "EXP-2.FAILED").write_text("NME 9 % > 5 %\n")
    union = "results/export/v2/074/074_UNION_BOTH"
    cfg = write_config(tmp_path, {"datasets": {"v2": data["v2"]}, "vhap": str(fake)})
    out = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", "--", union).stdout
    assert (tmp_path / union / "members.txt").read_text().split() == ["074_EMO-1"]
    assert "union BOTH: EXP-2 left out (quality gate failed: NME 9 % > 5 %)" in out
    shutil.rmtree(tmp_path / union)
    forced = dict(data["v2"], force_unions=True)
    cfg = write_config(tmp_path, {"datasets": {"v2": forced}, "vhap": str(fake)})
    snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", "--", union)
    assert (tmp_path / union / "members.txt").read_text().split() == ["074_EMO-1", "074_EXP-2"]
    # every member failed: no union, and a job that says why
    (gates / "EMO-1.FAILED").write_text("diverged\n")
    shutil.rmtree(tmp_path / union)
    cfg = write_config(tmp_path, {"datasets": {"v2": data["v2"]}, "vhap": str(fake)})
    res = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", "--", union, check=False)
    assert res.returncode != 0 and "every member failed its quality gate" in res.stdout
    assert not (tmp_path / union).exists()


def test_slurm_profile_settings_are_in_force(tmp_path):
    """The workflow profile (profiles/default) must not override what profiles/slurm sets."""
    from snakemake.cli import parse_args

    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert not {k for k in default if default[k] != slurm.get(k, default[k])}, "profiles/default overrides slurm"
    # what snakemake makes of the command line (the workflow profile is found next to the Snakefile)
    argv = ["-n", "--snakefile", str(SNAKEFILE), "--profile", str(REPO / "profiles" / "slurm")]
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        _, args = parse_args(argv)
    finally:
        os.chdir(cwd)
    assert args.retries == 2 and args.keep_going is True and args.latency_wait == 60
    assert not args.resources  # no global GPU limit
    assert args.slurm_status_command == "squeue"  # works with and without accounting
    # job shape: the CPU chain of a sequence is one group (one SLURM job), gates + report of a subject another
    assert args.groups == {"preprocess": "prep", "matting": "prep", "landmarks": "prep", "gate": "subject",
                           "report": "subject"}  # fmt: skip
    # and the running workflow sees no GPU limit (the local profile has one)
    data = _placeholder_datasets(tmp_path / "data")
    cfg = write_config(tmp_path, {"datasets": {"mono": data["mono"]}, "vhap": VHAP_CMD})
    out = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(cfg)).stdout
    assert "workflow specific profile" in out and "vhap workflow: GPU jobs at once: no limit" in out
    out = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "local"), "--configfile", str(cfg)).stdout
    assert "vhap workflow: GPU jobs at once: 1" in out
    assert "vhap workflow: track jobs per GPU: 4 (4 at once on 1 GPU(s) here" in out  # the config's default


def test_cpu_steps_go_to_the_cpu_partition_by_one_setting(tmp_path):
    data = _placeholder_datasets(tmp_path / "data")
    cfg = write_config(tmp_path, {"datasets": {"mono": data["mono"]}, "vhap": VHAP_CMD,
                                  "slurm_partitions": {"cpu": "cpuq"}})  # fmt: skip
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg), "--cores", "1").stdout
    blocks = dict(re.findall(r"^\s*rule (\w+):\n(.*?)^Shell command", out, re.M | re.S))
    for rule in ("preprocess", "matting", "landmarks", "export", "gate", "report"):
        assert "slurm_partition=cpuq" in blocks[rule], rule
    assert "slurm_partition" not in blocks["track"]  # the profile's default (the GPU partition)


def _yaml_examples(path: Path) -> list[str]:
    return re.findall(r"```ya?ml\n(.*?)```", path.read_text(), re.S)


def test_docs_yaml_examples_load_and_pass_the_config_check():
    """Every YAML example of README.md and docs/workflow.md parses; workflow configs pass the schema and
    the step-config check the workflow runs when it loads."""
    from snakemake.utils import validate

    from vhap.workflow.settings import check_settings, sources_of

    schema = str(REPO / "config" / "schema" / "config.schema.yaml")
    checked = 0
    for doc in (REPO / "README.md", REPO / "docs" / "workflow.md"):
        for text in _yaml_examples(doc):
            data = yaml.safe_load(text)
            if not isinstance(data, dict) or not ({"datasets", "steps", "qa"} & set(data)) or "executor" in data:
                continue  # not a workflow config (a profile, a preset, a snippet)
            validate(copy.deepcopy(data), schema, set_default=True)
            sources = sources_of(data.get("steps"), f"{doc.name}: steps")
            for name, spec in (data.get("datasets") or {}).items():
                sources += sources_of(spec.get("steps"), f"{doc.name}: datasets.{name}.steps")
            assert check_settings(sources) == [], text
            checked += 1
    assert checked >= 1  # docs/workflow.md (README links to it instead of repeating it)


# ---------------------------------------------------------------------------------------------
# library: plan, settings, gates, dashboard, pending summary
# ---------------------------------------------------------------------------------------------


def test_plan_round_trip_and_selection(tmp_path):
    from vhap.workflow import plan

    data = _placeholder_datasets(tmp_path / "data")
    recs = plan.scan_dataset("v2", "nersemble_v2", data["v2"]["root"])
    assert [(r.subject, r.seq, len(r.videos)) for r in recs] == [
        ("074", "EMO-1", 3), ("074", "EXP-2", 3), ("104", "EMO-1", 3), ("104", "EXP-2", 3)
    ]  # fmt: skip
    mono = plan.scan_dataset("mono", "monocular", data["mono"]["root"])
    assert [(r.subject, r.seq, r.cameras) for r in mono] == [("alice", "alice", 1), ("bob", "bob", 1)]
    path = plan.plan_path(tmp_path / "results", plan.plan_key({"a": 1}))
    plan.write_plan(path, recs + mono)
    assert plan.read_plan(path) == recs + mono
    kept = plan.select(recs, sequences=["EM*"], skipped=lambda subj, seq: subj == "104")
    assert [(r.subject, r.seq) for r in kept] == [("074", "EMO-1")]
    assert plan.plan_key({"a": 1, "b": [2]}) == plan.plan_key({"b": [2], "a": 1}) != plan.plan_key({"a": 2})
    listing = tmp_path / "l.tsv"
    listing.write_text("# subject, sequence, frames\n074\tEMO-1\t120\n074\tEXP-2\t\n")
    listed = plan.read_listing("v2", "nersemble_v2", data["v2"]["root"], listing)
    assert [(r.seq, r.frames, r.cameras, r.listed) for r in listed] == [
        ("EMO-1", 120, 16, True),
        ("EXP-2", None, 16, True),
    ]


def test_config_params_name_their_key_and_round_trip():
    from vhap.workflow.settings import config_params, param_slots

    cfg = {"w": {"reg_expr": 1.0}, "exp": {"batch_size": 2, "device": "cpu"}, "model": {"head_model": "open"}}
    slots = config_params("track", cfg)
    assert set(slots) == set(param_slots("track"))
    assert slots["cfg_w"] == 'w: {"reg_expr":1.0}' and slots["cfg_data"] == "" and slots["cfg_rest"] == ""
    assert yaml.safe_load("\n".join(slots.values())) == cfg  # what the job writes as --config
    flat = config_params("preprocess", {"fps": 25.0, "downsample": [4]})
    assert flat == {"cfg_rest": "downsample: [4]\nfps: 25.0"}
    # key order does not change a value
    assert config_params("track", dict(reversed(list(cfg.items())))) == slots


def test_gates_judge_metrics():
    from vhap.qa.gates import Thresholds, judge

    t = Thresholds(max_nme_percent=3.0, min_face_psnr_db=25.0, min_head_coverage=0.9)
    good = {"totals": {"nme": 0.0145, "psnr_face": 27.2}, "num_timesteps": 120, "photometric": True}
    assert judge(good, t)[0] == []
    assert judge(good, t)[1]["nme_percent"] == pytest.approx(1.45)
    bad = {"totals": {"nme": 0.04, "psnr_face": 22.0}, "whole_head": {"head_coverage": 0.5}}
    assert judge(bad, t)[0] == ["NME 4 % > 3 %", "face PSNR 22 dB < 25 dB", "head coverage 0.5 < 0.9"]
    assert judge({"totals": {"nme": None, "psnr_face": 27.0}}, t)[0] == ["no landmark NME (no landmarks fitted?)"]
    assert judge({"totals": {"nme": 0.01, "psnr_face": float("nan")}}, t)[0][0] == "non-finite figures: psnr_face"
    assert judge(dict(good, diverged=True), t)[0] == ["diverged (metrics.json says so)"]
    # a landmark-only run has no face PSNR to judge; switched-off gates judge nothing
    assert judge({"totals": {"nme": 0.01}, "photometric": False}, t)[0] == []
    assert judge({"totals": {}}, Thresholds(None, None, None))[0] == []
    with pytest.raises(Exception, match="min_head_coverage"):
        Thresholds(min_head_coverage=2.0)


def _fake_run(folder: Path, nme: float, psnr: float, frames: int = 8) -> Path:
    import numpy as np
    from PIL import Image

    (folder / "overlays").mkdir(parents=True)
    for t in range(frames):
        img = np.full((64, 96, 3), 30 * t % 255, np.uint8)
        Image.fromarray(img).save(folder / "overlays" / f"{t:05d}.jpg")
    metrics = {"totals": {"nme": nme, "psnr_face": psnr}, "num_timesteps": frames, "num_cameras": 1}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_gate_cli_marks_failures_and_dashboard_lists_them_first(tmp_path):
    from vhap.qa.gates import failed_members

    runs = [_fake_run(tmp_path / "runs" / n, nme, psnr) for n, nme, psnr in
            (("good", 0.012, 28.0), ("blurry", 0.015, 14.0), ("lost", 0.2, 26.0))]  # fmt: skip
    out = tmp_path / "qa" / "s1"
    cmd = [sys.executable, "-m", "vhap.cli", "qa", "gate", "--runs", *map(str, runs), "--output", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr  # failed gates are verdicts, not a failed job
    assert "1 passed, 2 failed" in res.stdout
    assert failed_members(out, ["good", "blurry", "lost"]) == ["blurry", "lost"]
    assert (out / "lost.FAILED").read_text() == "NME 20 % > 5 %\n"
    verdict = json.loads((out / "good.json").read_text())
    assert verdict["passed"] and len(verdict["thumbnails"]) == 4 and verdict["thumbnails"][-1] == "overlays/00007.jpg"
    page = tmp_path / "site" / "qa.html"
    cmd = [sys.executable, "-m", "vhap.cli", "qa", "dashboard", "--verdicts", str(out), "--output", str(page)]
    assert "3 sequences, 2 failed" in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    html_text = page.read_text()
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html_text, re.S).group(1))
    assert [r["name"] for r in data["rows"]] == ["blurry", "good", "lost"]
    assert data["rows"][0]["thumbs"][0] == "../runs/blurry/overlays/00000.jpg"  # relative to the page
    assert (page.parent / data["rows"][0]["thumbs"][0]).is_file()
    assert "sortKey = 'passed'" in html_text and "loading = 'lazy'" in html_text  # failures first, lazy images


def test_pending_table_folds_a_dry_run():
    from vhap.workflow.summary import parse_dry_run, pending_table

    text = """
[Sat Dec  5 09:18:54 2026]
rule track:
    output: results/track/v2/074/EMO-1
    reason: Params have changed since last execution: Union of exclusive params before and now across all output: \
before: 'w: {"reg_expr":1.0}' now: 'w: {"reg_expr":2.0}'
    wildcards: ds=v2, subject=074, seq=EMO-1
rule track:
    reason: Missing output files: results/track/v2/074/EXP-2
    wildcards: ds=v2, subject=074, seq=EXP-2
[Sat Dec  5 09:18:54 2026] Group job prep (jobs in lexicogr. order):
    rule matting:
        reason: Missing output files: x
        wildcards: ds=v2, subject=104, seq=EMO-1
localrule all:
    reason: Input files updated by another job
"""
    table = pending_table(parse_dry_run(text))
    assert re.search(r"^track\s+v2\s+074\s+2\s+params: w \(1\), missing output \(1\)$", table, re.M), table
    assert re.search(r"^matting\s+v2\s+104\s+1\s+missing output$", table, re.M), table
    assert table.splitlines()[-1] == "total: matting 1, track 2"


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
        "tracks_per_gpu": 1,  # one SLURM job per track job (these tests count and time them)
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
    (wd / "subjects" / "alice.yaml").write_text("steps:\n  track:\n    config:\n      w: {reg_tex_tv: 500.0}\n")
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
        verdict = json.loads((wd / "results" / "qa" / "mono" / name / f"{name}.json").read_text())
        assert verdict["export"].endswith(f"{name}_{name}") and verdict["figures"]["frames"] == 3
        # 3 frames and a few steps: the verdict is whatever the figures say, but never silent
        assert verdict["passed"] is (not (wd / "results" / "qa" / "mono" / name / f"{name}.FAILED").exists())
        summary = wd / "results" / "report" / "mono" / name
        assert (summary / "summary.png").is_file() and name in (summary / "summary.md").read_text()
    # the subject file reached alice's tracking, and only hers
    alice_cfg = yaml.safe_load((wd / "results" / "track" / "mono" / "alice" / "alice" / "config.yml").read_text())
    bob_cfg = yaml.safe_load((wd / "results" / "track" / "mono" / "bob" / "bob" / "config.yml").read_text())
    assert alice_cfg["w"]["reg_tex_tv"] == 500.0 and bob_cfg["w"]["reg_tex_tv"] != 500.0
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
        assert {r for r, _ in jobs} == {"track", "export", "gate", "report", "dashboard", "all"}
        assert all(w.get("subject") == "alice" for r, w in jobs if r not in ("all", "dashboard"))
        # the rerun reason names the changed section, not the whole config
        reason = next(line for line in out.splitlines() if "Params have changed" in line)
        assert "w: {" in reason and "reg_tex_tv" in reason and "pipeline" not in reason and "model" not in reason
        # and the pending-work summary says the same, per step and subject
        table = subprocess.run([sys.executable, "-m", "vhap.cli", "qa", "pending"], input=out, capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
        assert re.search(r"^track\s+mono\s+alice\s+1\s+params: w$", table, re.M), table
        # a formatting-only edit (same values, other key order / style) reruns nothing
        subject_file.write_text("steps:\n  track:\n    config:\n      w:\n        reg_tex_tv: 500.0\n")
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
    assert {w.get("subject") for r, w in pending if r not in ("all", "dashboard")} == {"bob"}, out[-4000:]
    assert {r for r, w in pending if w.get("subject") == "bob"} == {"track", "export", "gate", "report"}
    log = (wd / "results" / "logs" / "track" / "mono" / "bob" / "bob.log").read_text()
    assert "nope" in log
    # alice is untouched and complete
    assert (wd / "results" / "track" / "mono" / "alice" / "alice" / "DONE").is_file()


@pytest.mark.slow
def test_killed_track_job_resumes_from_its_checkpoint(tmp_path, carphone_path):
    """Issue 17 item 5: a track job killed mid-run (snakemake and all) resumes on the next run from the
    checkpoint kept outside its output folder, which snakemake deleted; the checkpoint is gone afterwards."""
    import time

    data = tmp_path / "data"
    data.mkdir()
    cut_clip(carphone_path, data / "alice.mp4", 0, 3)
    cfg = _tiny_config()
    track = copy.deepcopy(TINY_TRACK)
    track["config"]["pipeline"]["rgb_global_tracking"] = {"num_epochs": 40}  # long enough to be killed in
    track["config"]["exp"]["checkpoint_every_epochs"] = 1
    cfg["steps"]["track"] = track
    write_config(tmp_path, cfg)
    resume = tmp_path / "results" / ".resume" / "mono" / "alice" / "alice"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
           "--configfile", "config.yaml", "--cores", "1", "--", "results/track/mono/alice/alice"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not (resume / "latest.pt").is_file():
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 600 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we started: snakemake and the track job
        proc.wait()
    run = tmp_path / "results" / "track" / "mono" / "alice" / "alice"
    assert not (run / "DONE").exists() and (resume / "latest.pt").is_file()
    snakemake(tmp_path, "--unlock", "--configfile", "config.yaml")
    out = snakemake(tmp_path, "--configfile", "config.yaml", "--cores", "1", "--", str(run.relative_to(tmp_path)))
    assert "rule track" in out.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["timing"]["resumed"] is True
    assert not resume.exists()  # removed after the run finished


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


def _slurm_jobs() -> dict[str, dict]:
    """Every job SLURM still knows (MinJobAge): id -> its `scontrol show job -o` fields."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


@pytest.mark.slurm
@pytest.mark.slow
def test_dataset_through_sbatch_runs_tracks_at_once_and_isolates_a_failure(tmp_path, carphone_path):
    """profiles/slurm on a real one-node cluster (2 CPUs, 2 fake GPUs): three clips, one of which fails
    its tracking. The two others run their track jobs at the same time and finish their whole chain
    (gates, report); the failed one stops only itself."""
    from datetime import datetime

    reason = _slurm_ready()
    if reason:
        pytest.skip(reason)
    wd = tmp_path
    data = wd / "data"
    data.mkdir()
    for name, start in (("alice", 0), ("bob", 40), ("carol", 80)):
        cut_clip(carphone_path, data / f"{name}.mp4", start, 3)
    (wd / "subjects").mkdir()
    (wd / "subjects" / "carol.yaml").write_text("steps: {track: {config: {data: {cameras: [nope]}}}}\n")
    cfg = _tiny_config()
    cfg["resources"]["track"]["gpu"] = 1  # -> sbatch --gpus=1 (the cluster declares 2 fake GPUs)
    write_config(wd, cfg)
    # profiles/slurm as shipped, less what a 2-CPU test cluster needs: its partition, small jobs, fast polling
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["keep-going"] is True
    profile.update(
        {
            "jobs": 6,
            "retries": 0,
            "max-threads": os.cpu_count() or 1,
            "latency-wait": 5,
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
            "default-resources": {"slurm_partition": "debug", "mem_mb": 1000, "runtime": 10},
        }
    )
    (wd / "profile").mkdir()
    (wd / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    before = set(_slurm_jobs())
    # the CPU chains first, so that every track job is ready at the same moment: otherwise whether two of them
    # overlap depends on how the three CPU chains happen to finish on a 2-CPU cluster
    snakemake(wd, "--profile", str(wd / "profile"), "--configfile", "config.yaml", "--until", "landmarks", timeout=900)
    res = snakemake(wd, "--profile", str(wd / "profile"), "--configfile", "config.yaml", timeout=900, check=False)
    out = res.stdout
    assert res.returncode != 0 and "Error in rule track" in out and "subject=carol" in out, out[-4000:]
    for name in ("alice", "bob"):
        assert (wd / "results" / "track" / "mono" / name / name / "DONE").is_file(), out[-4000:]
        assert (wd / "results" / "qa" / "mono" / name / f"{name}.json").is_file()
        assert (wd / "results" / "report" / "mono" / name / "summary.md").is_file()
    assert not (wd / "results" / "track" / "mono" / "carol" / "carol").exists()
    jobs = {k: v for k, v in _slurm_jobs().items() if k not in before}
    tracks = [j for j in jobs.values() if "rule_track" in j.get("Comment", "") and j["JobState"] == "COMPLETED"]
    assert len(tracks) == 2 and all("gres:gpu:1" in j.get("TresPerJob", "") for j in tracks), jobs
    # three track jobs ready at once, two GPUs: two of them run side by side (carol's fails, but not instantly)
    all_tracks = [j for j in jobs.values() if "rule_track" in j.get("Comment", "")]
    spans = sorted((datetime.fromisoformat(j["StartTime"]), datetime.fromisoformat(j["EndTime"])) for j in all_tracks)
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1]]
    assert len(all_tracks) == 3 and overlapping, f"no two track jobs ran at the same time: {spans}"
    # the CPU chain of a sequence is one SLURM job; so are the gates and report of a subject
    kinds = sorted(j.get("Comment", "").split("_wildcards")[0] for j in jobs.values())
    prep = "rule_prep_landmarks_matting_preprocess"
    assert kinds.count(prep) == 3 and kinds.count("rule_subject_gate_report") == 2, kinds
    assert not any(k in kinds for k in ("rule_preprocess", "rule_matting", "rule_landmarks", "rule_gate")), kinds
    # a rerun finishes carol once her settings are fixed, and touches nothing else
    (wd / "subjects" / "carol.yaml").unlink()
    out = snakemake(wd, "--profile", str(wd / "profile"), "-n", "--configfile", "config.yaml").stdout
    assert {w.get("subject") for r, w in pending_jobs(out) if r not in ("all", "dashboard")} == {"carol"}


@pytest.mark.slurm
@pytest.mark.slow
def test_track_job_cancelled_on_slurm_resumes_on_retry(tmp_path, carphone_path):
    """Issue 17 item 5 on the cluster: `scancel` of a running track job (as a time limit or preemption
    would end it); snakemake's retry resumes from the checkpoint kept outside the deleted output."""
    import time

    reason = _slurm_ready()
    if reason:
        pytest.skip(reason)
    wd = tmp_path
    (wd / "data").mkdir()
    cut_clip(carphone_path, wd / "data" / "dave.mp4", 0, 3)
    cfg = _tiny_config()
    track = copy.deepcopy(TINY_TRACK)
    track["config"]["pipeline"]["rgb_global_tracking"] = {"num_epochs": 40}
    track["config"]["exp"]["checkpoint_every_epochs"] = 1
    cfg["steps"]["track"] = track
    write_config(wd, cfg)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.update(
        {
            "jobs": 2,
            "retries": 1,
            "max-threads": os.cpu_count() or 1,
            "latency-wait": 5,
            "slurm-init-seconds-before-status-checks": 2,
            "default-resources": {"slurm_partition": "debug", "mem_mb": 1000, "runtime": 10},
        }
    )
    (wd / "profile").mkdir()
    (wd / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    resume = wd / "results" / ".resume" / "mono" / "dave" / "dave"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(wd),
           "--profile", str(wd / "profile"), "--configfile", "config.yaml",
           "--", "results/track/mono/dave/dave"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not (resume / "latest.pt").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint of the track job"
            time.sleep(0.2)
        running = [
            j for j in _slurm_jobs().values() if "rule_track" in j.get("Comment", "") and j["JobState"] == "RUNNING"
        ]
        assert len(running) == 1
        subprocess.run(["scancel", running[0]["JobId"]], check=True)
        out, _ = proc.communicate(timeout=600)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, out[-4000:]
    assert "CANCELLED" in out  # the first attempt was reported as cancelled, then retried
    metrics = json.loads((wd / "results" / "track" / "mono" / "dave" / "dave" / "metrics.json").read_text())
    assert metrics["timing"]["resumed"] is True
    assert not resume.exists()


# ---------------------------------------------------------------------------------------------
# several track jobs per GPU (config tracks_per_gpu; issue 19 item 2)
# ---------------------------------------------------------------------------------------------


def test_track_gpu_plan_per_executor():
    from vhap.errors import VhapError
    from vhap.workflow.gpu_share import SLOT_RESOURCE, TRACK_GROUP, track_gpu_plan

    one = track_gpu_plan(1, 1, 1)
    assert one.resources == {"gpu": 1} and one.group is None and not one.global_resources
    four = track_gpu_plan(4, 1, 2)  # 2 local GPUs: 8 slots; on a cluster 4 sequences per job of one GPU
    assert four.resources == {SLOT_RESOURCE: 1, "gres": "gpu:1"} and four.global_resources == {SLOT_RESOURCE: 8}
    assert (four.group, four.group_components) == (TRACK_GROUP, 4)
    assert track_gpu_plan(4, 1, None).global_resources == {}  # no GPU count (a cluster profile): no limit
    assert track_gpu_plan(4, 0, 1).resources == {}  # tracking on the CPU: nothing to share
    for bad in (0, -1, 1.5, True):
        with pytest.raises(VhapError, match="tracks_per_gpu must be a whole number"):
            track_gpu_plan(bad, 1, 1)
    with pytest.raises(VhapError, match="resources.track.gpu = 2"):
        track_gpu_plan(2, 2, 1)


def _gpu_track_resources() -> dict:
    return copy.deepcopy(TINY_RESOURCES) | {"track": {"threads": 1, "gpu": 1, "mem_mb": 1000, "runtime": 10}}


def _fake_vhap_timing(path: Path, sleep_s: float) -> Path:
    """A stand-in `vhap`: `track` records when it ran in <output>/span.txt (start and end, seconds since the
    epoch) after sleeping; every other subcommand does nothing (the in-place steps' stamps come from the rules)."""
    path.write_text(
        '#!/bin/sh\n[ "$1" = track ] || exit 0\nout=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = --exp.output_folder ] && out="$a"; prev="$a"; done\n'
        f's=$(date +%s.%N); sleep {sleep_s}; mkdir -p "$out" && echo "$s $(date +%s.%N)" > "$out/span.txt"\n'
    )
    path.chmod(0o755)
    return path


def _spans(wd: Path, names) -> list[tuple[float, float]]:
    return sorted(tuple(map(float, (wd / f"results/track/mono/{n}/{n}/span.txt").read_text().split())) for n in names)


def test_tracks_per_gpu_runs_k_track_jobs_at_once_on_the_local_executor(tmp_path):
    """profiles/local declares one GPU: with tracks_per_gpu 2, two of three track jobs run side by side, never
    three; with 1 they run one after the other. Other GPU rules keep the plain GPU count."""
    data = _placeholder_datasets(tmp_path / "data")
    fake = _fake_vhap_timing(tmp_path / "fake_vhap.sh", 2)
    (tmp_path / "data" / "mono" / "carol.mp4").touch()
    names = ("alice", "bob", "carol")
    targets = [f"results/track/mono/{n}/{n}" for n in names]
    for k in (2, 1):
        wd = tmp_path / f"k{k}"
        wd.mkdir()
        cfg = write_config(wd, {"datasets": {"mono": data["mono"]}, "vhap": str(fake), "tracks_per_gpu": k,
                                "resources": _gpu_track_resources()})  # fmt: skip
        out = snakemake(wd, "--profile", str(REPO / "profiles" / "local"), "--cores", "4", "--configfile", str(cfg),
                        "--", *targets).stdout  # fmt: skip
        spans = _spans(wd, names)
        overlaps = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1]]
        if k == 2:
            assert "track jobs per GPU: 2 (2 at once on 1 GPU(s) here" in out
            assert overlaps and spans[2][0] >= min(spans[0][1], spans[1][1]) - 0.05, spans  # 2, never 3
        else:
            assert "track jobs per GPU: 1" in out and not overlaps, spans


@pytest.mark.slurm
@pytest.mark.slow
def test_tracks_per_gpu_on_slurm_is_one_job_of_one_gpu_per_k_sequences(tmp_path):
    """profiles/slurm with tracks_per_gpu 2 on the real one-node cluster: three sequences' track jobs become
    two SLURM jobs (2 + 1 sequences), each asking for one GPU, and the two of one job run side by side."""
    reason = _slurm_ready()
    if reason:
        pytest.skip(reason)
    data = _placeholder_datasets(tmp_path / "data")
    (tmp_path / "data" / "mono" / "carol.mp4").touch()
    fake = _fake_vhap_timing(tmp_path / "fake_vhap.sh", 3)
    wd = tmp_path / "wd"
    wd.mkdir()
    write_config(wd, {"datasets": {"mono": data["mono"]}, "vhap": str(fake), "tracks_per_gpu": 2,
                      "resources": _gpu_track_resources()})  # fmt: skip
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.update({"jobs": 6, "retries": 0, "max-threads": os.cpu_count() or 1, "latency-wait": 5,
                    "slurm-init-seconds-before-status-checks": 2,
                    "default-resources": {"slurm_partition": "debug", "mem_mb": 1000, "runtime": 10}})  # fmt: skip
    (wd / "profile").mkdir()
    (wd / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    names = ("alice", "bob", "carol")
    before = set(_slurm_jobs())
    snakemake(wd, "--profile", str(wd / "profile"), "--configfile", "config.yaml", "--",
              *[f"results/track/mono/{n}/{n}" for n in names], timeout=600)  # fmt: skip
    jobs = [j for k, j in _slurm_jobs().items() if k not in before and "track" in j.get("Comment", "")]
    # `--gres=gpu:1`: SLURM shows it per node (`--gpus=1` shows as TresPerJob)
    assert len(jobs) == 2 and all(j.get("TresPerNode") == "gres:gpu:1" for j in jobs), jobs
    assert sorted(int(j["NumCPUs"]) for j in jobs) == [1, 2]  # each track job's threads, added up
    spans = _spans(wd, names)
    assert any(b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :]), spans


def test_landmarks_run_on_the_views_tracking_fits_with(tmp_path):
    """#19 item 3: track's data.landmark_cameras (from its preset or config) becomes the landmarks step's
    cameras, per subject and per sequence; a landmarks step that names its cameras keeps them."""
    from vhap.workflow.settings import landmarks_for_track, track_landmark_cameras

    preset = tmp_path / "few_lmk.yaml"
    preset.write_text("data: {downsample: 4, landmark_cameras: ['221501007']}\n")
    assert track_landmark_cameras({"preset": str(preset)}) == ("221501007",)
    assert track_landmark_cameras({"preset": str(preset), "config": {"data": {"landmark_cameras": []}}}) == ()
    assert track_landmark_cameras({"preset": "nersemble"}) == ()  # every view (the preset sets none)
    lm = {"config": {"downsample": 4}}
    assert landmarks_for_track(lm, {"preset": str(preset)}) == {"config": {"downsample": 4, "cameras": ["221501007"]}}
    own = {"config": {"cameras": ["222200036"]}}
    assert landmarks_for_track(own, {"preset": str(preset)}) == own

    data = _placeholder_datasets(tmp_path / "data")
    data["v2"]["steps"]["track"]["config"] = {"data": {"landmark_cameras": ["220700191", "222200036"]}}
    (tmp_path / "subjects").mkdir()
    (tmp_path / "subjects" / "104.yaml").write_text(
        "sequences: {EXP-2: {steps: {track: {config: {data: {landmark_cameras: ['221501007']}}}}}}\n"
    )
    cfg = write_config(tmp_path, {"datasets": {"v2": data["v2"]}, "vhap": VHAP_CMD, "subjects_dir": "subjects"})
    out = snakemake(tmp_path, "-n", "-p", "--configfile", str(cfg), "--cores", "1", "--until", "landmarks").stdout
    got = dict(re.findall(r"cfg=results/\.jobconfig/landmarks/v2/(\d+/[\w-]+)\.yaml.*?'cameras: \[([^\]]*)\]", out))
    assert got == {"074/EMO-1": '"220700191","222200036"', "074/EXP-2": '"220700191","222200036"',
                   "104/EMO-1": '"220700191","222200036"', "104/EXP-2": '"221501007"'}, got  # fmt: skip
