"""#17: preprocessing on the real carphone clip under faults - modes, truncated inputs, stale temporaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vhap.preprocess.cli import preprocess_main


@pytest.fixture
def clip(carphone_path, tmp_path) -> Path:
    video = tmp_path / "carphone.mp4"
    shutil.copy(carphone_path, video)
    return video


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_frame_folder_gets_the_modes_of_the_umask(clip, mask):
    old = os.umask(mask)
    try:
        assert preprocess_main([str(clip), "--fps", "5"]) == 0
    finally:
        os.umask(old)
    images = clip.parent / "carphone" / "images"
    assert images.stat().st_mode & 0o777 == 0o777 & ~mask
    modes = {p.stat().st_mode & 0o777 for p in images.iterdir()}
    assert modes == {0o666 & ~mask}


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_rerun_removes_stale_frame_temporaries_but_not_live_ones(clip):
    """A SIGKILLed extraction leaves `.images.<host>-<pid>.<rand>.tmpdir`; the next run removes it."""
    from vhap.utils.atomic import host_token

    seq = clip.parent / "carphone"
    seq.mkdir()
    stale = seq / f".images.{host_token()}-{_dead_pid()}.abcd1234.tmpdir"
    live = seq / f".images.{host_token()}-{os.getpid()}.efgh5678.tmpdir"  # a writer that still runs
    other = seq / f".images_4.{host_token()}-{_dead_pid()}.ijkl9012.tmpdir"  # another target's: not this step's
    for d in (stale, live, other):
        d.mkdir()
        (d / "000000.jpg").write_bytes(b"x" * 100)
    assert preprocess_main([str(clip), "--fps", "5"]) == 0
    assert not stale.exists() and live.is_dir() and other.is_dir()
    assert (seq / "images" / "meta.json").is_file()
