"""Step settings of the workflow: per-layout defaults, merging, rule params, and the up-front config check.

A step's settings are ``{"preset": NAME | None, "config": {...}}``: ``preset`` is passed as ``--preset``
(only ``vhap preprocess`` and ``vhap track`` have presets), ``config`` is the subcommand's own config
keys, written to a per-job YAML passed as ``--config``. Layers, later wins: the layout's defaults
(:data:`LAYOUT_DEFAULTS`) < ``steps:`` of the config < ``datasets.<ds>.steps`` < the subject file's
``steps`` < its ``sequences.<seq>.steps``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass

STEPS = ("preprocess", "matting", "landmarks", "track", "export", "validate", "combine", "report")
#: Steps whose subcommand takes ``--preset NAME`` (the preset group of vhap.config).
PRESET_STEPS = ("preprocess", "track")
#: Steps with one job per sequence (a ``sequences.<seq>.steps`` override can only name these).
SEQUENCE_STEPS = ("preprocess", "matting", "landmarks", "track", "export")

_NERSEMBLE_DEFAULTS = {
    # frames decoded straight to 1/4 resolution (full-resolution NeRSemble frames take tens of TB);
    # matting and landmarks read those downsampled frames, tracking too (its preset: data.downsample 4)
    "preprocess": {"preset": "nersemble"},
    "matting": {"config": {"downsample": 4}},
    "landmarks": {"config": {"downsample": 4}},
    "track": {"preset": "nersemble"},
}
#: Defaults of each dataset layout, under every setting of the config.
LAYOUT_DEFAULTS: dict[str, dict] = {
    # every frame of the video (a 29.97 fps clip keeps all its frames), VHAP's monocular tracking
    "monocular": {"preprocess": {"preset": "monocular"}, "track": {"preset": "monocular"}},
    "nersemble_v1": _NERSEMBLE_DEFAULTS,
    "nersemble_v2": _NERSEMBLE_DEFAULTS,
    "demo": {},  # the demo's settings are config.yaml's demo.steps
}

#: Top-level config keys that get a rule param of their own, so that snakemake's "Params have changed"
#: reason shows only the section that changed (``w: {...}``) instead of the whole config. Keys of a step
#: not listed here share one param (those configs are flat and short).
SPLIT_KEYS: dict[str, tuple[str, ...]] = {
    "track": ("data", "model", "render", "w", "lr", "pipeline", "exp", "log"),
}


def deep_merge(base: dict, over: dict | None) -> dict:
    """Recursive dict merge; ``over`` wins, lists are replaced (not concatenated); inputs are not modified."""
    out = dict(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_step(base: dict, over: dict | None) -> dict:
    """Step settings ``over`` merged over ``base``. ``preset: null`` (what the schema fills in for a
    step that names none) keeps the preset below; ``preset: ""`` removes it."""
    over = dict(over or {})
    if over.get("preset") is None:
        over.pop("preset", None)
    return deep_merge(base, over)


def layout_defaults(layout: str) -> dict:
    """Step settings a dataset of ``layout`` starts from (a copy)."""
    return copy.deepcopy(LAYOUT_DEFAULTS.get(layout, {}))


def track_landmark_cameras(track: dict) -> tuple[str, ...]:
    """``data.landmark_cameras`` of a track step's settings: its preset's value, overridden by its config
    (empty: every camera; also when the preset does not load, which the up-front check reports)."""
    preset = {}
    if track.get("preset"):
        preset, problem = _load_preset("track", track["preset"])
        if problem:
            return ()
    data = deep_merge(preset, track.get("config") or {}).get("data") or {}
    return tuple(data.get("landmark_cameras") or ())


def landmarks_for_track(landmarks: dict, track: dict) -> dict:
    """The landmarks step's settings, run only on the cameras whose landmarks tracking fits
    (``track``'s ``data.landmark_cameras``); unchanged when tracking uses every camera's landmarks or when
    the landmarks step names its own ``cameras``."""
    cameras = track_landmark_cameras(track)
    if not cameras or "cameras" in (landmarks.get("config") or {}):
        return landmarks
    return deep_merge(landmarks, {"config": {"cameras": list(cameras)}})


# ---------------------------------------------------------------------------------------------------
# rule params
# ---------------------------------------------------------------------------------------------------


def param_slots(step: str) -> tuple[str, ...]:
    """Names of the rule params that carry a step's config: one per split key, then ``cfg_rest``."""
    return tuple(f"cfg_{k}" for k in SPLIT_KEYS.get(step, ())) + ("cfg_rest",)


def _line(key: str, value) -> str:
    # JSON is YAML: one `key: <json>` line per top-level key, canonical (sorted keys, no spaces)
    return f"{key}: {json.dumps(value, sort_keys=True, separators=(',', ':'))}"


def config_params(step: str, config: dict) -> dict[str, str]:
    """The step config as rule params (slot name -> YAML text); see :func:`param_slots`.

    Each value names its key (``w: {"reg_tex_tv":300.0}``), so a params rerun reason says which key
    changed; the job writes the values, one per line, as its ``--config`` YAML file. Key order and
    formatting never change a value; values do.
    """
    split = SPLIT_KEYS.get(step, ())
    out = {f"cfg_{k}": _line(k, config[k]) if k in config else "" for k in split}
    rest = sorted(k for k in config if k not in split)
    out["cfg_rest"] = "\n".join(_line(k, config[k]) for k in rest)
    return out


# ---------------------------------------------------------------------------------------------------
# the up-front check
# ---------------------------------------------------------------------------------------------------


def config_class(step: str) -> type:
    """The typed config of a step's subcommand (what ``--config FILE`` is parsed into)."""
    if step == "preprocess":
        from vhap.preprocess.extract import PreprocessConfig

        return PreprocessConfig
    if step == "matting":
        from vhap.preprocess.matting import MattingConfig

        return MattingConfig
    if step == "landmarks":
        from vhap.preprocess.landmarks import LandmarkConfig

        return LandmarkConfig
    if step == "track":
        from vhap.track.config import TrackConfig

        return TrackConfig
    if step == "export":
        from vhap.export.config import ExportConfig

        return ExportConfig
    if step == "validate":  # the workflow validates exports within its quality gates (`vhap qa gate`)
        from vhap.qa.cli import GateConfig

        return GateConfig
    if step == "combine":
        from vhap.export.config import CombineConfig

        return CombineConfig
    if step == "report":
        from vhap.track.report import ReportConfig

        return ReportConfig
    raise ValueError(f"unknown workflow step {step!r}")


@dataclass(frozen=True)
class SettingsSource:
    """Settings of one step as written in one place (``where``: e.g. ``config: datasets.nersemble.steps``)."""

    where: str
    step: str
    preset: str | None
    config: dict


def sources_of(steps: dict | None, where: str) -> list[SettingsSource]:
    """One :class:`SettingsSource` per step of a ``steps:`` mapping."""
    return [
        SettingsSource(where, step, (s or {}).get("preset"), (s or {}).get("config") or {})
        for step, s in (steps or {}).items()
    ]


def _dataclass_of(tp) -> type | None:
    """The dataclass in ``tp`` (``X``, ``X | None``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def unknown_keys(cls: type, data: dict, prefix: str = "") -> list[str]:
    """Every key of ``data`` (recursively into nested dataclass fields) that ``cls`` does not have."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    bad = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            bad.append(path)
            continue
        inner = _dataclass_of(hints[key])
        if inner is not None and isinstance(value, dict):
            bad += unknown_keys(inner, value, path + ".")
    return bad


def _load_preset(step: str, preset: str) -> tuple[dict, str | None]:
    """(the preset's settings, None) or ({}, the problem)."""
    from vhap.config import load_preset
    from vhap.errors import VhapError

    if step not in PRESET_STEPS:
        return {}, (
            f"steps.{step}.preset = {preset!r}, but `vhap {step}` has no presets (only "
            f"{' and '.join(PRESET_STEPS)} do). Fix: remove the preset and put the settings under steps.{step}.config."
        )
    try:
        return load_preset(step, str(preset)), None
    except VhapError as e:
        return {}, f"steps.{step}.preset: {str(e).replace(chr(10) + '  fix:', ' Fix:')}"


def check_settings(sources: list[SettingsSource]) -> list[str]:
    """Every problem of the given settings, one line each (empty: all good).

    Presets must exist (and only preprocess and track have them); every config key must be a field of
    the subcommand's typed config (all unknown keys are listed, nested ones with their dotted path),
    and values must convert to the field types and pass the config's own validation.
    """
    from vhap.config import config_from_dict
    from vhap.errors import VhapError

    problems = []
    for src in sources:
        if src.step not in STEPS:
            problems.append(f"{src.where}: unknown step {src.step!r} (steps: {', '.join(STEPS)})")
            continue
        preset = {}
        if src.preset:
            preset, p = _load_preset(src.step, src.preset)
            if p:
                problems.append(f"{src.where}: {p}")
        if not isinstance(src.config, dict):
            problems.append(f"{src.where}: steps.{src.step}.config must be a mapping, got {src.config!r}")
            continue
        cls = config_class(src.step)
        bad = unknown_keys(cls, src.config)
        if bad:
            valid = sorted(f.name for f in dataclasses.fields(cls))
            problems.append(
                f"{src.where}: steps.{src.step}.config: unknown key(s) {bad} for `vhap {src.step}` "
                f"(its top-level keys: {valid})"
            )
            continue
        try:
            config_from_dict(cls, deep_merge(preset, src.config))
        except (VhapError, ValueError, TypeError) as e:
            problems.append(f"{src.where}: steps.{src.step}.config: {e}")
    return problems
