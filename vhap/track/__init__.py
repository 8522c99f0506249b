"""Photometric head tracking (VHAP_SPEC §4): configuration, parameters, energy terms, the stage schedule,
checkpoints and run outputs. Library entry point: :func:`vhap.track.tracker.track`; CLI: ``vhap track``."""

from __future__ import annotations

from vhap.utils.lazy import lazy_exports

_EXPORTS = {
    "TrackConfig": "vhap.track.config",
    "stage_plan": "vhap.track.config",
    "resolve_occluded": "vhap.track.config",
    "TrackParams": "vhap.track.params",
    "Tracker": "vhap.track.tracker",
    "TrackingInterrupted": "vhap.track.tracker",
    "track": "vhap.track.tracker",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
