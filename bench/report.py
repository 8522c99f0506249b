"""Turn every ``bench/results/*.json`` into ``BENCHMARKS.md`` (tables) and plots under ``bench/results/plots/``.

python bench/report.py                       # reads bench/results, writes BENCHMARKS.md
python bench/report.py --results-dir X --output Y.md
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vhap.config import parse_config  # noqa: E402
from vhap.errors import VhapError  # noqa: E402
from vhap.utils.atomic import atomic_path, write_text_atomic  # noqa: E402


@dataclass
class ReportConfig:
    """Benchmark report generation."""

    results_dir: Path = Path("bench/results")
    output: Path = Path("BENCHMARKS.md")
    plots: bool = True


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _hw(r: dict) -> str:
    h = r.get("hardware", {})
    if r.get("device", "cpu").startswith("cuda"):
        return h.get("gpu", "GPU")
    return f"CPU ×{h.get('cpu_count', '?')}"


def _table(columns: list[str], rows: list[list]) -> str:
    """A Markdown table: a header row of ``columns``, then one row per list of (formatted) cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def load_results(folder: Path) -> list[dict]:
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            r = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise VhapError(f"invalid result JSON: {e}", path=p, fix="rerun bench/run.py for it or delete it") from e
        if isinstance(r, dict) and "per_seed" in r and "mean" in r:
            r["_file"] = p.name
            out.append(r)
    return out


def load_profiles(folder: Path) -> list[dict]:
    """``bench/track_profile.py`` results (``{"hardware", "command", "results": [per stage]}``)."""
    import re

    out = []
    for p in sorted(folder.glob("track_profile_*.json")):
        d = json.loads(p.read_text())
        if isinstance(d, dict) and isinstance(d.get("results"), list):
            d["_file"] = p.name
            for r in d["results"]:
                if r.get("kernels"):  # newest files: the kernels themselves (record_function ranges left out)
                    r["device_ms_total_per_step"] = sum(
                        k["ms_per_step"] for k in r["kernels"] if not k["name"].startswith(("track/", "Optimizer."))
                    )
                    continue
                # the summed kernel time from the profiler table's footer: older files lack the field, and newer
                # ones sum every event's self device time, which counts the record_function scopes twice
                m = re.search(r"Self CUDA time total: ([0-9.]+)(ms|us|s)", r.get("top_ops", ""))
                if m:
                    scale = {"ms": 1.0, "us": 1e-3, "s": 1e3}[m.group(2)]
                    steps = r.get("profile_steps") or _profile_steps_from_command(d.get("command", ""))
                    r["device_ms_total_per_step"] = float(m.group(1)) * scale / steps
            out.append(d)
    return out


def _profile_steps_from_command(command: str) -> int:
    parts = command.split()
    if "--profile-steps" in parts:
        return int(parts[parts.index("--profile-steps") + 1])
    return 5  # bench/track_profile.py's default


def profile_table(profiles: list[dict]) -> str:
    columns = ["file", "hardware", "set", "stage", "views × size", "eager ms / step", "CUDA-graph ms / step",
               "GPU kernel ms / step", "peak memory (MiB)"]  # fmt: skip
    rows = []
    for d in profiles:
        gpu = d.get("hardware", {}).get("gpu", "CPU")
        for r in d["results"]:
            size = "×".join(str(x) for x in r.get("image_size", []))
            rows.append([
                f"`{d['_file']}`", gpu, r.get("set"), r["stage"], f"{r['views_per_step']} × {size}",
                _fmt(r["ms_per_step"], 1), _fmt((r.get("cuda_graph") or {}).get("ms_per_step"), 2),
                _fmt(r.get("device_ms_total_per_step"), 1), _fmt(r.get("peak_memory_mib"), 0),
            ])  # fmt: skip
    return _table(columns, rows)


