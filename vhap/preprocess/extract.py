"""``vhap preprocess``: videos → JPEG frames at the resolutions tracking needs (+ colour correction)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro
from tqdm import tqdm

from vhap.config.core import AT_LEAST_ONE, POSITIVE, Range
from vhap.data.layout import frame_stem, images_dir_name, locate
from vhap.errors import VhapError
from vhap.preprocess.colour import load_colour_corrections
from vhap.preprocess.video import VideoInfo, extract_frames, output_size, probe_video
from vhap.utils.atomic import make_temp_dir, write_text_atomic


@dataclass
class PreprocessConfig:
    """Extract frames from a monocular video or a folder of synchronised ``cam_<serial>.mp4`` videos."""

    input: Annotated[Path | None, tyro.conf.Positional] = None
    """a video file (monocular), a folder of image frames (PNG/JPEG/..., natural order; monocular) or a sequence
    folder holding cam_<serial>.mp4 (here or in images/)"""
    fps: float | None = 25.0
    """output frame rate (None, 0 or ≥ the source rate keeps every frame)"""
    downsample: Annotated[tuple[int, ...], AT_LEAST_ONE] = (1,)
    """integer scales to write, each decoded straight to its size: 1 → images/, 4 → images_4/"""
    colour_correction: Literal["auto", "off"] = "auto"
    """auto: apply NeRSemble v1/v2 colour correction when the subject has it"""
    quality: Annotated[int, Range(ge=1, le=100)] = 95
    """JPEG quality (1-100)"""
    output: Path | None = None
    """sequence folder to write into (default: next to the video / the input folder itself)"""
    source_fps: Annotated[float | None, POSITIVE] = None
    """frame rate of an image-folder input (recorded in meta.json; with a lower --fps frames are dropped to it;
    unknown: every frame kept, fps null)"""
    cameras: tuple[str, ...] = ()
    """only these camera serials (default: all)"""
    allow_truncated_video: bool = False
    """keep the frames of a video that ends before its header's frame count (a warning, recorded in meta.json)"""


def _commit(tmp: Path, out: Path) -> None:
    """Make ``tmp``'s frames appear at ``out``: a rename when ``out`` holds nothing else, file moves otherwise.

    NeRSemble v2 keeps its raw videos in ``images/``, which must never be deleted; there the frames are
    moved in one by one and ``meta.json`` is moved last (it marks the folder as complete).
    """
    keep = [p for p in out.iterdir() if p.suffix.lower() in (".mp4", ".mov", ".mkv", ".avi")] if out.is_dir() else []
    if not keep:
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return
    for p in out.iterdir():
        if p not in keep:
            p.unlink() if p.is_file() else shutil.rmtree(p)
    for p in sorted(tmp.iterdir(), key=lambda p: p.name == "meta.json"):
        os.replace(p, out / p.name)
    tmp.rmdir()


def expected_frame_count(info: VideoInfo, fps: float | None) -> int:
    """Frames a complete video gives: the header's count, resampled to ``fps`` when that is below the source's."""
    if fps and fps < info.fps - 1e-3:
        return int(info.num_frames * fps / info.fps)
    return info.num_frames


def check_frame_counts(
    counts: dict, infos: dict, videos: dict, fps: float | None, allow: bool
) -> dict[str, dict[str, int]]:
    """Compare decoded frames with what each video's header promises; a video that ends early (a truncated
    file whose index is intact) is an error, or with ``allow`` a loud warning. Returns the short ones."""
    short = {}
    for cam, k in counts.items():
        want = expected_frame_count(infos[cam], fps)
        # the fps filter may round a frame or two either way; a count estimated from rate x duration is looser
        slack = max(2, int((0.02 if infos[cam].counted else 0.1) * want))
        if k < want - slack:
            short[cam] = {"expected": want, "decoded": k}
    for cam, c in short.items():
        video = videos[cam]
        if not allow:
            raise VhapError(
                f"video ends early: {c['decoded']} frames decoded, its header promises {c['expected']} "
                "(a truncated file)",
                path=video,
                fix="re-copy the complete video, or pass --allow-truncated-video to keep the decoded frames",
            )
        import sys

        print(
            f"vhap preprocess: warning: {video}: truncated - {c['decoded']} of {c['expected']} frames decoded; "
            "kept (recorded as truncated_videos in meta.json)",
            file=sys.stderr,
        )
    return short


