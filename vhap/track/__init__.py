"""Photometric head tracking (VHAP_SPEC §4): configuration, parameters, energy terms, the stage schedule,
checkpoints and run outputs. Library entry point: :func:`vhap.track.tracker.track`; CLI: ``vhap track``."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrackConfig": "vhap.track.config",
    "stage_plan": "vhap.track.config",
    "resolve_occluded": "vhap.track.config",
    "TrackParams": "vhap.track.params",
    "Tracker": "vhap.track.tracker",
    "TrackingInterrupted": "vhap.track.tracker",
    "track": "vhap.track.tracker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vhap.track' has no attribute {name!r}")
