"""Dataclass ↔ dict ↔ YAML conversion and the preset-aware CLI parser."""

from __future__ import annotations

import dataclasses
import enum
import importlib.resources
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vhap.errors import VhapError
from vhap.utils.atomic import write_text_atomic

T = TypeVar("T")

#: Subcommands with presets, and the package whose ``presets/`` folder holds their YAML files (package data,
#: so ``--preset NAME`` works from a wheel as well as from the source tree).
PRESET_PACKAGES = {"track": "vhap.track", "preprocess": "vhap.preprocess"}


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a numeric config field, declared in its annotation: ``Annotated[int, Range(ge=1)]``.

    Applies to every number of the field (also inside a tuple); ``None`` stays allowed where the type allows it.
    A numeric field without a ``Range`` gets :data:`DEFAULT_RANGE`. Checked by :func:`check_ranges` whenever
    :func:`parse_config` builds a config, so a bad flag, preset or YAML value is refused before anything runs.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, v: float) -> bool:
        return (
            (self.ge is None or v >= self.ge)
            and (self.gt is None or v > self.gt)
            and (self.le is None or v <= self.le)
            and (self.lt is None or v < self.lt)
        )

    def describe(self) -> str:
        bounds = (("≥", self.ge), (">", self.gt), ("≤", self.le), ("<", self.lt))
        return " and ".join(f"{op} {b:g}" for op, b in bounds if b is not None)


#: Counts, sizes, weights, learning rates and rates are never negative: the range of a numeric field that
#: declares none.
DEFAULT_RANGE = Range(ge=0)
#: Probabilities and fractions.
UNIT = Range(ge=0, le=1)
#: Counts that must be at least one (batch sizes, downsample factors, image sizes, workers).
AT_LEAST_ONE = Range(ge=1)
#: Strictly positive reals (focal lengths, frame rates of generated motion).
POSITIVE = Range(gt=0)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_ranges(cfg: Any, where: str = "") -> None:
    """Raise :class:`VhapError` naming the first numeric field of ``cfg`` (recursively) outside its :class:`Range`,
    its value and the allowed range; NaN and infinity are refused everywhere."""
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in dataclasses.fields(cfg):
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, key)
            continue
        rng = next((m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Range)), DEFAULT_RANGE)
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if not math.isfinite(v) or v not in rng:
                raise VhapError(
                    f"{_flag(key)} {v!r} is out of range: {key} must be {rng.describe()}"
                    + ("" if math.isfinite(v) else " and finite"),
                    fix=f"give {key} a value {rng.describe()} (flag, --config file or preset)",
                )


