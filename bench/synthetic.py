"""Generate a synthetic ground-truth sequence (thin CLI over :func:`vhap.synth.generate_sequence`).

python bench/synthetic.py --rig monocular --num-frames 8 --output output/bench_data
python bench/synthetic.py --rig multiview --image-size 802 550 --head-model standin
"""

from __future__ import annotations

import sys

from vhap.config import parse_config
from vhap.errors import VhapError
from vhap.synth.generate import SynthConfig, generate_sequence
from vhap.synth.heads import resolve_head_model


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(SynthConfig, list(sys.argv[1:] if argv is None else argv), prog="bench/synthetic.py")
    try:
        cfg.head_model = resolve_head_model(cfg.head_model, cfg.output)
        seq = generate_sequence(cfg)
    except VhapError as e:
        print(f"synthetic: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {seq.sequence_dir} ({len(seq.timestep_ids)} frames × {len(seq.camera_ids)} cameras)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
