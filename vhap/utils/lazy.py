"""Lazy things: package exports imported on first use (PEP 562: ``import vhap.track`` stays cheap and light-weight
modules stay importable on their own, while ``from vhap.track import Tracker`` still works), and result fields
computed on first access (:class:`Deferred`, :class:`DeferredFields`)."""

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


class Deferred:
    """A field value computed on first access: ``Deferred(lambda: expensive())`` in a :class:`DeferredFields`
    object. Used for per-pixel buffers a renderer can return but most callers never read (each would be a
    full-image pass on every tracker step)."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], object]):
        self.compute = compute


class DeferredFields:
    """Mixin: an attribute holding a :class:`Deferred` is computed on first read and replaced by its value."""

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if type(value) is Deferred:
            value = value.compute()
            object.__setattr__(self, name, value)
        return value
