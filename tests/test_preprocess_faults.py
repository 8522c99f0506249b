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