def preprocess(cfg: PreprocessConfig) -> dict[int, Path]:
    """Run frame extraction; returns {downsample: output folder}."""
    if cfg.input is None:
        raise VhapError("no input given", fix="vhap preprocess <video.mp4 | sequence folder>")
    from vhap.preprocess import image_folder as frames_in  # a folder of image frames instead of videos

    if frames_in.is_image_folder(cfg.input):
        if cfg.cameras:
            raise VhapError("a folder of image frames is one monocular camera", path=cfg.input, fix="drop --cameras")
        return frames_in.preprocess_image_folder(
            cfg.input, cfg.output, cfg.downsample, cfg.fps or None, cfg.source_fps, cfg.quality
        )
    if Path(cfg.input).is_dir() and frames_in.is_image_folder(Path(cfg.input) / "images"):
        frames_in.check_unconverted_frames(Path(cfg.input))
    if not (1 <= cfg.quality <= 100):
        raise VhapError(f"quality must be within 1..100, got {cfg.quality}")
    if not cfg.downsample or any(s < 1 for s in cfg.downsample):
        raise VhapError(f"downsample scales must be integers ≥ 1, got {cfg.downsample}")
    entry = locate(cfg.input)
    if not entry.videos:
        raise VhapError(
            "no videos to extract frames from (expected cam_<serial>.mp4 here or in images/)",
            path=entry.folder,
            fix="pass a .mp4 file for monocular data or a folder of cam_<serial>.mp4 files",
        )
    multi = entry.layout != "monocular"
    videos = dict(entry.videos)
    if cfg.cameras:
        missing = [c for c in cfg.cameras if c not in videos]
        if missing:
            raise VhapError(f"no videos for cameras {missing}; found {sorted(videos)}", path=entry.folder)
        videos = {c: videos[c] for c in cfg.cameras}
    folder = Path(cfg.output) if cfg.output else entry.folder
    infos = {c: probe_video(v) for c, v in videos.items()}
    corrections = {}
    if cfg.colour_correction == "auto":
        corrections = load_colour_corrections(entry.layout, entry.root, entry.subject or "", list(videos))
    fps = cfg.fps or None
    total = sum(i.num_frames for i in infos.values()) * len(cfg.downsample)
    outputs = {}
    with tqdm(total=total, desc=f"extract {entry.sequence}", unit="frame", disable=None) as bar:
        for s in sorted(set(cfg.downsample)):
            out = folder / images_dir_name(s)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = make_temp_dir(out.parent, prefix=f".{out.name}.", suffix=".tmpdir")
            try:
                cams_meta = {}
                counts = {}
                for cam, video in videos.items():
                    info = infos[cam]
                    size = output_size(info, s)
                    if min(size) < 1:
                        raise VhapError(f"downsample {s} leaves no pixels of a {info.width}x{info.height} video")
                    corr = corrections.get(cam)
                    prefix = cam if multi else None
                    counts[cam] = extract_frames(
                        video,
                        tmp,
                        lambda i, p=prefix: f"{frame_stem(p, f'{i:06d}')}.jpg",
                        size,
                        fps,
                        transform=None if corr is None else corr.apply,
                        quality=cfg.quality,
                        info=info,
                        progress=bar,
                    )
                    cams_meta[cam] = {
                        "video": str(video),
                        "source": info.to_dict(),
                        "size": list(size),
                        "num_frames": counts[cam],
                        "colour_correction": None if corr is None else corr.describe(),
                    }
                truncated = check_frame_counts(counts, infos, videos, fps, cfg.allow_truncated_video)
                n = min(counts.values())
                trimmed = {c: k - n for c, k in counts.items() if k > n}
                for cam, k in counts.items():  # cameras must share timesteps: drop a longer camera's tail
                    for i in range(n, k):
                        (tmp / f"{frame_stem(cam if multi else None, f'{i:06d}')}.jpg").unlink()
                src_fps = min(i.fps for i in infos.values())
                meta = {
                    "created_by": "vhap preprocess",
                    "layout": entry.layout,
                    "subject": entry.subject,
                    "sequence": entry.sequence,
                    "downsample": s,
                    "fps": fps if fps and fps < src_fps - 1e-3 else src_fps,
                    "source_fps": src_fps,
                    "num_frames": n,
                    "size": list(output_size(next(iter(infos.values())), s)),
                    "cameras": cams_meta,
                    "trimmed_frames": trimmed,
                    "colour_correction": (
                        None
                        if not corrections
                        else ("nersemble_v1_affine" if entry.layout == "nersemble_v1" else "nersemble_v2_ccm")
                    ),
                    "jpeg_quality": cfg.quality,
                    "truncated_videos": truncated,
                }
                write_text_atomic(tmp / "meta.json", json.dumps(meta, indent=1))
                _commit(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            outputs[s] = out
    return outputs
