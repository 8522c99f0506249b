"""CPU cost of preprocessing per image and per 16-view frame set, projected to NeRSemble v2.

    python bench/preprocess_cost.py [--frames 8] [--out bench/results/preprocess_cost_cpu.json]

Two inputs, each run through the library entry points the `vhap` subcommands call, in this process:

- a NeRSemble-v2-like 16-camera sequence: ``--frames`` frames of the carphone clip cropped to NeRSemble's
  portrait aspect, upscaled (bicubic) to its 2200×3208 and encoded as one H.264 video per camera, with
  background plates and calibration in the v2 layout; then frame extraction with the `nersemble`
  preprocess preset (25 fps, decoded straight to DS4), matting with background plates and with MediaPipe, and
  MediaPipe landmarks on the DS4 frames;
- the carphone clip (176×144, 120 frames): extraction, MediaPipe matting and landmarks.

Cost = CPU seconds (user + system, this process and its children: ffmpeg runs as a child) per image, so the
figure does not depend on how many cores the machine has. The upscaled frames are smoother than real
footage, which makes H.264 decoding somewhat cheaper than on real NeRSemble videos: the extraction figure is a
lower bound (the per-frame decode of a 3208×2200 frame is the bulk of it either way).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: NeRSemble v2: sequences and (rounded) frames per sequence at 25 fps that the projection assumes
NERSEMBLE_V2_SEQUENCES = 10_800
FRAMES_PER_SEQUENCE = 150
CAMERAS = 16


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(fn) -> dict:
    c0, w0 = cpu_seconds(), time.perf_counter()
    fn()
    return {"cpu_s": cpu_seconds() - c0, "wall_s": time.perf_counter() - w0}


def make_v2_sequence(work: Path, frames: int) -> Path:
    """A NeRSemble v2 tree: 16 camera videos at 2200×3208 (W×H) from the carphone clip, plates, calibration.

    Each camera's video is the clip's first ``frames`` frames, centre-cropped to NeRSemble's portrait aspect,
    upscaled (bicubic) to full resolution and shifted a little per camera; the calibration is the test fixtures'
    16-camera arc. A real face, so that the detectors do their real work on every image.
    """
    import av
    import numpy as np
    from PIL import Image

    from bench.preprocess import carphone
    from tests.fixtures_nersemble import SERIALS, arc_cameras, read_video_frames

    H, W = 3208, 2200
    root = work / "nersemble_v2"
    subj = root / "999"
    seq = subj / "sequences" / "EXP-1_head"
    (seq / "images").mkdir(parents=True)
    (subj / "calibration").mkdir(parents=True)
    K = [[1.8 * W, 0.0, W / 2], [0.0, 1.8 * W, H / 2], [0.0, 0.0, 1.0]]
    w2c = {s: m.tolist() for s, m in zip(SERIALS[:CAMERAS], arc_cameras(CAMERAS), strict=True)}
    (subj / "calibration" / "camera_params.json").write_text(
        json.dumps({"intrinsics": K, "world_2_cam": w2c, "height": H, "width": W})
    )
    (subj / "sequences" / "BACKGROUND").mkdir(parents=True)
    base = []
    for f in read_video_frames(carphone(), frames):
        h, w = f.shape[:2]
        cw = int(round(h * W / H))  # portrait crop of the landscape clip
        x0 = (w - cw) // 2
        base.append(Image.fromarray(np.ascontiguousarray(f[:, x0 : x0 + cw])).resize((W, H), Image.BICUBIC))
    plate = Image.new("RGB", (W, H), (128, 128, 128))
    for i, cam in enumerate(SERIALS[:CAMERAS]):
        plate.save(subj / "sequences" / "BACKGROUND" / f"image_{cam}.jpg", quality=95)
        with av.open(str(seq / "images" / f"cam_{cam}.mp4"), "w") as c:
            st = c.add_stream("libx264", rate=25)
            st.width, st.height, st.pix_fmt = W, H, "yuv420p"
            st.options = {"crf": "18", "preset": "ultrafast"}
            for img in base:
                arr = np.roll(np.asarray(img), 8 * (i - 8), axis=1)
                for pkt in st.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)
    return seq


def run_nersemble(work: Path, frames: int) -> dict:
    from vhap.config import config_from_dict, load_preset
    from vhap.preprocess.extract import PreprocessConfig, preprocess
    from vhap.preprocess.landmarks import LandmarkConfig, detect_landmarks
    from vhap.preprocess.matting import MattingConfig, run_matting

    t0 = time.perf_counter()
    seq = make_v2_sequence(work, frames)
    make_s = time.perf_counter() - t0
    pcfg = config_from_dict(PreprocessConfig, load_preset("preprocess", "nersemble"))
    pcfg.input = seq
    st = {"extract_ds4": measure(lambda: preprocess(pcfg))}
    n = len(list((seq / "images_4").glob("*.jpg")))
    st["matting_background"] = measure(
        lambda: run_matting(MattingConfig(folder=seq, method="background", downsample=4))
    )
    st["matting_mediapipe"] = measure(
        lambda: run_matting(MattingConfig(folder=seq, method="mediapipe", downsample=4))
    )
    st["landmarks_mediapipe"] = measure(lambda: detect_landmarks(LandmarkConfig(folder=seq, downsample=4)))
    per_img = {k: v["cpu_s"] / n for k, v in st.items()}
    chain = per_img["extract_ds4"] + per_img["matting_background"] + per_img["landmarks_mediapipe"]
    return {
        "images": n,
        "frames": frames,
        "cameras": CAMERAS,
        "video_size_hw": [3208, 2200],
        "make_input_s": make_s,
        "stages": st,
        "cpu_s_per_image": per_img,
        "chain": "extract_ds4 + matting_background + landmarks_mediapipe",
        "cpu_s_per_frame_set": chain * CAMERAS,
        "cpu_s_per_frame_set_with_mediapipe_matting": (chain - per_img["matting_background"]
                                                       + per_img["matting_mediapipe"]) * CAMERAS,
        "target_cpu_s_per_frame_set": 20.0,
        "cpu_hours_nersemble_v2": chain * CAMERAS * FRAMES_PER_SEQUENCE * NERSEMBLE_V2_SEQUENCES / 3600.0,
    }  # fmt: skip


def run_carphone(work: Path) -> dict:
    from bench.preprocess import carphone
    from vhap.preprocess.extract import PreprocessConfig, preprocess
    from vhap.preprocess.landmarks import LandmarkConfig, detect_landmarks
    from vhap.preprocess.matting import MattingConfig, run_matting

    src = work / "carphone.mp4"
    shutil.copy(carphone(), src)
    seq = work / "carphone"
    st = {"extract": measure(lambda: preprocess(PreprocessConfig(input=src, fps=None)))}
    n = len(list((seq / "images").glob("*.jpg")))
    st["matting_mediapipe"] = measure(lambda: run_matting(MattingConfig(folder=seq)))
    st["landmarks_mediapipe"] = measure(lambda: detect_landmarks(LandmarkConfig(folder=seq)))
    per_img = {k: v["cpu_s"] / n for k, v in st.items()}
    return {"images": n, "size": [176, 144], "stages": st, "cpu_s_per_image": per_img}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/preprocess_cost.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=8, help="frames per camera of the 16-view sequence")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "preprocess_cost_cpu.json")
    ap.add_argument("--skip-carphone", action="store_true")
    args = ap.parse_args(argv)
    if args.frames < 1:
        print("preprocess_cost: error: --frames must be >= 1", file=sys.stderr)
        return 2
    from bench.run import hardware_info

    work = Path(tempfile.mkdtemp(prefix="vhap_prep_cost_"))
    try:
        res = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "host": platform.node(),
            "hardware": hardware_info("cpu"),
            "bench_command": "python bench/preprocess_cost.py " + " ".join(argv or sys.argv[1:]),
            "nersemble_16view": run_nersemble(work, args.frames),
        }
        if not args.skip_carphone:
            res["carphone"] = run_carphone(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    ns = res["nersemble_16view"]
    print(json.dumps(ns["cpu_s_per_image"], indent=1))
    print(f"16-view frame set: {ns['cpu_s_per_frame_set']:.2f} CPU-s (target 20); NeRSemble v2: "
          f"{ns['cpu_hours_nersemble_v2']:.0f} CPU-hours; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
