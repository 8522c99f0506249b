"""Image-folder input for ``vhap preprocess``: a folder of PNG/JPEG/... frames → the same JPEG layout as a video.

Frames are taken in natural order of their file names (``frame_2.png`` before ``frame_10.png``), may
have any common image extension, must all have the same size, and are written as
``<output>/images[_<n>]/<000000>.jpg`` with the same ``meta.json`` a video gets. A folder of frames
carries no frame rate: ``--source-fps`` records it (and lets ``--fps`` drop frames); without it every
frame is kept and ``fps`` in ``meta.json`` is null.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: ``f2.png`` < ``f10.png``; ties broken by the plain name."""
    parts = _DIGITS.split(name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts) + ((2, 0, name),)


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (hidden files skipped), in natural order of their names."""
    folder = Path(folder)
    try:
        with os.scandir(folder) as it:
            names = [
                e.name
                for e in it
                if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
            ]
    except FileNotFoundError:
        return []
    return [folder / n for n in sorted(names, key=natural_key)]


def is_image_folder(path: str | Path) -> bool:
    """True for a folder that holds image frames itself (not a sequence folder of videos or of images/)."""
    path = Path(path)
    return path.is_dir() and bool(list_image_files(path))


@dataclass
class ImageFolderInfo:
    """What the frames of an image folder are: ``width``/``height`` of every frame, ``fps`` None if unknown."""

    path: str
    width: int
    height: int
    num_frames: int
    fps: float | None
    suffixes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def _image_size(path: Path) -> tuple[int, int]:
    """(W, H) from the file header (PIL reads no pixels here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # cv2.imread applies EXIF rotation: so must the size
                w, h = h, w
            return w, h
    except (UnidentifiedImageError, OSError) as e:
        raise VhapError(f"cannot read image: {e}", path=path, fix="remove or replace the broken frame") from e


def probe_image_folder(folder: str | Path, source_fps: float | None = None) -> tuple[ImageFolderInfo, list[Path]]:
    """Check that ``folder`` holds frames of one size; returns their description and the files in order."""
    folder = Path(folder)
    files = list_image_files(folder)
    if not files:
        raise VhapError(
            f"no image frames ({', '.join(IMAGE_SUFFIXES)}) in the folder",
            path=folder,
            fix="pass a folder of frames, a video file, or a folder of cam_<serial>.mp4 videos",
        )
    if source_fps is not None and not source_fps > 0:
        raise VhapError(f"source_fps must be > 0, got {source_fps}", fix="pass --source-fps 30 (or leave it out)")
    w, h = _image_size(files[0])
    for f in files[1:]:
        if _image_size(f) != (w, h):
            raise VhapError(
                f"frame size {_image_size(f)[0]}x{_image_size(f)[1]} differs from the first frame's {w}x{h} "
                f"({files[0].name})",
                path=f,
                fix="all frames of a sequence must have one size: crop/resize them alike or remove strays",
            )
    suffixes = sorted({f.suffix.lower() for f in files})
    return ImageFolderInfo(str(folder), w, h, len(files), source_fps, suffixes), files


def select_frames(num_frames: int, source_fps: float | None, fps: float | None) -> list[int]:
    """Indices of the source frames kept for output rate ``fps`` (every frame when either rate is unknown).

    Output frame k shows time k/fps, i.e. the nearest earlier-or-equal source frame floor(k·src/fps + ε).
    """
    if not source_fps or not fps or fps >= source_fps - 1e-3:
        return list(range(num_frames))
    step = source_fps / fps
    out, k = [], 0
    while True:
        i = int(np.floor(k * step + 1e-6))
        if i >= num_frames:
            return out
        out.append(i)
        k += 1


def read_frame(path: Path, size: tuple[int, int]) -> np.ndarray:
    """(H,W,3) uint8 RGB of ``path`` at ``size`` (H,W): 16-bit, grey and RGBA frames converted, area filter."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VhapError("cannot decode image (corrupt or unsupported)", path=path, fix="remove or replace the frame")
    h, w = size
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def extract_image_frames(
    files: list[Path],
    out_dir: Path,
    name,
    size: tuple[int, int],
    quality: int = 95,
    progress=None,
) -> int:
    """Write ``files`` (selected, in order) as ``out_dir/name(i)`` JPEGs of ``size`` (H,W); returns the count."""
    from concurrent.futures import ThreadPoolExecutor

    from vhap.data.images import write_rgb_jpeg

    def one(i: int, f: Path) -> None:
        write_rgb_jpeg(out_dir / name(i), read_frame(f, size), quality)

    with ThreadPoolExecutor(2) as pool:  # OpenCV releases the GIL while decoding/encoding
        for fut in [pool.submit(one, i, f) for i, f in enumerate(files)]:
            fut.result()
            if progress is not None:
                progress.update(1)
    return len(files)


def check_not_overwriting(source: Path, outputs: list[Path]) -> None:
    """Refuse an output frame folder that is or holds the source frames' folder (its replacement would delete them)."""
    src = Path(source).resolve()
    for out in outputs:
        o = out.resolve()
        if o == src or o in src.parents:
            raise VhapError(
                f"the frames would be written over their own source folder ({out})",
                path=source,
                fix=f"move the frames aside first, e.g. `mv {source} {source.parent / 'frames'}` and run "
                f"`vhap preprocess {source.parent / 'frames'} --output {source.parent}`",
            )


def preprocess_image_folder(
    folder: Path,
    output: Path | None,
    downsample: tuple[int, ...] = (1,),
    fps: float | None = None,
    source_fps: float | None = None,
    quality: int = 95,
) -> dict[int, Path]:
    """Frames of ``folder`` → ``output/images[_<n>]/`` (default output: ``folder`` itself); {downsample: folder}.

    Each scale is written to a temporary folder and renamed into place, so an interrupted run leaves the
    previous result (or nothing).
    """
    import json

    from tqdm import tqdm

    from vhap.data.layout import MONOCULAR_CAMERA, images_dir_name
    from vhap.utils.atomic import atomic_dir, write_text_atomic

    folder = Path(folder)
    if not 1 <= quality <= 100:
        raise VhapError(f"quality must be within 1..100, got {quality}")
    if not downsample or any(s < 1 for s in downsample):
        raise VhapError(f"downsample scales must be integers ≥ 1, got {downsample}")
    if re.fullmatch(r"images(_\d+)?", folder.name) and output is None:
        raise VhapError(
            f"a frame folder named '{folder.name}' is where `vhap preprocess` writes its own frames",
            path=folder,
            fix=f"move the frames aside (`mv {folder} {folder.parent / 'frames'}`) and run "
            f"`vhap preprocess {folder.parent / 'frames'} --output {folder.parent}`",
        )
    seq_dir = Path(output) if output is not None else folder
    scales = sorted(set(downsample))
    check_not_overwriting(folder, [seq_dir / images_dir_name(s) for s in scales])
    info, files = probe_image_folder(folder, source_fps)
    keep = select_frames(len(files), source_fps, fps)
    chosen = [files[i] for i in keep]
    outputs: dict[int, Path] = {}
    with tqdm(total=len(chosen) * len(scales), desc=f"frames {folder.name}", unit="frame", disable=None) as bar:
        for s in scales:
            size = (info.height // s, info.width // s)
            if min(size) < 1:
                raise VhapError(f"downsample {s} leaves no pixels of {info.width}x{info.height} frames", path=folder)
            out = seq_dir / images_dir_name(s)
            with atomic_dir(out) as tmp:
                n = extract_image_frames(chosen, tmp, lambda i: f"{i:06d}.jpg", size, quality, bar)
                out_fps = fps if (source_fps and fps and fps < source_fps - 1e-3) else source_fps
                meta = {
                    "created_by": "vhap preprocess",
                    "layout": "monocular",
                    "subject": None,
                    "sequence": seq_dir.resolve().name,
                    "downsample": s,
                    "fps": out_fps,
                    "source_fps": source_fps,
                    "num_frames": n,
                    "size": list(size),
                    "cameras": {
                        MONOCULAR_CAMERA: {
                            "video": None,
                            "images": str(folder.resolve()),
                            "source": info.to_dict(),
                            "size": list(size),
                            "num_frames": n,
                            "colour_correction": None,
                            "source_frames": [f.name for f in chosen],
                        }
                    },
                    "trimmed_frames": {},
                    "colour_correction": None,
                    "jpeg_quality": quality,
                }
                write_text_atomic(tmp / "meta.json", json.dumps(meta, indent=1))
            outputs[s] = out
    return outputs


def check_unconverted_frames(seq: Path) -> None:
    """Raise the clear error for a sequence folder whose images/ holds user frames (not `vhap preprocess` output)."""
    frames = Path(seq) / "images"
    if (frames / "meta.json").is_file():
        return
    from vhap.data.layout import VIDEO_SUFFIXES

    if any(p.suffix.lower() in VIDEO_SUFFIXES for p in frames.iterdir()):
        return  # NeRSemble v2 keeps its videos in images/
    raise VhapError(
        "images/ holds image frames that `vhap preprocess` did not write; it would replace them with its own",
        path=frames,
        fix=f"move them aside and convert: `mv {frames} {Path(seq) / 'frames'} && vhap preprocess "
        f"{Path(seq) / 'frames'} --output {seq}`",
    )