def fixed_stage_table(profiles: list[dict]) -> str:
    """Whole fixed-sample stages, eager vs CUDA-graphed (``--graph-stages`` of bench/track_profile.py)."""
    rows = []
    for d in profiles:
        gpu = d.get("hardware", {}).get("gpu", "CPU")
        for g in d.get("fixed_stage_runs", []):
            fail = "; ".join(g.get("capture_failures", []))[:80] or "–"
            rows.append([
                f"`{d['_file']}`", gpu, g.get("set"), g["stage"], "on" if g["cuda_graphs"] else "off",
                "yes" if g.get("graphed") else "no", g["steps"], _fmt(g["ms_per_step"], 2), fail,
            ])  # fmt: skip
    if not rows:
        return ""
    columns = ["file", "hardware", "set", "stage", "CUDA graphs", "graphed", "steps", "ms / step", "capture failure"]
    return _table(columns, rows)


def breakdown_table(results: list[dict]) -> str:
    """Where the vertex error comes from (``accuracy.breakdown`` of vhap.synth.evaluate), mean over seeds."""
    rows = []
    for r in results:
        bs = [s["accuracy"]["breakdown"] for s in r["per_seed"] if "breakdown" in s.get("accuracy", {})]
        if not bs:
            continue

        def mean(get, bs=bs):
            vals = [get(b) for b in bs]
            return sum(vals) / len(vals)

        regions = {k: mean(lambda b, k=k: b["regions"][k]) for k in bs[0]["regions"]}
        worst = ", ".join(f"{k} {v:.2f}" for k, v in sorted(regions.items(), key=lambda kv: -kv[1])[:3])
        frame_max = mean(lambda b: max(b["per_frame_face"]) if b["per_frame_face"] else float("nan"))
        rows.append([
            f"`{r['name']}`", _fmt(mean(lambda b: b["identity"]["face"])),
            _fmt(mean(lambda b: b["expression"]["face"])), _fmt(mean(lambda b: b["head_pose"]["rotation_deg"]["mean"])),
            _fmt(mean(lambda b: b["head_pose"]["nonrigid_face_mean"])), _fmt(frame_max), worst,
        ])  # fmt: skip
    if not rows:
        return ""
    columns = ["result", "identity err, face (mm)", "expression err, face (mm)", "head rotation err (deg)",
               "face err after a rigid skull fit (mm)", "worst frame, face (mm)", "worst regions (mm)"]  # fmt: skip
    return _table(columns, rows)


def _size(r: dict) -> str:
    s = r["per_seed"][0] if r["per_seed"] else {}
    size = s.get("image_size")
    frames = s.get("num_frames")
    cams = s.get("num_cameras", 1)
    parts = []
    if frames:
        parts.append(f"{frames} fr")
    if cams and cams > 1:
        parts.append(f"{cams} cams")
    if size:
        parts.append(f"{size[0]}×{size[1]}")
    return ", ".join(parts) or "–"


def accuracy_table(results: list[dict]) -> str:
    columns = ["result", "set", "preset", "hardware", "data", "seeds", "face err mean / median / p95 (mm)",
               "head err mean / p95 (mm)", "landmark NME (%)", "masked PSNR (dB)", "silhouette IoU"]  # fmt: skip
    rows = []
    for r in results:
        m = r["mean"]
        face = " / ".join(_fmt(m.get(f"accuracy.vertex_error.face.{k}")) for k in ("mean", "median", "p95"))
        head_e = " / ".join(_fmt(m.get(f"accuracy.vertex_error.head.{k}")) for k in ("mean", "p95"))
        if r["set"] == "carphone":
            face = head_e = "n/a (no ground truth)"
        rows.append([
            f"`{r['name']}`", r["set"], r["preset"], _hw(r), _size(r), len(r["seeds"]), face, head_e,
            _fmt(m.get("accuracy.landmark_nme.mean")), _fmt(m.get("accuracy.masked_psnr.mean")),
            _fmt(m.get("accuracy.silhouette_iou.mean"), 3),
        ])  # fmt: skip
    return _table(columns, rows)


