"""Thin CLI wrappers: parse the typed config, call one library function, save the resolved config."""

from __future__ import annotations

from vhap.config import parse_config, save_config


def preprocess_main(argv: list[str]) -> int:
    from vhap.preprocess.extract import PreprocessConfig, preprocess

    cfg = parse_config(PreprocessConfig, argv, preset_group="preprocess", prog="vhap preprocess")
    outputs = preprocess(cfg)
    for s, out in outputs.items():
        save_config(cfg, out.parent / f"preprocess_config_{out.name}.yml")
        print(f"frames (downsample {s}): {out}")
    return 0


def matting_main(argv: list[str]) -> int:
    from vhap.preprocess.matting import MattingConfig, run_matting

    cfg = parse_config(MattingConfig, argv, prog="vhap matting")
    out = run_matting(cfg)
    save_config(cfg, out.parent / "matting_config.yml")
    print(f"alpha maps: {out}")
    return 0


def landmarks_main(argv: list[str]) -> int:
    from vhap.preprocess.landmarks import LandmarkConfig, detect_landmarks

    cfg = parse_config(LandmarkConfig, argv, prog="vhap landmarks")
    outputs = detect_landmarks(cfg)
    first = next(iter(outputs.values()))
    save_config(cfg, first.parent / f"{cfg.detector}_config.yml" if None in outputs else first.parent / "config.yml")
    for cam, path in outputs.items():
        print(f"landmarks{'' if cam is None else f' camera {cam}'}: {path}")
    return 0
