"""The data section of a tracking config: which sequence, which frames/cameras, which resolution."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Layout = Literal["auto", "monocular", "nersemble_v1", "nersemble_v2"]


@dataclass
class DataConfig:
    """Where a sequence lives and how it is loaded (see ``docs/dev/INTERFACES.md`` → vhap.data)."""

    root: Path = Path("data")
    """dataset root: the folder holding ``<sequence>/`` (monocular) or ``<subject>/`` (NeRSemble)"""
    sequence: str = ""
    """sequence folder name; an exact name wins, otherwise a unique prefix (``EXP-1`` → ``EXP-1_head``)"""
    subject: str | None = None
    """NeRSemble subject id (e.g. ``074``); None for monocular data"""
    layout: Layout = "auto"
    """folder layout; ``auto`` infers it from what exists under ``root``"""
    downsample: int | None = None
    """read ``images_<n>`` instead of ``images`` (None or 1 = full resolution)"""
    scale_factor: float = 1.0
    """extra on-the-fly resize after loading (≤ 1)"""
    landmark_detector: str = "mediapipe"
    """landmark file to read: ``landmark2d/<detector>.npz`` or ``landmark2d/<detector>/<serial>.npz``"""
    require_landmarks: bool = True
    """raise when the landmark file is missing (else landmarks are all -1 with confidence 0)"""
    cameras: tuple[str, ...] = ()
    """camera serials to keep (empty = all); applied before ``subset``/``division``"""
    timesteps: tuple[str, ...] = ()
    """timestep ids to keep (empty = all); applied before ``subset``"""
    subset: str | None = None
    """VHAP selection grammar: ``ti<i>``, ``ti<i>tj<j>``, ``tn<n>``, ``ts<s>``; cameras ``ci``/``cn``/``cs``"""
    division: str | None = None
    """NeRSemble camera split: train | val | front-view | side-view | six-view"""
    background_color: Literal["white", "black"] | None = None
    """composite frames over this colour using the alpha maps (None keeps the real background)"""
    use_alpha: bool = True
    """load ``alpha_maps`` when they exist (always loaded when ``background_color`` is set)"""
    align_cameras: bool = True
    """rotate the world so that the mean camera's OpenGL axes become the world axes (VHAP default)"""
    num_workers: int = 4
    """threads used to decode JPEG/PNG files"""