def speed_table(results: list[dict]) -> str:
    columns = ["result", "hardware", "data", "tracking (s)", "wall (s)", "s / frame", "peak memory (MiB)",
               "ms / step per stage"]  # fmt: skip
    rows = []
    for r in results:
        m = r["mean"]
        mem = m.get("timing.cuda_max_allocated_mib")
        mem_s = f"{_fmt(mem, 0)} (CUDA)" if mem is not None else f"{_fmt(m.get('timing.peak_rss_mib'), 0)} (RSS)"
        stages = ", ".join(f"{k} {_fmt(v, 1)}" for k, v in m.get("timing.stage_ms_per_step", {}).items())
        rows.append([
            f"`{r['name']}`", _hw(r), _size(r), _fmt(m.get("timing.tracking_s"), 1), _fmt(m.get("timing.wall_s"), 1),
            _fmt(m.get("timing.seconds_per_frame"), 2), mem_s, stages,
        ])  # fmt: skip
    return _table(columns, rows)


def per_seed_table(results: list[dict]) -> str:
    columns = ["result", "seed", "face err mean (mm)", "head err mean (mm)", "NME (%)", "PSNR (dB)", "IoU", "s / frame"]
    rows = []
    for r in results:
        for s in r["per_seed"]:
            a, t = s.get("accuracy", {}), s.get("timing", {})
            ve = a.get("vertex_error", {})
            rows.append([
                f"`{r['name']}`", s["seed"], _fmt(ve.get("face", {}).get("mean")), _fmt(ve.get("head", {}).get("mean")),
                _fmt(a.get("landmark_nme", {}).get("mean")), _fmt(a.get("masked_psnr", {}).get("mean")),
                _fmt(a.get("silhouette_iou", {}).get("mean"), 3), _fmt(t.get("seconds_per_frame")),
            ])  # fmt: skip
    return _table(columns, rows)


def _pct(v, digits: int = 1) -> str:
    return _fmt(None if v is None else 100.0 * v, digits)


def realvideo_table(results: list[dict], output: Path) -> str:
    """One row per clip of every ``--set realvideo`` result (bench/realvideo.py, vhap.eval.whole_head)."""
    columns = ["result", "clip", "hardware", "frames, tracked at", "head coverage (%)", "spill (% of covered)",
               "head PSNR (dB)", "face PSNR (dB)", "NME (%)", "mouth NME (%)", "mouth gap model / detected (eye dist.)",
               "hair: p99 dihedral fit / template (°), offset Laplacian (mm)", "neck: same", "end to end (s)",
               "strip"]  # fmt: skip
    rows = []
    for r in results:
        for c in r["per_seed"]:
            w = c.get("whole_head", {})
            sm = c.get("smoothness", {})

            def smooth(region: str, sm=sm) -> str:
                d = sm.get(region)
                if not d:
                    return "–"
                fit, tpl = d["fit"], d["template"]
                return f"{_fmt(fit['p99_dihedral_deg'], 1)} / {_fmt(tpl['p99_dihedral_deg'], 1)}, " + _fmt(
                    fit.get("offset_laplacian_mm"), 3
                )

            strip = c.get("strip")
            link = "–"
            if strip and Path(strip).is_file():
                link = f"[{Path(strip).suffix[1:]}]({_relpath(Path(strip), output.parent)})"
            rows.append([
                f"`{r['name']}`", c["clip"], _hw(r), f"{c.get('num_frames')}, {c.get('tracked_size')}",
                _pct(w.get("head_coverage")), _pct(w.get("spill"), 2), _fmt(w.get("head_psnr_db")),
                _fmt(w.get("face_psnr_db")), _pct(w.get("nme"), 2), _pct(w.get("mouth_nme"), 2),
                f"{_fmt(w.get('mouth_gap_model'))} / {_fmt(w.get('mouth_gap_detected'))}", smooth("hair"),
                smooth("neck"), _fmt(c.get("end_to_end_s"), 0), link,
            ])  # fmt: skip
    return _table(columns, rows)


