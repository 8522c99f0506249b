"""CLI entry points of the export part: ``vhap export``, ``vhap combine``, ``vhap validate-export``."""

from __future__ import annotations

import json

from vhap.config import parse_config
from vhap.export.config import CombineConfig, ExportConfig, ValidateConfig


def export_main(argv: list[str]) -> int:
    from vhap.export.nerf import export_nerf_dataset

    cfg = parse_config(ExportConfig, argv, prog="vhap export")
    s = export_nerf_dataset(cfg)
    print(
        f"exported {s.num_frames} frames ({s.num_timesteps} timesteps x {s.num_cameras} cameras) to {s.tgt}; "
        f"splits {s.split_sizes}; hard-linked {s.images_linked} images, {s.masks_linked} masks"
    )
    return 0


def combine_main(argv: list[str]) -> int:
    from vhap.export.combine import combine_datasets

    cfg = parse_config(CombineConfig, argv, prog="vhap combine")
    s = combine_datasets(cfg)
    print(
        f"union of {len(s.train_sequences) + len(s.test_sequences)} sequences ({s.num_timesteps} timesteps) at "
        f"{s.tgt}; test: {s.test_sequences}; splits {s.split_sizes}"
    )
    return 0


def validate_main(argv: list[str]) -> int:
    """Exit status 0 when the dataset is valid, 1 on any violation."""
    from vhap.export.validate import print_report, validate_export

    cfg = parse_config(ValidateConfig, argv, prog="vhap validate-export")
    rep = validate_export(
        cfg.dir,
        decode_images=cfg.decode_images,
        head_model=cfg.head_model,
        for_gaussian_avatars=cfg.for_gaussian_avatars,
    )
    if cfg.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        print_report(rep)
    return 0 if rep.ok else 1
