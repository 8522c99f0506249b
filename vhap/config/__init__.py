"""Typed configuration: dataclass trees, YAML presets and CLI overrides (tyro).

Every subcommand has one root dataclass. Values are resolved in this order (later wins):
dataclass defaults → ``--preset NAME`` files (``config/presets/<group>/NAME.yaml``, may chain through a
``_base_`` key) → ``--config FILE.yaml`` files → individual flags (``--a.b.c VALUE``). The resolved
config is saved next to every output with :func:`save_config`.
"""

from vhap.config.core import (
    PRESET_ROOT,
    config_from_dict,
    config_to_dict,
    list_presets,
    load_preset,
    parse_config,
    save_config,
)

__all__ = [
    "PRESET_ROOT",
    "config_from_dict",
    "config_to_dict",
    "list_presets",
    "load_preset",
    "parse_config",
    "save_config",
]
