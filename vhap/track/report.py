"""``vhap report``: a summary of tracking runs — metrics table (Markdown + JSON) and a figure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vhap.errors import VhapError
from vhap.utils.atomic import atomic_path, write_text_atomic


@dataclass
class ReportConfig:
    """Summarise finished ``vhap track`` runs."""

    runs: tuple[Path, ...] = field(default_factory=tuple)
    """run folders (each with ``metrics.json``)"""
    output: Path = Path("output/report")
    """folder for ``summary.md``, ``summary.json`` and ``summary.png``"""


COLUMNS = (
    ("NME %", lambda t: None if t.get("nme") is None else 100 * t["nme"], "{:.2f}"),
    ("PSNR face dB", lambda t: t.get("psnr_face"), "{:.2f}"),
    ("PSNR matte dB", lambda t: t.get("psnr_matte"), "{:.2f}"),
    ("IoU", lambda t: t.get("iou"), "{:.3f}"),
)


def load_run(folder: Path) -> dict:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise VhapError("not a finished tracking run (metrics.json missing)", path=folder, fix="run `vhap track` first")
    return json.loads(path.read_text())


def summarize(runs: list[Path]) -> list[dict]:
    rows = []
    for run in runs:
        m = load_run(run)
        t = m["totals"]
        stage_s = sum(s["seconds"] for s in m["timing"]["stages"].values())
        row = {
            "run": str(run),
            "timesteps": m["num_timesteps"],
            "cameras": m["num_cameras"],
            "device": m.get("device"),
            "seconds": round(stage_s, 2),
            "seconds_per_frame": m["timing"].get("seconds_per_frame"),
            "peak_memory_mib": m["timing"].get("peak_memory_mib"),
        }
        for name, get, _ in COLUMNS:
            row[name] = get(t)
        row["per_frame_nme"] = [r.get("nme") for r in m["per_frame"]]
        row["per_frame_psnr_face"] = [r.get("psnr_face") for r in m["per_frame"]]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = ["run", "T×C", *[c[0] for c in COLUMNS], "time s", "s/frame", "device"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [Path(r["run"]).name or r["run"], f"{r['timesteps']}×{r['cameras']}"]
        for name, _, fmt in COLUMNS:
            cells.append("n/a" if r[name] is None else fmt.format(r[name]))
        cells += [f"{r['seconds']:.1f}", f"{r['seconds_per_frame']:.2f}", str(r["device"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for r in rows:
        label = Path(r["run"]).name
        nme = [None if v is None else 100 * v for v in r["per_frame_nme"]]
        axes[0].plot([float("nan") if v is None else v for v in nme], label=label, lw=1)
        axes[1].plot([float("nan") if v is None else v for v in r["per_frame_psnr_face"]], label=label, lw=1)
    axes[0].set_title("landmark NME (% inter-ocular)")
    axes[1].set_title("PSNR over the face region (dB)")
    for ax in axes:
        ax.set_xlabel("timestep")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def report(cfg: ReportConfig) -> list[dict]:
    if not cfg.runs:
        raise VhapError("no runs given", fix="pass --runs RUN_FOLDER [RUN_FOLDER ...]")
    rows = summarize(list(cfg.runs))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "summary.md", markdown_table(rows))
    write_text_atomic(out / "summary.json", json.dumps(rows, indent=1))
    write_figure(rows, out / "summary.png")
    return rows


def main(argv: list[str]) -> int:
    from vhap.config import parse_config

    cfg = parse_config(ReportConfig, argv, prog="vhap report")
    rows = report(cfg)
    print(markdown_table(rows), end="")
    return 0
