"""Landmarks from a real detector on the synthetic 16-view sequence, to carry to the GPU machine.

    python bench/detect_synth_landmarks.py --num-frames 150 --dest .lmk_det/mediapipe

The synthetic sequences' own landmarks are the ground-truth projections plus Gaussian pixel noise: they carry
none of a real detector's systematic errors (its jaw-line and contour definition differs from the head model's,
it fails on profile views). To measure how the landmark weight trades against such errors, this script renders
the sequence bench/gpu_share.py and bench/schedule_sweep.py track (same flags, same seed, so the same ground
truth), runs the project's default detector (``vhap landmarks``, MediaPipe) on its frames and copies the
``<serial>.npz`` files of ``landmark2d/mediapipe/`` to ``--dest``. The GPU machine has no MediaPipe: carry
``--dest`` there and pass it as ``--landmarks-from`` (bench/gpu_schedule.sh: ``LANDMARKS_FROM``). Rendering
runs on this machine's CPU (~36 min for 150 frames on 2 cores); the frames the GPU machine renders for the same
flags differ from these only by rasteriser round-off, far below what the detector's errors are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.gpu_share import add_sequence_args, generate, sequence_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sequence_args(ap, num_frames=150)
    ap.add_argument("--dest", type=Path, required=True, help="folder to write (its name is the detector name)")
    ap.set_defaults(device="cpu")
    args = ap.parse_args(argv)
    _, _, seq_dir = sequence_dir(args)
    if seq_dir.exists() and not (seq_dir / "landmark2d" / "mediapipe").is_dir():
        sys.exit(f"{seq_dir}: generated with other landmarks; pick another --data-dir")
    generate(args, landmarks="detected")
    src = seq_dir / "landmark2d" / "mediapipe"
    tmp = args.dest.with_name(f".{args.dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(src.glob("*.npz")):  # compressed, overlays left out: it travels inside the 64 MiB carry
        with np.load(f) as z:
            np.savez_compressed(tmp / f.name, **{k: z[k] for k in z.files})
    shutil.rmtree(args.dest, ignore_errors=True)
    tmp.rename(args.dest)
    valid = json.loads((src / "meta.json").read_text())["valid_fraction"]
    print(f"{args.dest}: {len(valid)} cameras; frames with a face per camera: {valid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