def load_landmark_failures(folder: Path) -> list[dict]:
    out = []
    for p in sorted(folder.glob("landmark_failures*.json")):
        r = json.loads(p.read_text())
        r["_file"] = p.name
        out.append(r)
    return out


def landmark_failures_table(results: list[dict]) -> str:
    columns = ["result", "hardware", "frames", "corrupted / flagged frames", "variant", "wide-open frames",
               "mouth gap model / reference (eye dist.)", "mouth NME (%)", "rest-of-face NME (%)",
               "head coverage (%)"]  # fmt: skip
    rows = []
    for r in results:
        for name, v in r["variants"].items():
            rows.append([
                f"`{r['name']}`", _hw(r), f"{r['frames'][0]}-{r['frames'][1]}",
                f"{r['corrupted_frames']} / {r['frames_flagged_by_quality']}", name, v["wide_open_frames"],
                f"{_fmt(v['mouth_gap_model_wide'])} / {_fmt(v['mouth_gap_reference_wide'])}",
                _pct(v["mouth_nme_wide"], 2), _pct(v["nme_without_mouth_wide"], 2),
                _pct(v["whole_head"].get("head_coverage")),
            ])  # fmt: skip
    return _table(columns, rows)


#: the device command that measures the GPU cells of the dataset cost table
DATASET_GPU_COMMAND = 'OUT=<dir> PARTS="sequence share" bash bench/gpu_dataset.sh'


def _schedule(d: dict, r: dict) -> str:
    """``sequential steps per frame / global epochs`` of a bench/gpu_share.py result (from its first worker's
    stage steps), or '?' for results that did not record them."""
    w = (r.get("workers") or [{}])[0]
    steps = w.get("stage_steps") or {}
    n = d.get("num_frames") or 0
    seq, glob = steps.get("rgb_sequential_tracking"), steps.get("rgb_global_tracking")
    if not n or seq is None or glob is None:
        return "?"
    return f"{seq / n:g}/{glob / n:g}"


def _gpu_share_rows(folder: Path) -> list[tuple[int, float, str, str, str]]:
    """(k, GPU-seconds per 150-frame 16-view sequence, result file, GPU, schedule) of every (GPU, schedule, k)
    that bench/gpu_share.py measured (k track processes at once; projected from its shorter runs), sorted by
    GPU, schedule, then k; a later file replaces an earlier one's figure for the same GPU, schedule and k."""
    rows = {}
    for p in sorted(folder.glob("gpu_share_*.json")):
        d = json.loads(p.read_text())
        gpu = d.get("hardware", {}).get("gpu")
        if not gpu:  # a CPU smoke run
            continue
        for r in d.get("results", []):
            proj = r.get("projection") or {}
            if r.get("ok") and proj.get("gpu_seconds_per_sequence"):
                sched = _schedule(d, r)
                rows[(gpu, sched, r["k"])] = (r["k"], proj["gpu_seconds_per_sequence"], p.name, gpu, sched)
    return [rows[key] for key in sorted(rows)]


def _sweep_rows(folder: Path) -> list[tuple[int, float, str, str, str]]:
    """(k, GPU-seconds per sequence, result file, GPU, schedule) of the bench/schedule_sweep.py results that are
    also whole-sequence cost measurements: k variants of one schedule tracked at once on one GPU, every run
    finished, evaluated only at the end (GPU-seconds per sequence = the sweep's tracking wall time / k; nothing
    projected, set-up and outputs included)."""
    rows = []
    for p in sorted(folder.glob("schedule_sweep_*.json")):
        d = json.loads(p.read_text())
        gpu, n, runs = d.get("hardware", {}).get("gpu"), d.get("num_frames") or 0, list(d.get("variants", {}).values())
        steps = [v.get("stage_steps") or {} for v in runs]
        if not (gpu and n and runs and d.get("tracking_wall_s")) or any(v.get("returncode") != 0 for v in runs):
            continue
        if any(st != steps[0] for st in steps) or "evaluation" in steps[0]:
            continue  # schedules that differ, or evaluations in between: not what the workflow pays
        seq, glob = steps[0].get("rgb_sequential_tracking"), steps[0].get("rgb_global_tracking")
        if seq is None or glob is None:
            continue
        rows.append((len(runs), d["tracking_wall_s"] / len(runs), p.name, gpu, f"{seq / n:g}/{glob / n:g}"))
    return sorted(rows, key=lambda r: (r[3], r[4], r[0], r[2]))


