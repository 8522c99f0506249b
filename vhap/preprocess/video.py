"""Video probing (PyAV) and frame extraction (ffmpeg through ffmpeg-python; no ffprobe needed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vhap.errors import VhapError


@dataclass
class VideoInfo:
    """What PyAV reports. ``width``/``height`` are the displayed size (after rotation metadata)."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    codec: str
    rotation: int = 0
    counted: bool = True
    """``num_frames`` is the container's frame count (False: estimated from the rate and the duration)"""

    def to_dict(self) -> dict:
        return asdict(self)


def ffmpeg_executable() -> str:
    """``ffmpeg`` from PATH, else the static binary shipped in the imageio-ffmpeg wheel."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # noqa: BLE001
        raise VhapError(
            f"no ffmpeg found ({e})", fix="pip install imageio-ffmpeg (ships a static ffmpeg) or install ffmpeg"
        ) from e


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` with PyAV and report size, frame rate, frame count; raise on unreadable/empty files."""
    import av

    path = Path(path)
    fix = "check that the file is a complete, playable video (re-download or re-copy it)"
    if not path.is_file():
        raise VhapError("video not found", path=path)
    if path.stat().st_size == 0:
        raise VhapError("video file is empty (0 bytes)", path=path, fix=fix)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VhapError("file has no video stream", path=path, fix=fix)
            s = container.streams.video[0]
            cc = s.codec_context
            rate = s.average_rate or s.guessed_rate or s.base_rate
            duration = float(s.duration * s.time_base) if s.duration else (container.duration or 0) / 1e6
            n = int(s.frames or 0)
            counted = n > 0
            first = next(container.decode(s), None)
            if first is None:
                raise VhapError("video contains no decodable frame", path=path, fix=fix)
            rotation = int(getattr(first, "rotation", 0) or 0) % 360
            fps = float(rate) if rate else (n / duration if n and duration else 0.0)
            if n == 0 and fps and duration:
                n = int(round(fps * duration))
            w, h = int(cc.width or first.width), int(cc.height or first.height)
    except VhapError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many error types for broken files
        raise VhapError(f"cannot read video: {e}", path=path, fix=fix) from e
    if rotation in (90, 270):
        w, h = h, w
    if fps <= 0:
        raise VhapError("cannot determine the frame rate", path=path, fix=fix)
    return VideoInfo(str(path), w, h, fps, n, duration, cc.name, rotation, counted)


def output_size(info: VideoInfo, downsample: int) -> tuple[int, int]:
    """(H, W) of frames extracted with integer ``downsample`` (floor, like VHAP's ``W//s : H//s``)."""
    return info.height // downsample, info.width // downsample


def iter_frames(
    path: str | Path,
    size: tuple[int, int],
    fps: float | None = None,
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``path`` straight to (H,W,3) uint8 RGB frames of ``size`` with ffmpeg (fps + area scale filters).

    ``fps`` None or ≥ the source rate keeps every frame (no duplication).
    """
    import ffmpeg

    info = info or probe_video(path)
    h, w = size
    stream = ffmpeg.input(str(path))
    if fps and fps < info.fps - 1e-3:
        stream = stream.filter("fps", fps=fps)
    if (h, w) != (info.height, info.width):
        stream = stream.filter("scale", w, h, flags="area")
    proc = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", loglevel="error").run_async(
        cmd=ffmpeg_executable(), pipe_stdout=True, pipe_stderr=True
    )
    nbytes = h * w * 3
    try:
        while True:
            buf = proc.stdout.read(nbytes)
            if len(buf) < nbytes:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise VhapError(f"ffmpeg failed (exit {rc}): {err.strip()[-500:]}", path=path)


def extract_frames(
    path: str | Path,
    out_dir: Path,
    name: Callable[[int], str],
    size: tuple[int, int],
    fps: float | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    quality: int = 95,
    info: VideoInfo | None = None,
    progress=None,
) -> int:
    """Write every decoded frame as ``out_dir/name(i)`` JPEG; returns the frame count.

    Encoding runs in a small thread pool (OpenCV releases the GIL) while ffmpeg keeps decoding.
    """
    from concurrent.futures import ThreadPoolExecutor

    from vhap.data.images import write_rgb_jpeg

    count = 0
    with ThreadPoolExecutor(2) as pool:
        pending = []
        for i, frame in enumerate(iter_frames(path, size, fps, info)):
            img = transform(frame) if transform is not None else frame
            pending.append(pool.submit(write_rgb_jpeg, out_dir / name(i), img, quality))
            count += 1
            if progress is not None:
                progress.update(1)
            if len(pending) > 16:
                pending.pop(0).result()
        for f in pending:
            f.result()
    if count == 0:
        raise VhapError("no frames could be decoded", path=path, fix="check that the video is playable")
    return count
