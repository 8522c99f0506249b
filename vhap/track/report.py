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


def _pct(v):
    return None if v is None else 100.0 * v


def _whole(key: str):
    return lambda m: (m.get("whole_head") or {}).get(key)


#: (column heading with its unit, value from a metrics.json document, format). The whole-head figures
#: (vhap.eval.whole_head) replace the matte PSNR and IoU, which counted the torso the head model never covers.
COLUMNS = (
    ("NME (% eye dist.)", lambda m: _pct(m["totals"].get("nme")), "{:.2f}"),
    ("mouth NME (% eye dist.)", lambda m: _pct(_whole("mouth_nme")(m)), "{:.2f}"),
    ("face PSNR (dB)", lambda m: m["totals"].get("psnr_face"), "{:.2f}"),
    ("head PSNR (dB)", _whole("head_psnr_db"), "{:.2f}"),
    ("head coverage (%)", lambda m: _pct(_whole("head_coverage")(m)), "{:.1f}"),
    ("spill (% of covered)", lambda m: _pct(_whole("spill")(m)), "{:.2f}"),
)

#: Simple quality gates (the defaults of the workflow's gates): a run fails above / below these.
GATE_MAX_NME_PERCENT = 5.0
GATE_MIN_FACE_PSNR_DB = 20.0
GATE_MIN_HEAD_COVERAGE = 0.8


def gate_failures(metrics: dict) -> list[str]:
    """Why a run's ``metrics.json`` document fails the quality gates (empty = passes): landmark NME, face PSNR
    (photometric runs), whole-head coverage (when the run has it)."""
    t = metrics.get("totals") or {}
    out = []
    nme = t.get("nme")
    if nme is None:
        out.append("no landmark NME")
    elif 100 * nme > GATE_MAX_NME_PERCENT:
        out.append(f"NME {100 * nme:.2f} % > {GATE_MAX_NME_PERCENT:g} %")
    psnr = t.get("psnr_face")
    if metrics.get("photometric", True) and psnr is not None and psnr < GATE_MIN_FACE_PSNR_DB:
        out.append(f"face PSNR {psnr:.2f} dB < {GATE_MIN_FACE_PSNR_DB:g} dB")
    cov = (metrics.get("whole_head") or {}).get("head_coverage")
    if cov is not None and cov < GATE_MIN_HEAD_COVERAGE:
        out.append(f"head coverage {100 * cov:.1f} % < {100 * GATE_MIN_HEAD_COVERAGE:g} %")
    return out


def load_run(folder: Path) -> dict:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise VhapError("not a finished tracking run (metrics.json missing)", path=folder, fix="run `vhap track` first")
    return json.loads(path.read_text())


def summarize(runs: list[Path]) -> list[dict]:
    rows = []
    for run in runs:
        m = load_run(run)
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
            row[name] = get(m)
        row["gate_failures"] = gate_failures(m)
        row["per_frame_nme"] = [r.get("nme") for r in m["per_frame"]]
        row["per_frame_psnr_face"] = [r.get("psnr_face") for r in m["per_frame"]]
        row["per_frame_head_coverage"] = [r.get("head_coverage") for r in m["per_frame"]]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = ["run", "gate", "T×C", *[c[0] for c in COLUMNS], "time (s)", "s/frame", "device"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        gate = "pass" if not r["gate_failures"] else "**FAIL**: " + "; ".join(r["gate_failures"])
        cells = [Path(r["run"]).name or r["run"], gate, f"{r['timesteps']}×{r['cameras']}"]
        for name, _, fmt in COLUMNS:
            cells.append("n/a" if r[name] is None else fmt.format(r[name]))
        cells += [f"{r['seconds']:.1f}", f"{r['seconds_per_frame']:.2f}", str(r["device"])]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\nGates: NME ≤ {GATE_MAX_NME_PERCENT:g} %, face PSNR ≥ {GATE_MIN_FACE_PSNR_DB:g} dB, head coverage ≥ "
        f"{100 * GATE_MIN_HEAD_COVERAGE:g} %. Head = the matte above the collar line (vhap.eval.whole_head); "
        "spill = covered pixels outside the matte.\n"
    )
    return "\n".join(lines) + "\n" + note


def write_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    series = (
        ("per_frame_nme", 100.0, "landmark NME (% of the eye distance)"),
        ("per_frame_psnr_face", 1.0, "PSNR over the face region (dB)"),
        ("per_frame_head_coverage", 100.0, "head region covered by the render (%)"),
    )
    for ax, (key, scale, title) in zip(axes, series, strict=True):
        for r in rows:
            ax.plot([float("nan") if v is None else scale * v for v in r[key]], label=Path(r["run"]).name, lw=1)
        ax.set_title(title)
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