def dataset_cost_table(folder: Path) -> str | None:
    """GPU-hours, CPU-hours and disk per 16-view sequence and for NeRSemble v2 from the results that exist;
    what is not measured says so, with the command that measures it."""
    prep_path = folder / "preprocess_cost_cpu.json"
    disks = sorted(folder.glob("dataset_disk_*.json"))
    if not prep_path.is_file() and not disks:
        return None
    from bench.run import NERSEMBLE_V2_SEQUENCES

    frames, n = 150, NERSEMBLE_V2_SEQUENCES
    rows = []
    share = _gpu_share_rows(folder)
    best = {gpu: min(r[1] for r in share if r[3] == gpu) for gpu in {r[3] for r in share}}
    for k, s, name, gpu, sched in share:
        mark = f" (best on {gpu})" if s == best[gpu] else ""
        rows.append([f"GPU-hours, tracking, schedule {sched}, {k} per GPU{mark}", f"{s / 3600:.3f} ({s:.0f} GPU-s)",
                     f"{s * n / 3600:,.0f}", f"`{name}`, {gpu}"])  # fmt: skip
    for k, s, name, gpu, sched in _sweep_rows(folder / "schedule"):
        rows.append([f"GPU-hours, tracking, schedule {sched}, {k} whole 150-frame runs at once",
                     f"{s / 3600:.3f} ({s:.0f} GPU-s)", f"{s * n / 3600:,.0f}",
                     f"`schedule/{name}`, {gpu}"])  # fmt: skip
    if not share:
        rows.append(["GPU-hours, tracking (`nersemble` preset)", "unmeasured", "unmeasured",
                     f"`{DATASET_GPU_COMMAND}`"])  # fmt: skip
    if prep_path.is_file():
        prep = json.loads(prep_path.read_text())["nersemble_16view"]
        s = prep["cpu_s_per_frame_set"] * frames
        rows.append([f"CPU-hours, preprocessing ({prep['chain'].replace(' + ', ', ')})",
                     f"{s / 3600:.3f} ({s:.0f} CPU-s)", f"{s * n / 3600:,.0f}", f"`{prep_path.name}`"])  # fmt: skip
    for path in disks:
        d = json.loads(path.read_text())
        for name, a in d["artefacts"].items():
            per_seq = f"{a['per_sequence_gib']:.2f} GiB ({a['fixed_mib']:.0f} MiB + {a['per_frame_mib']:.2f} MiB/frame)"
            rows.append([f"disk, {name}", per_seq, f"{a['dataset_tib']:.1f} TiB", f"`{path.name}`"])
        t = d["total"]
        total = [f"{t['per_sequence_gib']:.2f} GiB", f"{t['dataset_tib']:.1f} TiB"]
        rows.append(["disk, total", *total, f"`{path.name}`"])
    columns = ["cost", "per sequence (16 views × 150 frames)", "NeRSemble v2 (10,800 sequences)", "source"]
    return _table(columns, rows)


