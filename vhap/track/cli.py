"""``vhap track``: parse the TrackConfig (presets → YAML → flags) and run :func:`vhap.track.tracker.track`."""

from __future__ import annotations

import time
from pathlib import Path

from vhap.errors import VhapError


def check_finished_run(cfg, out: Path) -> bool:
    """True when ``out`` holds a run finished with the same result-relevant options as ``cfg`` (nothing to do).
    A finished run made with other options raises :class:`~vhap.errors.VhapError` naming the differing keys:
    re-using it would pass off the old result as the new one's. The sequence counts by its folder, however either
    config names it (``cfg.data`` is expected addressed by folder, as :func:`main` does)."""
    from vhap.config.core import read_saved_config
    from vhap.data.config import address_by_folder
    from vhap.track.checkpoint import config_differences
    from vhap.track.config import TrackConfig

    if not (out / "DONE").is_file():
        return False
    fix = "pass --exp.overwrite to track again with the new options, or choose another --exp.output-folder"
    try:
        old = read_saved_config(TrackConfig, out / "config.yml")
    except Exception as e:  # missing, unreadable or from another version: cannot tell that the options match
        raise VhapError(f"finished run whose options cannot be read ({e})", path=out, fix=fix) from e
    try:  # a run saved by root/sequence (older runs, library callers) names the same folder
        old.data = address_by_folder(old.data)
    except VhapError:
        pass  # its sequence is gone or moved: compared as saved, so it differs
    diff = config_differences(old, cfg)
    if diff:
        shown = ", ".join(diff[:8]) + (f" and {len(diff) - 8} more" if len(diff) > 8 else "")
        raise VhapError(f"finished with other options (differing: {shown})", path=out, fix=fix)
    return True


def main(argv: list[str]) -> int:
    from vhap.config import parse_config
    from vhap.data.config import address_by_folder
    from vhap.track.config import TrackConfig

    cfg = parse_config(TrackConfig, argv, preset_group="track", prog="vhap track")
    # One address for the run's config, checkpoints and finished-run check, however the sequence was named; the
    # saved config names the dataset root and subject too (the subject picks NeRSemble's occlusion table).
    cfg.data = address_by_folder(cfg.data)
    if cfg.exp.timestamp_subfolder:
        cfg.exp.output_folder = Path(cfg.exp.output_folder) / time.strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(cfg.exp.output_folder)
    if not cfg.exp.overwrite and check_finished_run(cfg, out):
        print(f"vhap track: {out} is already finished (DONE exists); pass --exp.overwrite to track again")
        return 0
    from vhap.track.outputs import human_summary
    from vhap.track.tracker import track

    metrics = track(cfg)
    print(human_summary(metrics, out))
    return 0
