"""Dataset folder layouts (monocular, NeRSemble v1/v2), path rules and fast discovery.

Monocular (VHAP_SPEC §5.1)::

    <root>/<sequence>.mp4                      raw video
    <root>/<sequence>/images[_<n>]/<ts>.jpg    frames
    <root>/<sequence>/alpha_maps/<ts>.png      mattes
    <root>/<sequence>/landmark2d/<detector>.npz

NeRSemble v1 (§5.2)::

    <root>/camera_params/<subject>/camera_params.json
    <root>/color_correction/<subject>/<serial>.npy
    <root>/<subject>/BACKGROUND/image_<serial>.jpg
    <root>/<subject>/<sequence>/cam_<serial>.mp4
    <root>/<subject>/<sequence>/images[_<n>]/cam_<serial>_<ts>.jpg
    <root>/<subject>/<sequence>/alpha_maps/cam_<serial>_<ts>.png
    <root>/<subject>/<sequence>/landmark2d/<detector>/<serial>.npz

NeRSemble v2 (§5.3)::

    <root>/<subject>/calibration/camera_params.json
    <root>/<subject>/calibration/color_calibration.json
    <root>/<subject>/sequences/<sequence>/images/cam_<serial>.mp4   (or <sequence>/cam_<serial>.mp4)
    <root>/<subject>/sequences/<sequence>/images[_<n>]/cam_<serial>_<ts>.jpg   (and so on as v1)
    <root>/<subject>/sequences/BACKGROUND/image_<serial>.jpg

The multi-camera naming is chosen by the layout, never by how many cameras a run selects (so one
selected NeRSemble camera still reads ``cam_<serial>_…`` files; VHAP_SPEC §8.3 item 12's sibling, item 11).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vhap.errors import VhapError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
MONOCULAR_CAMERA = "0"
BACKGROUND_FOLDER = "BACKGROUND"
_CAM_VIDEO = re.compile(r"^cam_(.+)$")
_CAM_FRAME = re.compile(r"^cam_(.+)_([^_]+)$")
_V1_RESERVED = {"camera_params", "color_correction", "colour_correction"}


@dataclass
class SequenceEntry:
    """One sequence found on disk. ``folder`` is where images/, alpha_maps/, landmark2d/ live.

    ``cameras``: serials in sorted order (monocular: ``["0"]``); ``videos``: serial → raw video path
    (empty when only extracted frames exist).
    """

    layout: str
    root: Path
    subject: str | None
    sequence: str
    folder: Path
    cameras: list[str] = field(default_factory=list)
    videos: dict[str, Path] = field(default_factory=dict)

    @property
    def multi_camera(self) -> bool:
        return self.layout != "monocular"


def images_dir_name(downsample: int | None) -> str:
    return "images" if downsample in (None, 1) else f"images_{int(downsample)}"


def pick_images_dir(folder: Path, downsample: int | None = None) -> Path:
    """``images_<n>`` for an explicit ``downsample``; otherwise ``images`` or the only ``images_<n>`` there is."""
    folder = Path(folder)
    if downsample is not None:
        return folder / images_dir_name(downsample)
    frames = folder / "images"
    if (
        frames.is_dir()
        and not (frames / "meta.json").is_file()
        and any(
            os.path.splitext(e.name)[1].lower() in (".png", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
            for e in os.scandir(frames)
        )
    ):  # a user's own frames (vhap writes <timestep>.jpg and meta.json)
        raise VhapError(
            "images/ holds image frames that `vhap preprocess` did not write",
            path=frames,
            fix=f"convert them: `mv {frames} {folder / 'frames'} && vhap preprocess {folder / 'frames'} "
            f"--output {folder}`",
        )
    if (folder / "images").is_dir() and any(e.name.endswith(".jpg") for e in os.scandir(folder / "images")):
        return folder / "images"
    cands = [d.name for d in _visible_dirs(folder) if re.fullmatch(r"images_\d+", d.name)]
    if len(cands) == 1:
        return folder / cands[0]
    if not cands:
        raise VhapError("no extracted frames (images/ or images_<n>/)", path=folder, fix="run `vhap preprocess` first")
    raise VhapError(f"several frame folders {cands}; pick one", path=folder, fix="pass --downsample N")


def frame_stem(camera: str | None, timestep: str) -> str:
    """File stem of one frame: ``cam_<serial>_<ts>`` (multi-camera) or ``<ts>`` (monocular)."""
    return f"{timestep}" if camera is None else f"cam_{camera}_{timestep}"


def landmark_path(folder: Path, detector: str, camera: str | None) -> Path:
    """``landmark2d/<detector>.npz`` (monocular, camera None) or ``landmark2d/<detector>/<serial>.npz``."""
    base = Path(folder) / "landmark2d"
    return base / f"{detector}.npz" if camera is None else base / detector / f"{camera}.npz"


def parse_frame_stem(stem: str) -> tuple[str | None, str]:
    """``cam_<serial>_<ts>`` → (serial, ts); ``<ts>`` → (None, ts)."""
    m = _CAM_FRAME.match(stem)
    return (m.group(1), m.group(2)) if m else (None, stem)


def _visible_dirs(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return sorted((e for e in it if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _camera_videos(folder: Path) -> dict[str, Path]:
    """``cam_<serial>.<video>`` files directly in ``folder`` and in ``folder/images``."""
    out: dict[str, Path] = {}
    for sub in (folder, folder / "images"):
        try:
            with os.scandir(sub) as it:
                for e in it:
                    stem, suffix = os.path.splitext(e.name)
                    m = _CAM_VIDEO.match(stem)
                    if m and suffix.lower() in VIDEO_SUFFIXES and e.is_file():
                        out.setdefault(m.group(1), Path(e.path))
        except FileNotFoundError:
            continue
    return dict(sorted(out.items()))


def _cameras_from_frames(folder: Path) -> list[str]:
    """Serials of extracted frames (only used when a sequence has no raw videos)."""
    for d in _visible_dirs(folder):
        if d.name == "images" or d.name.startswith("images_"):
            with os.scandir(d.path) as it:
                cams = {parse_frame_stem(os.path.splitext(e.name)[0])[0] for e in it if e.name.endswith(".jpg")}
            cams.discard(None)
            if cams:
                return sorted(cams)
    return []


def detect_layout(root: str | Path) -> str:
    """Infer the layout of a dataset root from marker folders (no deep scanning)."""
    root = Path(root)
    if not root.is_dir():
        raise VhapError("dataset root not found", path=root, fix="check --data.root / the path you passed")
    if (root / "camera_params").is_dir():
        return "nersemble_v1"
    for d in _visible_dirs(root):
        if os.path.isdir(os.path.join(d.path, "sequences")) or os.path.isdir(os.path.join(d.path, "calibration")):
            return "nersemble_v2"
    return "monocular"


def _entry(layout, root, subject, name, folder) -> SequenceEntry:
    videos = _camera_videos(folder)
    cams = list(videos) or _cameras_from_frames(folder)
    return SequenceEntry(layout, root, subject, name, folder, cams, videos)


def discover(
    root: str | Path,
    layout: str = "auto",
    subjects: list[str] | None = None,
    sequences: list[str] | None = None,
) -> list[SequenceEntry]:
    """List every sequence under ``root`` (sorted by subject, sequence); no video is opened.

    Cost: one directory listing per subject and per sequence folder, so ~10k sequences take well under
    a second on a local disk. ``subjects``/``sequences`` filter by exact name.
    """
    root = Path(root)
    if layout == "auto":
        layout = detect_layout(root)
    elif not root.is_dir():
        raise VhapError("dataset root not found", path=root)
    want_subj = None if subjects is None else set(subjects)
    want_seq = None if sequences is None else set(sequences)
    out: list[SequenceEntry] = []
    if layout == "monocular":
        names: dict[str, Path | None] = {}
        with os.scandir(root) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                stem, suffix = os.path.splitext(e.name)
                if e.is_file() and suffix.lower() in VIDEO_SUFFIXES:
                    names[stem] = Path(e.path)
                elif e.is_dir() and any(
                    s.name == "images" or s.name.startswith("images_") for s in _visible_dirs(Path(e.path))
                ):
                    names.setdefault(e.name, None)
        for name in sorted(names):
            if want_seq is None or name in want_seq:
                video = names[name]
                out.append(
                    SequenceEntry(
                        "monocular",
                        root,
                        None,
                        name,
                        root / name,
                        [MONOCULAR_CAMERA],
                        {MONOCULAR_CAMERA: video} if video else {},
                    )
                )
        return out
    if layout not in ("nersemble_v1", "nersemble_v2"):
        raise VhapError(f"unknown layout '{layout}'", fix="use auto | monocular | nersemble_v1 | nersemble_v2")
    for subj in _visible_dirs(root):
        if layout == "nersemble_v1" and subj.name in _V1_RESERVED:
            continue
        if want_subj is not None and subj.name not in want_subj:
            continue
        seq_parent = Path(subj.path) if layout == "nersemble_v1" else Path(subj.path) / "sequences"
        for seq in _visible_dirs(seq_parent):
            if seq.name == BACKGROUND_FOLDER or (want_seq is not None and seq.name not in want_seq):
                continue
            entry = _entry(layout, root, subj.name, seq.name, Path(seq.path))
            if entry.cameras:
                out.append(entry)
    return out


def resolve_name(parent: Path, name: str, what: str = "sequence") -> Path:
    """The folder ``parent/name``: exact name first, else the unique folder whose name starts with it."""
    parent = Path(parent)
    if not name:
        raise VhapError(f"no {what} name given", path=parent, fix=f"pass the {what} name")
    if (parent / name).is_dir():
        return parent / name
    dirs = [d.name for d in _visible_dirs(parent) if d.name != BACKGROUND_FOLDER]
    matches = [d for d in dirs if d.startswith(name)]
    if len(matches) == 1:
        return parent / matches[0]
    if not matches:
        shown = ", ".join(dirs[:20]) + (" ..." if len(dirs) > 20 else "")
        raise VhapError(f"no {what} folder named or starting with '{name}' (found: {shown or 'none'})", path=parent)
    raise VhapError(
        f"'{name}' is ambiguous: it is a prefix of {matches}", path=parent, fix=f"give the full {what} folder name"
    )


def sequence_folder(root: Path, layout: str, sequence: str, subject: str | None) -> Path:
    """Resolve the sequence folder of a layout (exact name first, then a unique prefix)."""
    root = Path(root)
    if layout == "monocular":
        return resolve_name(root, sequence)
    if not subject:
        raise VhapError(f"layout {layout} needs a subject", path=root, fix="pass --data.subject, e.g. 074")
    subj_dir = resolve_name(root, subject, "subject")
    return resolve_name(subj_dir if layout == "nersemble_v1" else subj_dir / "sequences", sequence)


def calibration_path(root: Path, layout: str, subject: str) -> Path:
    if layout == "nersemble_v1":
        return Path(root) / "camera_params" / subject / "camera_params.json"
    return Path(root) / subject / "calibration" / "camera_params.json"


def colour_correction_path(root: Path, layout: str, subject: str) -> Path:
    """v1: the folder of per-camera ``<serial>.npy``; v2: ``color_calibration.json``."""
    if layout == "nersemble_v1":
        return Path(root) / "color_correction" / subject
    return Path(root) / subject / "calibration" / "color_calibration.json"


def background_folder(root: Path, layout: str, subject: str) -> Path:
    if layout == "nersemble_v1":
        return Path(root) / subject / BACKGROUND_FOLDER
    return Path(root) / subject / "sequences" / BACKGROUND_FOLDER


def locate(path: str | Path) -> SequenceEntry:
    """Describe the sequence a video file or sequence folder belongs to (layout inferred from its place).

    - ``<root>/<name>.mp4`` → monocular, output folder ``<root>/<name>``;
    - ``<root>/<subject>/sequences/<seq>/`` → NeRSemble v2; ``<root>/<subject>/<seq>/`` with
      ``<root>/camera_params`` → v1; any other folder of ``cam_*.mp4`` (or of extracted ``cam_<serial>_<ts>``
      frames) → ``multicamera`` (uncalibrated);
    - any other folder of extracted frames (``images[_<n>]/<ts>.jpg``) → monocular, with the video
      ``<root>/<name>.mp4`` when it exists.

    A folder is described from its camera videos or, when it has none, from its extracted frames; the
    entry's ``videos`` are then empty.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise VhapError(f"not a video file (expected one of {VIDEO_SUFFIXES})", path=path)
        m = _CAM_VIDEO.match(path.stem)
        if m:  # one camera of a multi-camera folder: describe the folder, keep only this camera
            folder = path.parent.parent if path.parent.name == "images" else path.parent
            e = locate(folder)
            e.cameras, e.videos = [m.group(1)], {m.group(1): path}
            return e
        return SequenceEntry(
            "monocular", path.parent, None, path.stem, path.parent / path.stem, [MONOCULAR_CAMERA], {"0": path}
        )
    if not path.is_dir():
        raise VhapError("no such video file or sequence folder", path=path)
    path = path.resolve()
    if path.parent.name == "sequences":
        layout, root, subject = "nersemble_v2", path.parent.parent.parent, path.parent.parent.name
    elif (path.parent.parent / "camera_params").is_dir():
        layout, root, subject = "nersemble_v1", path.parent.parent, path.parent.name
    else:
        layout, root, subject = "multicamera", path.parent, None
    entry = _entry(layout, root, subject, path.name, path)
    if entry.cameras:
        return entry
    if layout == "multicamera" and _has_frames(path):
        videos = [path.parent / f"{path.name}{s}" for s in VIDEO_SUFFIXES]
        video = next((v for v in videos if v.is_file()), None)
        return SequenceEntry(
            "monocular", root, None, path.name, path, [MONOCULAR_CAMERA], {MONOCULAR_CAMERA: video} if video else {}
        )
    raise VhapError(
        "no camera videos or extracted frames found (expected cam_<serial>.mp4 here or in images/, or images[_<n>]/)",
        path=path,
        fix="pass a .mp4 file for monocular data, a folder of cam_<serial>.mp4 files or a preprocessed sequence folder",
    )


