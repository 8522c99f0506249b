"""Parallel JPEG/PNG decoding into resident uint8 arrays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from vhap.errors import VhapError

cv2.setNumThreads(1)


#: the last bytes of a complete file: JPEG's end-of-image marker, PNG's IEND chunk (type + CRC)
_END_MARKERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND\xaeB`\x82"}


def check_complete(path: str | Path) -> None:
    """Raise when a JPEG/PNG file lacks its end marker: a truncated file (an interrupted copy, a full disk).

    OpenCV decodes such a file without an error (the missing rows grey), PIL only with LOAD_TRUNCATED_IMAGES;
    both would hand a half-grey frame to matting, landmarks and tracking. Trailing zero padding is tolerated.
    """
    marker = _END_MARKERS.get(Path(path).suffix.lower())
    if marker is None:
        return
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read().rstrip(b"\x00")
    except FileNotFoundError:
        return  # reported by the reader
    if not tail.endswith(marker):
        raise VhapError(
            "image file is truncated (no end-of-image marker)",
            path=path,
            fix="re-run `vhap preprocess` (or restore the file)",
        )


def read_rgb(path: str | Path) -> np.ndarray:
    """(H,W,3) uint8 RGB, row 0 = top. A truncated JPEG/PNG is an error (:func:`check_complete`)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VhapError("cannot read image (missing or corrupt)", path=path, fix="re-run `vhap preprocess`")
    check_complete(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_alpha(path: str | Path) -> np.ndarray:
    """(H,W) uint8 alpha (first channel of a grey/colour PNG or JPEG)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise VhapError("cannot read alpha map (missing or corrupt)", path=path, fix="re-run `vhap matting`")
    check_complete(path)
    if img.ndim == 3:
        img = img[..., 0]
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round().astype(np.uint8)
    return img


def write_rgb_jpeg(path: str | Path, rgb: np.ndarray, quality: int = 95) -> None:
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise VhapError("cannot write image", path=path)


def write_alpha_png(path: str | Path, alpha: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(alpha, dtype=np.uint8)):
        raise VhapError("cannot write alpha map", path=path)


def resize(img: np.ndarray, size: tuple[int, int], interpolation: int | None = None) -> np.ndarray:
    """Resize (H,W[,C]) to ``size`` (H,W); area filter when shrinking, bilinear when enlarging."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    if interpolation is None:
        interpolation = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interpolation)


def read_many(paths: list[Path], reader, num_workers: int = 4, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Decode ``paths`` with ``reader`` in threads (OpenCV releases the GIL); optional resize to ``size``."""

    def one(p):
        img = reader(p)
        return img if size is None else resize(img, size)

    if num_workers <= 1 or len(paths) < 4:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(num_workers) as pool:
        return list(pool.map(one, paths))
