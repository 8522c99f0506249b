"""Typed configuration: dataclass trees, YAML presets and CLI overrides (tyro).

Every subcommand has one root dataclass. Values are resolved in this order (later wins):
dataclass defaults → ``--preset NAME`` files (package data ``vhap/<group>/presets/NAME.yaml``, or a path to
the user's own YAML; may chain through a ``_base_`` key) → ``--config FILE.yaml`` files → individual flags
(``--a.b.c VALUE``). The resolved config is saved next to every output with :func:`save_config`.
"""

from vhap.config.core import (
    AT_LEAST_ONE,
    DEFAULT_RANGE,
    POSITIVE,
    PRESET_PACKAGES,
    UNIT,
    Range,
    check_ranges,
    config_from_dict,
    config_to_dict,
    load_preset,
    load_presets,
    parse_config,
    preset_names,
    save_config,
)

__all__ = [
    "AT_LEAST_ONE",
    "DEFAULT_RANGE",
    "POSITIVE",
    "PRESET_PACKAGES",
    "UNIT",
    "Range",
    "check_ranges",
    "config_from_dict",
    "config_to_dict",
    "load_preset",
    "load_presets",
    "parse_config",
    "preset_names",
    "save_config",
]