def _has_frames(folder: Path) -> bool:
    """Whether ``folder`` holds an ``images``/``images_<n>`` folder with at least one JPEG/PNG frame."""
    for d in _visible_dirs(folder):
        if d.name == "images" or re.fullmatch(r"images_\d+", d.name):
            with os.scandir(d.path) as it:
                if any(os.path.splitext(e.name)[1].lower() in (".jpg", ".jpeg", ".png") for e in it):
                    return True
    return False


def list_frames(images_dir: Path, multi: bool | None = None) -> dict[str | None, dict[str, Path]]:
    """camera (None for monocular) → timestep id → path, from one directory listing.

    ``multi`` None infers the naming: multi-camera when every frame is named ``cam_<serial>_<ts>``.
    """
    if not images_dir.is_dir():
        raise VhapError(
            "frame folder not found",
            path=images_dir,
            fix="run `vhap preprocess` with the matching --downsample, or pick another --data.downsample",
        )
    out: dict[str | None, dict[str, Path]] = {}
    with os.scandir(images_dir) as it:
        entries = [e for e in it if not e.name.startswith(".")]
    stems = [os.path.splitext(e.name) for e in entries]
    if multi is None:
        images = [s for s, ext in stems if ext.lower() in (".jpg", ".jpeg", ".png")]
        multi = bool(images) and all(parse_frame_stem(s)[0] is not None for s in images)
    for e, (stem, ext) in zip(entries, stems, strict=True):
        if ext.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        cam, ts = parse_frame_stem(stem)
        if not multi:
            cam, ts = None, stem
        elif cam is None:
            continue
        out.setdefault(cam, {})[ts] = Path(e.path)
    if not out:
        raise VhapError("no frames (*.jpg) in the frame folder", path=images_dir, fix="re-run `vhap preprocess`")
    return out
