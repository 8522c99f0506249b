"""Everything a tracking run writes (docs/dev/INTERFACES.md → vhap.track outputs), atomically, ``DONE`` last."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vhap.config import save_config
from vhap.errors import VhapError
from vhap.eval.whole_head import run_means
from vhap.utils.atomic import atomic_path, same_content_atomic, write_text_atomic

if TYPE_CHECKING:
    from vhap.track.problem import TrackingProblem
    from vhap.track.runlog import RunLog

# ------------------------------------------------------------------------------------------------ folder


def write_run_inputs(problem: TrackingProblem, out: Path, fresh: bool) -> None:
    """Write ``config.yml`` and the input tables (``frames.json``, ``cameras.npz``) into the run folder ``out``;
    ``fresh``: a run from scratch, so first clear the products of an earlier run there (``DONE``, checkpoints). A
    resumed run writes them too: its folder may have been deleted since the checkpoint was written."""
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        (out / "DONE").unlink(missing_ok=True)
        if (out / "checkpoints").exists():
            shutil.rmtree(out / "checkpoints")
    save_config(problem.cfg, out / "config.yml")
    write_frames_json(problem, out / "frames.json")
    write_cameras_npz(problem, out / "cameras.npz")


def write_frames_json(problem: TrackingProblem, path: Path) -> None:
    """Image/alpha paths are written relative to the run folder (``paths_relative_to: run_folder``), so readers
    find them from any working directory."""
    seq = problem.seq
    # real paths on both sides: the kernel resolves "run/../.." physically, so a symlinked folder on the way
    # (results -> /scratch/...) must not be undone lexically
    run = os.path.realpath(path.parent)

    def rel(p) -> str:
        return os.path.relpath(os.path.realpath(p), run)

    frames = []
    for t, ts in enumerate(seq.timestep_ids):
        for c, cam in enumerate(seq.camera_ids):
            alpha = seq.alpha_paths[t][c] if seq.alpha_paths else None
            frames.append(
                {
                    "timestep_index": t,
                    "timestep_id": ts,
                    "camera_index": c,
                    "camera_id": cam,
                    "image": rel(seq.frame_paths[t][c]),
                    "alpha": None if alpha is None else rel(alpha),
                }
            )
    doc = {
        "paths_relative_to": "run_folder",
        "timestep_ids": list(seq.timestep_ids),
        "camera_ids": list(seq.camera_ids),
        "image_size": list(seq.image_size),
        "frames": frames,
    }
    write_text_atomic(path, json.dumps(doc, indent=1))


@torch.no_grad()
def write_cameras_npz(problem: TrackingProblem, path: Path) -> None:
    """``K (C,3,3)``, ``w2c (C,4,4)`` OpenCV at tracking resolution, ``camera_ids``, ``image_size``,
    ``calibrated`` (uncalibrated: from the current focal length)."""
    cams = problem.cameras(1)
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            K=cams.K.detach().cpu().numpy().astype(np.float32),
            w2c=cams.w2c.detach().cpu().numpy().astype(np.float32),
            camera_ids=np.asarray(problem.seq.camera_ids),
            image_size=np.asarray(problem.seq.image_size, dtype=np.int64),
            calibrated=np.asarray(bool(problem.calibrated)),
        )


def _save_npz(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **data)


def write_params_npz(problem: TrackingProblem, log: RunLog, path: Path, background: bool = False) -> None:
    """``tracked_flame_params*.npz``; ``background``: write a host copy on the run's background writer (the
    run goes on; ``log.wait_for_writes()`` waits for it)."""
    t0 = time.perf_counter()
    seq = problem.seq
    data = problem.params.to_npz_dict(seq.timestep_ids, seq.image_size, problem.cfg.model.head_model)
    if background:
        log.write_in_background(_save_npz, path, data)
    else:
        _save_npz(path, data)
    log.add_overhead("params_npz", time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------ metrics


def _nanmean(x) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def summarize_eval(per_frame: dict[str, np.ndarray]) -> dict[str, float | None]:
    return {k: _nanmean(v) for k, v in per_frame.items()}


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def build_metrics(problem: TrackingProblem, log: RunLog, per_frame: dict[str, np.ndarray], timing: dict) -> dict:
    seq = problem.seq
    rows = []
    cams = list(seq.camera_ids)
    for t, ts in enumerate(seq.timestep_ids):
        row = {"timestep_id": ts}
        for k, v in per_frame.items():
            arr = np.asarray(v[t], dtype=np.float64).reshape(-1)
            row[k] = _jsonable(_nanmean(arr))
            if arr.size > 1:
                row[f"{k}_per_camera"] = {c: _jsonable(float(a)) for c, a in zip(cams, arr, strict=True)}
        rows.append(row)
    totals = summarize_eval(per_frame)
    if totals.get("nme") is not None:
        totals["nme_percent"] = 100.0 * totals["nme"]
    return {
        "per_frame": rows,
        "totals": totals,
        # per-run means of the whole-head figures (vhap.eval.whole_head; empty without a matte)
        "whole_head": run_means(per_frame),
        "timing": timing,
        "evaluations": log.state.evaluations,
        "num_timesteps": problem.T,
        "num_cameras": problem.C,
        "image_size": list(seq.image_size),
        "device": str(problem.device),
        "backend": problem.renderer.backend,
        "head_model": problem.cfg.model.head_model,
        "photometric": problem.cfg.exp.photometric,
    }


def non_finite_results(problem: TrackingProblem, log: RunLog) -> list[str]:
    """Names of the tracked parameters, and ``loss`` when a logged loss, holding NaN/Inf (a diverged run)."""
    seq = problem.seq
    data = problem.params.to_npz_dict(seq.timestep_ids, seq.image_size, problem.cfg.model.head_model)
    bad = [k for k, v in data.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    losses = [v for e in log.state.loss_history for k, v in e.items() if k not in ("stage", "step")]
    if not all(math.isfinite(v) for v in losses):
        bad.append("loss")
    return bad


#: overhead kinds booked while the Tracker is built (before run() starts its clock)
_SETUP_KINDS = ("load_sequence", "head_model", "renderer", "setup")


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere): covers interpreter start-up and the
    imports, which no timer inside the tracker sees."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def timing_report(problem: TrackingProblem, log: RunLog, total_s: float, outputs_s: float) -> dict:
    rs = log.state
    stages = {}
    for name, secs in rs.stage_time.items():
        steps = rs.stage_steps.get(name, 0)
        stages[name] = {
            "seconds": round(secs, 4),
            "steps": steps,
            "ms_per_step": round(1000 * secs / steps, 3) if steps else None,
        }
    peak = None
    device = problem.device
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
        except Exception:  # pragma: no cover
            peak = None
    overhead = dict(log.overhead, outputs=outputs_s)
    # what no timer saw inside run() (set-up happens before it and is not part of total_s)
    booked = sum(rs.stage_time.values()) + sum(v for k, v in overhead.items() if k not in _SETUP_KINDS)
    overhead["unaccounted_in_run"] = total_s - booked
    return {
        "wall_s_this_process": round(total_s, 3),
        "outputs_s": round(outputs_s, 3),
        # time outside the stages, by kind (setup = Tracker construction incl. load_sequence, head_model and
        # renderer; checkpoints and params_npz are summed over the run; run_folder = resume / fresh folder)
        "overhead_s": {k: round(v, 3) for k, v in overhead.items()},
        "overhead_max_s": {k: round(v, 3) for k, v in log.overhead_max.items()},
        "process_age_s": _process_age_s(),
        "stages": stages,
        "seconds_per_frame": round(sum(rs.stage_time.values()) / max(1, problem.T), 4),
        "peak_memory_mib": None if peak is None else round(peak, 1),
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "host_max_rss",
    }


# ------------------------------------------------------------------------------------------------ media


def draw_overlay(
    target, render, mask, pred_px, target_px, conf, opacity: float = 0.6, tri_id=None, min_size: int = 512
) -> np.ndarray:
    """Side by side, upscaled to a readable size: input with landmarks (target green, prediction red) · render
    blended over the input (with the mesh edges when ``tri_id`` (H,W) is given) · per-pixel error on the head.

    ``target``/``render`` (H,W,3) in [0,1], ``mask`` (H,W) coverage, landmarks in pixels of the (H,W) image.
    Each panel's longest side is at least ``min_size`` (integer upscale of small tracking images).
    Returns uint8 (h, 3·w + gaps, 3).
    """
    import cv2

    from vhap.preprocess.landmarks.overlay import error_panel, panel_title, upscale_factor, wire_edges

    h, w = target.shape[:2]
    s = upscale_factor(h, w, min_size)
    big = (w * s, h * s)
    tgt = np.clip(target, 0, 1).astype(np.float32)
    ren = np.clip(render, 0, 1).astype(np.float32)
    cover = np.clip(mask, 0, 1).astype(np.float32)
    a = cover[..., None] * opacity
    blend = ren * a + tgt * (1 - a)
    # composed at the tracking resolution, upscaled as 8-bit pictures (cheap: this runs for every logged frame)
    to8 = lambda x: (x * 255 + 0.5).astype(np.uint8)  # noqa: E731
    left = np.ascontiguousarray(cv2.resize(to8(tgt), big, interpolation=cv2.INTER_CUBIC))
    mid = np.ascontiguousarray(cv2.resize(to8(blend), big, interpolation=cv2.INTER_CUBIC))
    if tri_id is not None:
        edges = wire_edges(cv2.resize(np.asarray(tri_id, np.int32), big, interpolation=cv2.INTER_NEAREST))
        mid[edges] = mid[edges] // 3 + 170
    err = error_panel(np.abs(ren - tgt).mean(-1), cover > 0.5, vmax=0.25)
    right = np.ascontiguousarray(cv2.resize(err, big, interpolation=cv2.INTER_NEAREST))
    r = max(2, round(max(big) / 180))
    for (x, y), c in zip(target_px, conf, strict=False):
        if c > 0 and np.isfinite(x) and np.isfinite(y):
            cv2.circle(left, (int(x * s), int(y * s)), r, (0, 255, 0), -1, cv2.LINE_AA)
    for x, y in pred_px:
        if np.isfinite(x) and np.isfinite(y):
            for img in (left, mid):
                cv2.circle(img, (int(x * s), int(y * s)), r, (255, 0, 0), -1, cv2.LINE_AA)
    panel_title(left, "input + landmarks (green: detected, red: model)")
    panel_title(mid, "render" + (" + mesh edges" if tri_id is not None else ""))
    panel_title(right, "|render - input| on the head, 0 ... 0.25")
    gap = np.full((big[1], 6, 3), 40, np.uint8)
    return np.concatenate([left, gap, mid, gap, right], 1)


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """H.264 mp4 via PyAV (even sizes enforced by padding); skipped with a warning where PyAV is missing."""
    try:
        import av
    except ImportError:
        import warnings

        warnings.warn(f"PyAV is not installed: {path.name} not written (pip install av)", stacklevel=2)
        return
    if not frames:
        return
    h, w = frames[0].shape[:2]
    H2, W2 = h + h % 2, w + w % 2
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height = W2, H2
            stream.pix_fmt = "yuv420p"
            # "veryfast": the overlay video is a preview; x264's default preset took seconds for 120 frames
            stream.options = {"crf": "20", "preset": "veryfast"}
            for f in frames:
                if f.shape[:2] != (H2, W2):
                    f = np.pad(f, ((0, H2 - f.shape[0]), (0, W2 - f.shape[1]), (0, 0)))
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def import_media_writers() -> None:
    """Import what the final outputs use (matplotlib with its font cache — built on the first import on a fresh
    machine —, PIL, PyAV). :meth:`vhap.track.tracker.Tracker.run` calls this on a background thread at the start
    so the cost overlaps the optimisation instead of adding to the end of the run."""
    # Only a warm-up: a failure here is left for the writer itself to report, in the main thread, with its context.
    with contextlib.suppress(Exception):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        from PIL import Image  # noqa: F401
    with contextlib.suppress(Exception):
        import av  # noqa: F401


def write_loss_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    keys = sorted({k for h in history for k in h if k not in ("stage", "step")})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    steps = np.array([h["step"] for h in history])
    for k in keys:
        vals = np.array([h.get(k, np.nan) for h in history], dtype=np.float64)
        ax = axes[0] if k in ("total", "landmark", "photo", "silhouette") else axes[1]
        ax.plot(steps, vals, label=k, lw=1)
    for ax, title in zip(axes, ("data terms", "regularisers"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("global step")
        ax.set_title(title)
        ax.legend(fontsize=7)
        # stage boundaries
        last = None
        for h in history:
            if h["stage"] != last:
                ax.axvline(h["step"], color="0.85", lw=0.5)
                last = h["stage"]
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


@torch.no_grad()
def write_meshes(problem: TrackingProblem, folder: Path) -> None:
    """``canonical.obj`` (shape + static offset, zero pose) and ``frame_<first ts>.obj`` (posed), both textured
    with the tracked albedo (``canonical.png``, which both MTL files reference)."""
    from vhap.model.mesh_io import write_obj

    folder.mkdir(parents=True, exist_ok=True)
    p = problem.params
    m = problem.model
    albedo = problem.albedo()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    cano = m(shape=p.shape, static_offset=p.static_offset).verts[0]
    posed = problem.forward(torch.zeros(1, dtype=torch.long, device=problem.device)).verts[0]
    uvs, uvf = m.uvs.cpu().numpy(), m.uv_faces.cpu().numpy()
    faces = m.faces.cpu().numpy()
    write_obj(folder / "canonical.obj", cano.cpu().numpy(), faces, uvs, uvf, texture=albedo)
    frame_obj = folder / f"frame_{problem.seq.timestep_ids[0]}.obj"
    write_obj(frame_obj, posed.cpu().numpy(), faces, uvs, uvf, texture_file="canonical.png")


def _write_jpg(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, quality=90)


# ------------------------------------------------------------------------------------------------ final


def write_final_outputs(
    problem: TrackingProblem, log: RunLog, out: Path, *, final_epoch: int, resumed: bool, t_start: float
) -> dict:
    """Evaluate, then write every output of a finished schedule into ``out``, ``DONE`` last (after the
    background writes). Returns the metrics (as in ``metrics.json``)."""
    from vhap.track.evaluation import evaluate

    cfg = problem.cfg
    t0 = time.perf_counter()
    media = cfg.exp.write_media and cfg.exp.photometric
    diverged = non_finite_results(problem, log)
    ev = evaluate(problem, collect_images=media)
    log.add_stage_time("final_evaluation", time.perf_counter() - t0)
    rs = log.state
    write_params_npz(problem, log, out / "tracked_flame_params.npz")
    # the same file under VHAP's second name: a hard link (the texture map alone is tens of MiB per sequence)
    same_content_atomic(out / "tracked_flame_params.npz", out / f"tracked_flame_params_{final_epoch}.npz")
    write_cameras_npz(problem, out / "cameras.npz")
    rs.evaluations[str(final_epoch)] = summarize_eval(ev.per_frame)
    t1 = time.perf_counter()
    job_seconds: dict[str, float] = {}

    def timed(kind, fn, *args):
        def run():
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                job_seconds[kind] = job_seconds.get(kind, 0.0) + time.perf_counter() - t

        return run

    # Media export runs on a small thread pool: JPEG/PNG/H.264 encoding releases the GIL, so the video, the
    # textured meshes, the loss curves and the overlay files are written concurrently; the longest job (the
    # video, one encoder thread) is queued first.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = []
        if media:
            overlays = out / "overlays"
            overlays.mkdir(exist_ok=True)
            by_frame: dict[int, list[np.ndarray]] = {}
            files = []
            for batch in ev.images:
                for t, c, img in batch:
                    cam = f"_{problem.seq.camera_ids[c]}" if problem.C > 1 else ""
                    files.append((overlays / f"{problem.seq.timestep_ids[t]}{cam}.jpg", img))
                    by_frame.setdefault(t, []).append(img)
            frames = [np.concatenate(by_frame[t], axis=1) for t in sorted(by_frame)]
            jobs.append(pool.submit(timed("video", write_video, frames, out / "overlay.mp4", cfg.exp.overlay_fps)))
            jobs.append(pool.submit(timed("meshes", write_meshes, problem, out / "mesh")))
        if cfg.exp.write_media:
            jobs.append(pool.submit(timed("loss_curves", write_loss_curves, rs.loss_history, out / "loss_curves.png")))
        if media:
            jobs += [pool.submit(timed("overlay_jpgs", _write_jpg, path, img)) for path, img in files]
        for j in jobs:
            j.result()
    outputs_s = time.perf_counter() - t1
    timing = timing_report(problem, log, time.perf_counter() - t_start, outputs_s)
    timing["outputs_jobs_s"] = {k: round(v, 3) for k, v in job_seconds.items()}  # summed per kind; they overlap
    timing["resumed"] = resumed
    metrics = build_metrics(problem, log, ev.per_frame, timing)
    metrics["diverged"] = bool(diverged)
    metrics["diverged_in"] = diverged
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=1, default=_jsonable))
    log.wait_for_writes()  # DONE only once everything, the last checkpoint included, is on disk
    if diverged:  # no DONE: the run failed
        raise VhapError(
            f"tracking diverged: non-finite {', '.join(diverged)} (recorded as diverged in metrics.json)",
            path=out,
            fix="lower the learning rates or check the inputs (landmarks, calibration), then track again",
        )
    write_text_atomic(out / "DONE", time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return metrics


def human_summary(metrics: dict, out_dir: Path) -> str:
    t = metrics["totals"]
    tim = metrics["timing"]

    def f(key, fmt, scale=1.0):
        v = t.get(key)
        return "n/a" if v is None else fmt.format(v * scale)

    def w(key, fmt, scale=1.0):
        v = (metrics.get("whole_head") or {}).get(key)
        return "n/a" if v is None else fmt.format(v * scale)

    lines = [
        f"vhap track: done -> {out_dir}",
        f"  {metrics['num_timesteps']} timesteps x {metrics['num_cameras']} camera(s) at "
        f"{metrics['image_size'][1]}x{metrics['image_size'][0]} on {metrics['device']}",
        f"  landmark NME {f('nme', '{:.2f}', 100)} % of the inter-ocular distance",
        f"  PSNR face {f('psnr_face', '{:.2f}')} dB, head {w('head_psnr_db', '{:.2f}')} dB; head region covered "
        f"{w('head_coverage', '{:.1f}', 100)} %, spill outside the matte {w('spill', '{:.2f}', 100)} % of the covered",
        f"  time in stages {sum(s['seconds'] for s in tim['stages'].values()):.1f} s "
        f"({tim['seconds_per_frame']:.2f} s/frame)",
    ]
    for name, s in tim["stages"].items():
        ms = "" if s["ms_per_step"] is None else f", {s['ms_per_step']:.1f} ms/step"
        lines.append(f"    {name:<26} {s['seconds']:8.1f} s  {s['steps']:6d} steps{ms}")
    return "\n".join(lines)