def make_plots(results: list[dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, path: Path) -> Path:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
        plt.close(fig)
        return path

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    synth = [
        r for r in results if r["set"] != "carphone" and r["mean"].get("accuracy.vertex_error.face.mean") is not None
    ]
    if synth:
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(synth) + 2), 3.2))
        names = [r["name"] for r in synth]
        x = range(len(synth))
        for off, key, label in ((-0.2, "face", "face"), (0.2, "head", "whole head")):
            ax.bar(
                [i + off for i in x],
                [r["mean"].get(f"accuracy.vertex_error.{key}.mean", 0.0) for r in synth],
                0.4,
                label=label,
            )
        for i, r in enumerate(synth):  # per-seed dots
            ax.scatter(
                [i - 0.2] * len(r["per_seed"]),
                [s["accuracy"]["vertex_error"]["face"]["mean"] for s in r["per_seed"]],
                c="k",
                s=8,
                zorder=3,
            )
        ax.set_xticks(list(x), names, rotation=20, ha="right", fontsize=7)
        ax.set_ylabel("mean vertex error (mm)")
        ax.legend(fontsize=7)
        written.append(save(fig, folder / "vertex_error.png"))
    timed = [r for r in results if r["mean"].get("timing.stage_ms_per_step")]
    if timed:
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(timed) + 2), 3.2))
        stages = sorted({k for r in timed for k in r["mean"]["timing.stage_ms_per_step"]})
        width = 0.8 / max(1, len(stages))
        for j, st in enumerate(stages):
            vals = [r["mean"]["timing.stage_ms_per_step"].get(st, 0) for r in timed]
            ax.bar([i + j * width for i in range(len(timed))], vals, width, label=st)
        ax.set_yscale("log")
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(timed))],
            [r["name"] for r in timed],
            rotation=20,
            ha="right",
            fontsize=7,
        )
        ax.set_ylabel("ms per step")
        ax.legend(fontsize=6, ncol=2)
        written.append(save(fig, folder / "ms_per_step.png"))
    return written


