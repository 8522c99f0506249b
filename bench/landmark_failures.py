"""Failed landmarks on wide-open mouths (issue 15 item 4): do they still hold the jaw shut?

The carphone detections are right on its wide-open mouths, so the failure MediaPipe shows on other clips (the
lower lip and the chin placed inside the open mouth) is reproduced on them: on every frame whose detected
inner-lip gap exceeds ``--open-gap`` eye distances, the lower-lip points (55-59, 64-67) are moved up until the
inner gap is ``--failed-gap``, and the chin/jaw points (5-11) by the same amount. Then ``vhap landmarks``'
quality checks (vhap.preprocess.landmarks.quality) set the per-point confidences from the image, and the clip
is tracked twice with the ``demo`` preset: as VHAP does (L1, binary confidences) and with the confidences and
the robust penalty (the presets' setting). Both runs are scored against the *uncorrupted* detections (mouth
NME, model mouth gap).

    python bench/landmark_failures.py --out-dir bench/results     # CPU, half resolution, frames 45-74
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for p in (str(REPO), str(REPO / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import realvideo as rv  # noqa: E402
from run import hardware_info  # noqa: E402

from vhap.config import parse_config  # noqa: E402
from vhap.preprocess.landmarks.quality import CHIN, LOWER_LIP, eye_distance, frame_confidence  # noqa: E402
from vhap.utils.atomic import write_text_atomic  # noqa: E402


@dataclass
class FailureBenchConfig:
    data_dir: Path = Path("output/bench_data")
    out_dir: Path = Path("bench/results")
    name: str = "landmark_failures_demo_cpu"
    first: int = 45
    """first carphone frame kept"""
    count: int = 30
    """frames kept (the default window holds the wide-open mouths of frames 57-61)"""
    open_gap: float = 0.3
    failed_gap: float = 0.06
    track_preset: str = "demo"
    """`vhap track` preset both runs use (`--preset` itself is the config system's flag)"""
    device: str = "cpu"
    full_resolution: bool = False
    robust_args: tuple[str, ...] = (
        "--model.landmark-confidence", "detector", "--w.landmark-robust", "geman_mcclure",
    )  # fmt: skip
    vhap_args: tuple[str, ...] = ("--model.landmark-confidence", "binary", "--w.landmark-robust", "l1")
    """VHAP's landmark term (the monocular/demo presets use ``robust_args``' settings)"""


def corrupt(lmk: np.ndarray, size: tuple[int, int], open_gap: float, failed_gap: float) -> tuple[np.ndarray, int]:
    """(T,68,3) normalised detections with the lower face of wide-open frames moved into the mouth; returns the
    corrupted copy and the number of frames changed."""
    H, W = size
    out = lmk.copy()
    n = 0
    for t in range(len(lmk)):
        px = lmk[t, :, :2] * (W, H)
        iod = eye_distance(px)
        gap = (px[66, 1] - px[62, 1]) / iod
        if lmk[t, 0, 2] <= 0 or gap <= open_gap:
            continue
        shift = (gap - failed_gap) * iod / H
        out[t, list(LOWER_LIP + CHIN), 1] -= shift
        n += 1
    return out, n


def build(cfg: FailureBenchConfig) -> tuple[Path, Path, int]:
    """The window of carphone as its own sequence with corrupted landmarks (+ quality confidences); returns
    (sequence folder, the uncorrupted landmark file, corrupted frames)."""
    src, _ = rv.prepare_clip(rv.CLIPS["carphone"], cfg.data_dir / "realvideo")
    root = cfg.data_dir / "landmark_failures"
    seq = root / "carphone_failed_jaw"
    if seq.exists():
        shutil.rmtree(seq)
    keep = [f"{i:06d}" for i in range(cfg.first, cfg.first + cfg.count)]
    for sub, ext in (("images", "jpg"), ("images_2", "jpg"), ("alpha_maps", "png")):
        (seq / sub).mkdir(parents=True)
        for ts in keep:
            shutil.copyfile(src / sub / f"{ts}.{ext}", seq / sub / f"{ts}.{ext}")
    with np.load(src / "landmark2d" / "mediapipe.npz") as z:
        arrays = {k: z[k] for k in z.files}
    ids = [str(s) for s in arrays["timestep_id"]]
    rows = [ids.index(ts) for ts in keep]
    for k, v in list(arrays.items()):
        if v.ndim >= 1 and v.shape[0] == len(ids):
            arrays[k] = v[rows]
    (seq / "landmark2d").mkdir()
    reference = seq / "landmark2d" / "reference_uncorrupted.npz"
    np.savez(reference, **arrays)
    from vhap.data.images import read_alpha, read_rgb

    first = read_rgb(seq / "images" / f"{keep[0]}.jpg")
    H, W = first.shape[:2]
    bad, n = corrupt(arrays["face_landmark_2d"], (H, W), cfg.open_gap, cfg.failed_gap)
    flags = np.zeros((len(keep), 68), np.uint8)
    for t, ts in enumerate(keep):  # the quality checks of `vhap landmarks`, on the corrupted points
        rgb = read_rgb(seq / "images" / f"{ts}.jpg")
        matte = read_alpha(seq / "alpha_maps" / f"{ts}.png") / 255.0
        bad[t, :, 2], flags[t], _ = frame_confidence(rgb, bad[t, :, :2] * (W, H), matte)
    arrays["face_landmark_2d"] = bad
    arrays["landmark_flags"] = flags
    arrays.pop("mediapipe_478", None)  # the iBUG-68 points drive the demo preset; keep the file consistent
    arrays.pop("mediapipe_478_z", None)
    arrays.pop("mediapipe_to_ibug68", None)
    np.savez(seq / "landmark2d" / "mediapipe.npz", **arrays)
    return seq, reference, n


def main(argv: list[str] | None = None) -> int:
    import subprocess

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(FailureBenchConfig, argv, prog="bench/landmark_failures.py")
    seq, reference, n_bad = build(cfg)
    with np.load(seq / "landmark2d" / "mediapipe.npz") as z:
        flagged = z["landmark_flags"]
        conf = z["face_landmark_2d"][..., 2]
    variants = {"vhap_l1": list(cfg.vhap_args), "confidence_robust": list(cfg.robust_args)}
    result = {
        "name": cfg.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware_info(cfg.device),
        "bench_command": "python bench/landmark_failures.py " + shlex.join(argv),
        "frames": [cfg.first, cfg.first + cfg.count - 1],
        "corrupted_frames": n_bad,
        "frames_flagged_by_quality": int((flagged > 0).any(1).sum()),
        "min_confidence_on_corrupted_points": float(conf.min()),
        "variants": {},
    }
    for name, extra in variants.items():
        run_dir = cfg.data_dir / "runs" / cfg.name / name
        args = ["--preset", cfg.track_preset, "--data.root", str(seq.parent), "--data.sequence", seq.name,
                "--exp.output-folder", str(run_dir), "--exp.device", cfg.device, "--exp.overwrite",
                *([] if cfg.full_resolution else ["--data.downsample", "2"]), *extra]  # fmt: skip
        print("+ vhap track " + shlex.join(args), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, "-m", "vhap.cli", "track", *args], cwd=REPO).returncode
        if rc != 0:
            print(f"landmark_failures: error: vhap track failed ({rc})", file=sys.stderr)
            return 2
        wall = time.perf_counter() - t0
        score = rv.score_run(
            run_dir, seq, cfg.out_dir / "plots" / f"{cfg.name}_{name}.jpg", cfg.device, reference_landmarks=reference
        )
        pf = score["per_frame"]
        ref_gap = np.array([np.nan if v is None else v for v in pf["mouth_gap_detected"]])
        model_gap = np.array([np.nan if v is None else v for v in pf["mouth_gap_model"]])
        wide = ref_gap > cfg.open_gap
        result["variants"][name] = {
            "command": "vhap track " + shlex.join(args),
            "wall_s": wall,
            "whole_head": score["means"],
            "wide_open_frames": int(wide.sum()),
            "mouth_gap_reference_wide": float(np.nanmean(ref_gap[wide])) if wide.any() else None,
            "mouth_gap_model_wide": float(np.nanmean(model_gap[wide])) if wide.any() else None,
            "mouth_nme_wide": float(np.nanmean(np.array(pf["mouth_nme"], dtype=float)[wide])) if wide.any() else None,
            "nme_without_mouth_wide": float(np.nanmean(np.array(pf["nme_without_mouth"], dtype=float)[wide]))
            if wide.any()
            else None,
            "strip": score["strip"],
        }
        print(name, json.dumps(result["variants"][name], indent=1), flush=True)
    out = cfg.out_dir / f"{cfg.name}.json"
    write_text_atomic(out, json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
