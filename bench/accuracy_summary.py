"""Print a short accuracy table of synthetic benchmark results against the issue-5 targets.

    python bench/accuracy_summary.py bench/results/synthetic_mono_monocular_cuda.json ...

Per seed: vertex error (face / head, mm; monocular after a per-frame similarity), landmark NME, masked PSNR,
IoU, the per-frame face error spread, and the error breakdown of :func:`vhap.synth.evaluate.error_breakdown`
(identity, expression, head pose, worst regions). Targets: 16 views face mean ≤ 0.5 mm, monocular face mean
≤ 1.5 mm (mean over ≥ 3 sequences).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

#: (set → face-region mean vertex error target in mm)
TARGETS_MM = {"synthetic_16view": 0.5, "synthetic_mono": 1.5}


def _fmt(x, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def summarize_file(path: Path) -> list[str]:
    doc = json.loads(Path(path).read_text())
    lines = [f"## {doc['name']} ({doc['set']}, preset {doc['preset']}, seeds {doc['seeds']})"]
    faces = []
    for r in doc["per_seed"]:
        a = r["accuracy"]
        ve = a["vertex_error"]
        faces.append(ve["face"]["mean"])
        pf = np.asarray(ve.get("per_frame_mean", {}).get("face", []), float)
        lines.append(
            f"seed {r['seed']}: face {ve['face']['mean']:.3f} / med {ve['face']['median']:.3f} / p95 "
            f"{ve['face']['p95']:.3f} mm, head {ve['head']['mean']:.3f} mm, NME {_fmt(a['landmark_nme']['mean'])} %, "
            f"PSNR {_fmt(a.get('masked_psnr', {}).get('mean'))} dB, "
            f"IoU {_fmt(a.get('silhouette_iou', {}).get('mean'), 3)}"
            f"; tracking {r['timing']['tracking_s']:.0f} s, scoring {r['timing'].get('scoring_s', float('nan')):.1f} s"
        )
        if pf.size:
            lines.append(
                f"    per-frame face mean: min {pf.min():.3f}, median {np.median(pf):.3f}, max {pf.max():.3f} mm "
                f"(worst frame {int(pf.argmax())})"
            )
        b = a.get("breakdown")
        if b:
            hp = b["head_pose"]
            worst = sorted(b["regions"].items(), key=lambda kv: -kv[1])[:4]
            lines.append(
                f"    identity {b['identity']['face']:.3f} mm (face, {b['identity']['align']}), expression "
                f"{b['expression']['face']:.3f} mm, head pose {hp['rotation_deg']['mean']:.3f} deg / "
                f"{hp['skull_centroid_offset_mm']['mean']:.2f} mm, non-rigid after a rigid skull fit "
                f"{hp['nonrigid_face_mean']:.3f} mm; worst regions " + ", ".join(f"{k} {v:.2f}" for k, v in worst)
            )
        if "focal_length" in a:
            f = a["focal_length"]
            lines.append(f"    focal tracked {f['tracked']:.3f} vs ground truth {f['ground_truth']:.3f}")
    target = TARGETS_MM.get(doc["set"])
    mean = float(np.mean(faces)) if faces else float("nan")
    if target is not None:
        ok = mean <= target and len(faces) >= 3
        lines.append(
            f"mean face error over {len(faces)} seeds: {mean:.3f} mm — target ≤ {target} mm: "
            f"{'MET' if ok else 'NOT MET'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    for p in paths:
        print("\n".join(summarize_file(p)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