def build_markdown(
    results: list[dict],
    plots: list[Path],
    output: Path,
    profiles: list[dict] | None = None,
    failures: list[dict] | None = None,
    dataset_cost: str | None = None,
) -> str:
    real = [r for r in results if r["set"] == "realvideo"]
    results = [r for r in results if r["set"] != "realvideo"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python bench/report.py` from `bench/results/*.json` (written by `bench/run.py`; do not edit by",
        "hand). Synthetic sets are rendered from the head model with a recoloured albedo, non-trivial SH light and",
        "textured backgrounds (`bench/synthetic.py`, `vhap.synth`); vertex errors are against the exact ground truth —",
        "monocular after a per-frame similarity (Umeyama) alignment on the face region, multi-view without alignment",
        "(the tracking world is the calibration world). Landmark NME is in % of the outer inter-ocular distance,",
        "against the noise-free ground-truth projections (synthetic) or the detector (carphone). Masked PSNR is over",
        "the ground-truth matte (synthetic) or over the face region of the tracker's render (carphone; its matte",
        "also holds hair and torso that the head never covers). Values are means over the seeds.",
        "",
        "## Accuracy",
        "",
        accuracy_table(results),
        "",
        "## Speed",
        "",
        speed_table(results),
        "",
        "## Per seed",
        "",
        per_seed_table(results),
        "",
    ]
    if dataset_cost:
        lines += [
            "## Dataset cost",
            "",
            "What tracking a whole 16-view dataset costs (issue 19): per NeRSemble-like sequence of 150 frames at DS4",
            "(802×550) and for NeRSemble v2 (10,800 sequences). CPU-hours are CPU seconds (user + system, so",
            "independent of the core count) of `bench/preprocess_cost.py` on 16 NeRSemble-sized videos made from the",
            "carphone clip. Disk: `bench/dataset_disk.py`, a line `fixed + per_frame × frames` through CPU runs of",
            "`bench/run.py --set nersemble_sequence` of different lengths at the real DS4 size (synthetic frames, not",
            "real footage: JPEG sizes depend on the content; the run folder's fixed part is the texture map in each of",
            "its three parameter files plus a 49 MiB checkpoint, which the workflow keeps under results/.resume and",
            "deletes when the run finishes). GPU rows: `bench/gpu_share.py`, k tracking processes started together on",
            "one GPU (short runs, their per-frame stages scaled to 150 frames), GPU-seconds per sequence =",
            "wall / k; schedule = the `nersemble` preset's sequential steps per frame / global epochs in that run",
            "('?': not recorded; those runs used 50/30; the 25/15 runs used the preset's global learning rate scale",
            "0.03, all others VHAP's 0.1); without such a result they read 'unmeasured', with the device command",
            "that measures them. 'whole 150-frame runs at once' rows: `bench/schedule_sweep.py` sweeps whose",
            "variants all ran that schedule (they differ in landmark settings, which cost ~1 ms a step), evaluated",
            "only at the end: the sweep's wall time / k, nothing projected, set-up and outputs included.",
            "",
            dataset_cost,
            "",
        ]
    if real:
        lines += [
            "## Real video (whole head)",
            "",
            "`python bench/run.py --set realvideo` (clips and licences: `bench/realvideo.py`; rules:",
            "`vhap.eval.whole_head`). No ground-truth mesh: each run is rendered back at the clip's full resolution.",
            "Head region = the matte above the collar line (from the matte's width profile and the jaw landmarks),",
            "without what lies beside the jaw below the mouth (a seat, a raised shoulder, a helmet ring the matte",
            "kept; from commit 8eda418 on — the `_v1` rows used the collar line alone, see",
            "docs/dev/notes/whole_head_recipe.md for both rules' figures);",
            "coverage = share of it the render covers (target ≥ 95 %), spill = covered pixels outside the matte",
            "(target ≤ 2 %); head PSNR over the covered head; NME against the detector (mouth = points 48-67);",
            "mouth gap = inner-lip opening (62-66) of the model vs the detector. Smoothness of the canonical mesh",
            "with the final static offsets: 99th-percentile dihedral angle of the region's faces, fit vs the",
            "undeformed template, and the mean |Laplacian| of the offsets. `_white` clips are the same frames",
            "composited on white with their own matte (the pre-matted case). End to end = preprocessing + tracking.",
            "",
            realvideo_table(real, output),
            "",
        ]
    if failures:
        lines += [
            "## Failed landmarks on open mouths",
            "",
            "`python bench/landmark_failures.py`: carphone's wide-open frames with the lower lip and chin moved into",
            "the mouth (MediaPipe's failure on wide-open mouths), confidences from `vhap landmarks`' quality checks,",
            "tracked with VHAP's L1 and with the confidences + Geman-McClure penalty; scored against the uncorrupted",
            "detections on the wide-open frames.",
            "",
            landmark_failures_table(failures),
            "",
        ]
    breakdown = breakdown_table(results)
    if breakdown:
        lines += [
            "## Error breakdown",
            "",
            "`vhap.synth.evaluate.error_breakdown`, means over the seeds: identity = neutral meshes (shape + static",
            "offset) tracked vs true; expression = the true shape posed with tracked vs true expression, jaw and eyes;",
            "head rotation = per-frame rigid fit of the tracked forehead + nose onto the truth; then the face error",
            "left after that fit (monocular: similarity fits).",
            "",
            breakdown,
            "",
        ]
    if profiles:
        lines += [
            "## Tracker step profile",
            "",
            "`python bench/track_profile.py` (synthetic data, first sample, wall clock per step with a device sync",
            "only at the ends; GPU ms = summed kernel time from `torch.profiler`; a step slower than its GPU time is",
            "bound by Python / kernel launches and the rasteriser's host synchronisation).",
            "",
            profile_table(profiles),
            "",
        ]
        fixed = fixed_stage_table(profiles)
        if fixed:
            lines += ["Whole fixed-sample stages (`--graph-stages`), eager vs CUDA-graphed:", "", fixed, ""]
        for d in profiles:
            lines += [f"- `{d['_file']}`: `{d.get('command', '')}`"]
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            rel = Path(_relpath(p, output.parent))
            lines += [f"![{p.stem}]({rel.as_posix()})", ""]
    lines += reproduction_section(results, profiles or [])
    lines += ["## Commands", ""]
    for r in results + real:
        lines += [
            f"- `{r['name']}` ({r.get('date', '')}, {_hw(r)}, commit {r.get('hardware', {}).get('git_commit', '?')}):",
            f"  `{r['bench_command']}`",
        ]
        if r["per_seed"]:
            lines += [f"  tracker: `{r['per_seed'][0]['command']}`"]
        if r.get("note"):
            lines += [f"  note: {r['note']}"]
    lines.append("")
    return "\n".join(lines)


def device_command(r: dict) -> str | None:
    """The ``bench/gpu_*.sh`` command a GPU result came from, as its provenance or note records it."""
    import re

    for text in (r.get("provenance") or "", r.get("note") or ""):
        m = re.search(r"(OUT=[^`;]*?bash bench/gpu_\w+\.sh)", text)
        if m:
            return m.group(1)
    return None


def reproduction_section(results: list[dict], profiles: list[dict]) -> list[str]:
    """How to rerun every GPU row: the wheels, the carphone frames, then the recorded device command."""
    gpu = [r for r in results if str(r.get("device", "cpu")).startswith("cuda")]
    gpu += [p for p in profiles if p.get("hardware", {}).get("gpu")]
    if not gpu:
        return []
    lines = [
        "## Reproducing the GPU rows",
        "",
        "The GPU rows ran on the device image (Python 3.12, torch 2.11+cu130, CUDA compiler; no network) from a copy",
        "of the repository. To rerun one:",
        "",
        "1. On any machine with pip and network: `bash bench/prepare_wheels.sh` writes `.whl_min/` (tyro and its",
        "   needs, diffrp-nvdiffrast sources, ninja; 0.6 MiB) and `.whl_av/` (PyAV; 34 MiB): pinned versions and",
        "   hashes, CPython 3.12 manylinux x86-64 builds — what the image lacks.",
        "2. Carphone rows only: the preprocessed clip in `.benchdata/carphone` (frames bicubic-upscaled to 512×416,",
        "   matte, MediaPipe landmarks), made on a CPU machine with the dev extra:",
        "   `python bench/run.py --set carphone --track-preset demo --device cpu --data-dir .benchdata --out-dir /tmp",
        "   --name carphone_prep` (it also tracks on the CPU, a few minutes; only `.benchdata/carphone` is needed).",
        "3. Copy the repository with `.whl_min`, `.whl_av` (and `.benchdata`) to the GPU machine and run, from its",
        "   root, the command of the row below with `OUT=<folder>` (results and logs land there; copy the JSON files",
        "   to `bench/results/` and run `python bench/report.py`). The scripts install the wheels into `/tmp/site`",
        "   themselves (`WHEELS='.whl_min .whl_av'` is their default).",
        "",
        "Rows whose command is not recorded predate `bench/gpu_*.sh` knobs; their `bench/run.py` command under",
        "Commands below runs the same way after `pip install --no-deps --target /tmp/site .whl_min/*.whl",
        ".whl_av/*.whl` and `export PYTHONPATH=/tmp/site:$PWD`.",
        "",
    ]
    rows = []
    for r in gpu:
        name = r.get("name") or r.get("_file", "?")
        hw = _hw(r) if "name" in r else r["hardware"]["gpu"]
        cmd = device_command(r)
        shown = f"`{cmd}`" if cmd else "not recorded: its command below, with the wheels installed"
        rows.append([f"`{name}`", hw, shown])
    return lines + [_table(["result", "hardware", "device command"], rows), ""]


def _relpath(p: Path, start: Path) -> str:
    import os

    return os.path.relpath(p.resolve(), start.resolve())


def write_report(cfg: ReportConfig) -> Path:
    results = load_results(cfg.results_dir)
    plots = make_plots(results, cfg.results_dir / "plots") if cfg.plots and results else []
    profiles = load_profiles(cfg.results_dir)
    failures = load_landmark_failures(cfg.results_dir)
    cost = dataset_cost_table(cfg.results_dir)
    write_text_atomic(cfg.output, build_markdown(results, plots, cfg.output, profiles, failures, cost))
    return cfg.output


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(ReportConfig, list(sys.argv[1:] if argv is None else argv), prog="bench/report.py")
    try:
        out = write_report(cfg)
    except VhapError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
