"""``vhap track``: parse the TrackConfig (presets → YAML → flags) and run :func:`vhap.track.tracker.track`."""

from __future__ import annotations

import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from vhap.config import parse_config
    from vhap.data.config import resolve_sequence_dir
    from vhap.track.config import TrackConfig

    cfg = parse_config(TrackConfig, argv, preset_group="track", prog="vhap track")
    # the saved config names the dataset root and subject too (the subject picks NeRSemble's occlusion table)
    cfg.data = resolve_sequence_dir(cfg.data)
    if cfg.exp.timestamp_subfolder:
        cfg.exp.output_folder = Path(cfg.exp.output_folder) / time.strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(cfg.exp.output_folder)
    if (out / "DONE").is_file() and not cfg.exp.overwrite:
        print(f"vhap track: {out} is already finished (DONE exists); pass --exp.overwrite to track again")
        return 0
    from vhap.track.outputs import human_summary
    from vhap.track.tracker import track

    metrics = track(cfg)
    print(human_summary(metrics, out))
    return 0