def config_to_dict(cfg: Any) -> Any:
    """Turn a (nested) dataclass into plain YAML-safe Python values."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {str(k): config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    if isinstance(cfg, enum.Enum):
        return cfg.value
    return cfg


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type ``tp`` (recursively for dataclasses)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except (TypeError, ValueError, VhapError) as e:
                errors.append(str(e))
        raise VhapError(f"config key '{where}': cannot read {value!r} as {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise VhapError(f"config key '{where}': {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise VhapError(f"config key '{where}': expected a mapping, got {value!r}")
        return _from_dict(tp, value, None, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            value = [value]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if origin is tuple and args:
            return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
        inner = args[0] if args else Any
        out = [_coerce(inner, v, where) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        return dict(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp in (int, float, str, bool):
        raise VhapError(f"config key '{where}': expected {tp.__name__}, got {value!r}")
    return value


def _from_dict(cls: type[T], data: dict, base: T | None, where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise VhapError(f"unknown config key(s) {[prefix + k for k in unknown]}; valid keys here: {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        current = getattr(base, f.name) if base is not None else None
        if f.name in data:
            value = data[f.name]
            if dataclasses.is_dataclass(hints[f.name]) and isinstance(value, dict):
                kwargs[f.name] = _from_dict(hints[f.name], value, current, key)
            else:
                kwargs[f.name] = _coerce(hints[f.name], value, key)
        elif base is not None:
            kwargs[f.name] = current
    return cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)


def config_from_dict(cls: type[T], data: dict, base: T | None = None) -> T:
    """Build ``cls`` from a nested dict; keys missing from ``data`` keep ``base``'s (or default) values.

    Unknown keys are an error (a typo in a preset must not be silently ignored).
    """
    if base is None:
        base = cls()
    return _from_dict(cls, data or {}, base, "")


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise VhapError("config file not found", path=path, fix="check the path passed to --config or --preset")
    return _read_yaml_text(path.read_text(), path)


def _preset_folder(group: str) -> importlib.resources.abc.Traversable:
    if group not in PRESET_PACKAGES:
        raise VhapError(f"'vhap {group}' has no presets", fix="use --config FILE.yaml")
    return importlib.resources.files(PRESET_PACKAGES[group]) / "presets"


def preset_names(group: str) -> list[str]:
    """Names of the presets shipped for subcommand ``group`` (``[]`` for a subcommand without presets)."""
    if group not in PRESET_PACKAGES:
        return []
    return sorted(p.name[: -len(".yaml")] for p in _preset_folder(group).iterdir() if p.name.endswith(".yaml"))


def _read_yaml_text(text: str, path: str | Path) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise VhapError(f"invalid YAML: {e}", path=path) from e
    if not isinstance(data, dict):
        raise VhapError("a config file must hold a mapping at the top level", path=path)
    return data


def load_preset(group: str, name: str) -> dict:
    """The preset ``name`` of subcommand ``group`` as a nested dict, with its chain of ``_base_`` presets merged.

    ``name`` is a shipped preset (:func:`preset_names`) or a path to the user's own ``.yaml``/``.yml`` file,
    whose ``_base_`` may name a shipped preset or another file.
    """
    if name.endswith((".yaml", ".yml")):
        data = load_yaml(name)
    else:
        resource = _preset_folder(group) / f"{name}.yaml"
        if not resource.is_file():
            raise VhapError(
                f"unknown preset '{name}' for 'vhap {group}'",
                fix=f"choose one of {preset_names(group)} or pass a YAML file path",
            )
        data = _read_yaml_text(resource.read_text(encoding="utf-8"), str(resource))
    base = data.pop("_base_", None)
    if base is not None:
        data = _deep_merge(load_preset(group, base), data)
    return data


def load_presets(group: str, cls: type[T]) -> dict[str, T]:
    """Every shipped preset of ``group`` built into ``cls``: raises :class:`VhapError` on a key, type or range
    ``cls`` rejects (the test suite calls this for every subcommand with presets)."""
    out = {name: config_from_dict(cls, load_preset(group, name)) for name in preset_names(group)}
    for cfg in out.values():
        check_ranges(cfg)
    return out


def _split_preset_args(args: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Pull ``--preset X`` / ``--config F`` (also ``--preset=X``) out of ``args``, keeping order."""
    picked, rest, i = [], [], 0
    while i < len(args):
        a = args[i]
        for flag in ("--preset", "--config"):
            if a == flag:
                if i + 1 >= len(args):
                    raise VhapError(f"{flag} needs a value")
                picked.append((flag, args[i + 1]))
                i += 2
                break
            if a.startswith(flag + "="):
                picked.append((flag, a.split("=", 1)[1]))
                i += 1
                break
        else:
            rest.append(a)
            i += 1
    return picked, rest


def parse_config(
    cls: type[T],
    args: list[str],
    *,
    preset_group: str | None = None,
    prog: str | None = None,
    description: str | None = None,
) -> T:
    """Resolve defaults → presets → config files → flags into an instance of ``cls``."""
    import tyro

    picked, rest = _split_preset_args(list(args))
    merged: dict = {}
    for flag, value in picked:
        if flag == "--preset":
            if preset_group is None:
                raise VhapError("this subcommand has no presets", fix="use --config FILE.yaml")
            merged = _deep_merge(merged, load_preset(preset_group, value))
        else:
            merged = _deep_merge(merged, load_yaml(value))
    default = config_from_dict(cls, merged)
    if preset_group is not None:
        presets = ", ".join(preset_names(preset_group)) or "none"
        extra = f"\n\nPresets (--preset NAME): {presets}. Also: --config FILE.yaml."
        description = (description or cls.__doc__ or "") + extra
    cfg = tyro.cli(cls, args=rest, default=default, prog=prog, description=description)
    check_ranges(cfg)
    return cfg


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically) so every output records how it was made."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    write_text_atomic(path, text)


def read_saved_config(cls: type[T], path: str | Path) -> T:
    return config_from_dict(cls, load_yaml(path))
