"""#17: exports never destroy their inputs (targets apart from sources), and read run folders from anywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_export_fixtures import make_run, standin_head

from vhap.errors import VhapError
from vhap.export.combine import combine_datasets
from vhap.export.config import CombineConfig, ExportConfig
from vhap.export.nerf import export_nerf_dataset


@pytest.fixture(scope="module")
def head(tmp_path_factory, flame_topology_dir) -> str:
    return standin_head(tmp_path_factory.mktemp("heads"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, head):
    return make_run(tmp_path_factory.mktemp("safety") / "out", head, rig="monocular", num_frames=2, seed=5)


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_export_refuses_a_target_that_is_contains_or_lies_inside_its_source(tmp_path, run):
    root = run.run_dir.parent
    before_run, before_root = _snapshot(run.run_dir), _snapshot(root)
    link = tmp_path / "link_to_run"
    link.symlink_to(run.run_dir)
    cases = {
        run.run_dir: "is the tracking run",
        link: "is the tracking run",  # a symlink to the run is the run
        root: "contains the tracking run",  # the parent: every run in it would go
        run.run_dir / "export": "lies inside the tracking run",
        run.frame_paths[0][0].parent.parent: "folder of input frames",  # the sequence folder holding the frames
    }
    for tgt, message in cases.items():
        with pytest.raises(VhapError, match=message):
            export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tgt, overwrite=True, mask_below_neck=False))
    assert _snapshot(run.run_dir) == before_run and _snapshot(root) == before_root
    # the CLI: one line, exit 2, the run still there
    from vhap.cli import main

    assert main(["export", "--src", str(run.run_dir), "--tgt", str(root), "--overwrite"]) == 2
    assert (run.run_dir / "DONE").is_file() and _snapshot(root) == before_root
    # a sibling target is fine
    export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "ok", mask_below_neck=False))
    assert (tmp_path / "ok" / "transforms.json").is_file()


def test_combine_refuses_a_target_that_is_contains_or_lies_inside_a_source(tmp_path, run):
    exports = tmp_path / "exports"
    srcs = []
    for name in ("999_A", "999_B"):
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=exports / name, mask_below_neck=False))
        srcs.append(exports / name)
    before = _snapshot(exports)
    for tgt, message in (
        (srcs[0], "is the source export"),
        (exports, "contains the source export"),
        (srcs[1] / "union", "lies inside the source export"),
    ):
        with pytest.raises(VhapError, match=message):
            combine_datasets(CombineConfig(src=tuple(srcs), tgt=tgt, overwrite=True))
    assert _snapshot(exports) == before
    combine_datasets(CombineConfig(src=tuple(srcs), tgt=tmp_path / "union"))
    assert json.loads((tmp_path / "union" / "transforms.json").read_text())["frames"]
    assert os.path.isdir(srcs[0] / "images")


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _modes(folder: Path) -> set[tuple[str, int]]:
    """(kind, permission bits) of ``folder`` and everything in it, hard links to the inputs left out."""
    out = {("dir", folder.stat().st_mode & 0o777)}
    for p in folder.rglob("*"):
        if p.is_file() and p.stat().st_nlink > 1:
            continue  # a hard link shares the input's mode
        out.add(("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777))
    return out


def test_outputs_get_the_modes_of_the_umask(tmp_path, run, umask):
    from vhap.utils.atomic import atomic_dir, atomic_path, write_text_atomic

    want_file, want_dir = 0o666 & ~umask, 0o777 & ~umask
    write_text_atomic(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "b.npz") as tmp:
        tmp.write_bytes(b"y")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("z")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == want_file
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == want_file
    assert _modes(tmp_path / "folder") == {("dir", want_dir), ("file", want_file)}
    # a whole export (images re-encoded, so no links): every folder and file as the umask says
    tgt = tmp_path / "export"
    export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tgt))
    assert _modes(tgt) == {("dir", want_dir), ("file", want_file)}
