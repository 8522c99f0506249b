"""Package exports imported on first use (PEP 562: ``import vhap.track`` stays cheap and light-weight modules stay
importable on their own, while ``from vhap.track import Tracker`` still works)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], list[str]]:
    """``(__getattr__, __all__)`` for ``package`` whose public ``name`` lives in module ``exports[name]``.

    In a package's ``__init__``: ``__getattr__, __all__ = lazy_exports(__name__, {"Tracker": "vhap.track.tracker"})``
    """

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
