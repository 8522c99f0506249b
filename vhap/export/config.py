"""Typed configs of ``vhap export``, ``vhap combine`` and ``vhap validate-export``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from vhap.config.core import AT_LEAST_ONE, UNIT, Range


@dataclass
class ExportConfig:
    """Export a finished tracking run as a NeRF/3DGS dataset that GaussianAvatars loads (VHAP_SPEC §6.3-6.5)."""

    src: Path = Path("")
    """tracking run folder (or its parent: the newest run under it is used)"""
    tgt: Path = Path("")
    """export folder to create (built in a temporary sibling folder and renamed when complete)"""
    epoch: Annotated[int, Range(ge=-1)] = -1
    """parameters to export: -1 = final tracked_flame_params.npz, N = tracked_flame_params_<N>.npz"""
    background: Literal["white", "black", "none"] = "white"
    """composite the frames over this colour using the alpha mattes; none keeps the recorded background"""
    mask_below_neck: bool = True
    """cut the image and foreground mask below the neck line of the posed head model (§6.3 step 3)"""
    image_format: Literal["png", "jpg"] = "png"
    """encoding of the exported images (foreground masks are always PNG)"""
    jpeg_quality: Annotated[int, Range(ge=1, le=100)] = 95
    """JPEG quality when image_format=jpg"""
    link_frames: bool = True
    """hard-link (or copy across filesystems) the tracked frames and mattes when nothing is re-composited:
    background none, no neck mask, same resolution and file format"""
    flame_mode: Literal["param", "mesh"] = "param"
    """param: flame_param/<t>.npz per timestep; mesh: additionally posed meshes (meshes/<t>.obj),
    expression text files (flame/exp/<t>.txt) and canonical.obj"""
    train_ratio: Annotated[float, UNIT] = 0.7
    """fraction of timesteps (ceil) in train/val; the remaining later timesteps are test"""
    val_camera: int = 8
    """camera index held out for val with several cameras (the last camera if there are fewer)"""
    head_model: str | None = None
    """head model to pose with (default: the one the run records)"""
    allow_incomplete: bool = False
    """export a run without a DONE file (its newest parameter snapshot)"""
    overwrite: bool = False
    """replace an existing export folder"""
    workers: Annotated[int, AT_LEAST_ONE] = 4
    """threads encoding images"""


@dataclass
class CombineConfig:
    """Union dataset of several exported sequences of one subject (VHAP_SPEC §6.6)."""

    src: tuple[Path, ...] = ()
    """export folders of the sequences (one subject; the first '_' token of each folder name is the subject)"""
    tgt: Path = Path("")
    """union folder to create; frame paths point into the sources relative to it (../<source>/... for siblings)"""
    division_mode: Literal["random_group", "random_single", "last"] = "random_group"
    """how the test sequences are chosen (random choices seeded with the subject)"""
    group_size: Annotated[int, AT_LEAST_ONE] = 10
    """random_group: one test sequence per group of this many sequences"""
    val_camera: int = 8
    """camera index held out for val with several cameras (the last camera if there are fewer)"""
    check_subject: bool = True
    """require all sources to share the subject token"""
    overwrite: bool = False
    """replace an existing union folder"""


@dataclass
class ValidateConfig:
    """Check an exported (or union) dataset against what GaussianAvatars reads (VHAP_SPEC §6.7)."""

    dir: Annotated[Path, tyro.conf.Positional] = Path("")
    """the export or union folder"""
    json: bool = False
    """print the report as JSON instead of a table"""
    decode_images: bool = True
    """fully decode every image (a truncated file has an intact header); --no-decode-images reads headers only"""
    for_gaussian_avatars: bool = True
    """the export is for GaussianAvatars: what it silently mishandles (vertex counts other than FLAME's, val/test
    splits of 1-9 frames) is reported; --no-for-gaussian-avatars for other readers"""
    head_model: str | None = None
    """head model to check vertex counts against (default: the one the export records)"""
