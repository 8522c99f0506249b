"""Image and mask files of an export: reading frames/mattes, compositing, encoding, hard links.

Images are uint8 ``(H, W, 3)`` RGB with row 0 = top; mattes are float32 ``(H, W)`` in [0, 1].
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from vhap.errors import VhapError

BACKGROUND_RGB = {"white": (255, 255, 255), "black": (0, 0, 0)}
#: file suffixes accepted as "already in the requested format" when hard-linking frames
FORMAT_SUFFIXES = {"png": (".png",), "jpg": (".jpg", ".jpeg")}


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise VhapError("image not found", path=path, fix="re-run preprocessing/tracking, or fix frames.json")
    try:
        img = Image.open(path)
        img.load()
        return img
    except Exception as e:
        raise VhapError(f"cannot read image ({e})", path=path, fix="re-extract the frame") from e


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header (no decode)."""
    if not path.is_file():
        raise VhapError("image not found", path=path, fix="re-run preprocessing/tracking, or fix frames.json")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except Exception as e:
        raise VhapError(f"cannot read image header ({e})", path=path, fix="re-extract the frame") from e
    return h, w


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8, resized (bilinear) to ``size`` = (H, W) if given and different."""
    img = _open(path).convert("RGB")
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def read_alpha(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the alpha channel of an RGBA/LA file, else the luminance of the matte."""
    img = _open(path)
    if img.mode in ("RGBA", "LA"):
        img = img.getchannel("A")
    elif img.mode == "F":
        pass
    else:
        img = img.convert("L")
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    return arr if img.mode == "F" else arr / 255.0


def composite(rgb: np.ndarray, alpha: np.ndarray, background: str) -> np.ndarray:
    """``a * rgb + (1 - a) * bg`` with bg = ``white`` | ``black``; uint8 in and out."""
    bg = np.asarray(BACKGROUND_RGB[background], dtype=np.float32)
    a = alpha[..., None]
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray, fmt: str, jpeg_quality: int = 95) -> None:
    """Encode an (H, W, 3) uint8 image as PNG or JPEG (``fmt`` = ``png`` | ``jpg``)."""
    img = Image.fromarray(rgb)
    if fmt == "jpg":
        img.save(path, format="JPEG", quality=jpeg_quality)
    else:
        img.save(path, format="PNG", compress_level=4)


def write_mask(path: Path, alpha: np.ndarray) -> None:
    """Write an (H, W) matte in [0, 1] as an 8-bit grey PNG."""
    Image.fromarray(np.clip(np.round(alpha * 255.0), 0, 255).astype(np.uint8), mode="L").save(path, format="PNG")


def link_or_copy(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst``; copy when linking is impossible (other filesystem, no link support).

    Returns True when a hard link was made.
    """
    try:
        os.link(src, dst)
        return True
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise VhapError(f"cannot link {src} ({e})", path=dst, fix="check permissions of the target") from e
    shutil.copyfile(src, dst)
    return False
