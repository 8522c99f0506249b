"""The data section of a tracking config: which sequence, which frames/cameras, which resolution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from vhap.config.core import AT_LEAST_ONE, Range
from vhap.data.layout import detect_layout, locate, sequence_folder
from vhap.errors import VhapError

Layout = Literal["auto", "monocular", "nersemble_v1", "nersemble_v2"]


@dataclass
class DataConfig:
    """Where a sequence lives and how it is loaded (see ``docs/dev/INTERFACES.md`` → vhap.data)."""

    sequence_dir: Path | None = None
    """the sequence folder (holding ``images[_<n>]/``, ``alpha_maps/``, ``landmark2d/``); root, layout, subject
    and sequence are then read from its place (:func:`vhap.data.layout.locate`) and need not be given"""
    root: Path = Path("data")
    """dataset root: the folder holding ``<sequence>/`` (monocular) or ``<subject>/`` (NeRSemble)"""
    sequence: str = ""
    """sequence folder name; an exact name wins, otherwise a unique prefix (``EXP-1`` → ``EXP-1_head``)"""
    subject: str | None = None
    """NeRSemble subject id (e.g. ``074``); None for monocular data"""
    layout: Layout = "auto"
    """folder layout; ``auto`` infers it from what exists under ``root``"""
    downsample: Annotated[int | None, AT_LEAST_ONE] = None
    """read ``images_<n>`` instead of ``images`` (None or 1 = full resolution)"""
    scale_factor: Annotated[float, Range(gt=0, le=1)] = 1.0
    """extra on-the-fly resize after loading (≤ 1)"""
    landmark_detector: str = "mediapipe"
    """landmark file to read: ``landmark2d/<detector>.npz`` or ``landmark2d/<detector>/<serial>.npz``"""
    require_landmarks: bool = True
    """raise when the landmark file is missing (else landmarks are all -1 with confidence 0)"""
    cameras: tuple[str, ...] = ()
    """camera serials to keep (empty = all); applied before ``subset``/``division``"""
    landmark_cameras: tuple[str, ...] = ()
    """camera serials whose 2D landmarks the fit uses (empty = every tracked camera); the other cameras are
    fitted photometrically only and need no landmark file, so ``vhap landmarks --cameras`` may skip them"""
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
    num_workers: Annotated[int, AT_LEAST_ONE] = 4
    """threads used to decode JPEG/PNG files"""


def resolve_sequence_dir(cfg: DataConfig) -> DataConfig:
    """``cfg`` with root, layout, subject and sequence read from ``cfg.sequence_dir`` (unchanged when it is None).

    Values given next to ``sequence_dir`` must name the same sequence (a saved, resolved config does).
    """
    if cfg.sequence_dir is None:
        return cfg
    entry = locate(cfg.sequence_dir)
    if not entry.folder.is_dir():  # a video file: its frames would live in entry.folder
        raise VhapError(
            f"a video whose sequence folder {entry.folder} does not exist yet",
            path=cfg.sequence_dir,
            fix=f"run `vhap preprocess {cfg.sequence_dir}` first, then pass --data.sequence-dir {entry.folder}",
        )
    layout = "monocular" if entry.layout == "multicamera" else entry.layout  # uncalibrated: cameras from frames
    found = {"root": Path(entry.root).resolve(), "layout": layout, "subject": entry.subject, "sequence": entry.sequence}
    default = DataConfig()
    given = {
        "root": Path(cfg.root).resolve() if cfg.root != default.root else None,
        "layout": cfg.layout if cfg.layout != default.layout else None,
        "subject": cfg.subject,
        "sequence": cfg.sequence or None,
    }
    for key, value in given.items():
        if value is not None and value != found[key]:
            raise VhapError(
                f"--data.{key} {value} disagrees with --data.sequence-dir, which is {key} {found[key]}",
                path=cfg.sequence_dir,
                fix="pass only --data.sequence-dir",
            )
    return dataclasses.replace(cfg, sequence_dir=Path(entry.folder), **found)


def address_by_folder(cfg: DataConfig) -> DataConfig:
    """``cfg`` addressing its sequence by folder, whichever way it was named: ``sequence_dir`` is the sequence
    folder and root, layout, subject and sequence are read from its place (:func:`resolve_sequence_dir`). A config
    given ``--data.root R --data.sequence S`` (a name prefix, layout ``auto``) and one given
    ``--data.sequence-dir R/S_full`` then compare equal."""
    if cfg.sequence_dir is None:
        layout = detect_layout(cfg.root) if cfg.layout == "auto" else cfg.layout
        folder = sequence_folder(Path(cfg.root), layout, cfg.sequence, cfg.subject)
        default = DataConfig()
        # the folder was found from these values (prefixes included): read them back from its place
        cfg = dataclasses.replace(
            cfg, sequence_dir=folder, root=default.root, layout=default.layout, subject=None, sequence=""
        )
    return resolve_sequence_dir(cfg)
