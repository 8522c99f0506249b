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


# ------------------------------------------------------------------------------------------ OS errors (#17 item 11)


def test_read_only_target_is_one_line_exit_2(tmp_path, run, monkeypatch, capsys):
    import errno

    import vhap.utils.atomic as atomic
    from vhap.cli import main

    def read_only(directory, prefix, suffix):
        raise OSError(errno.EROFS, "Read-only file system", str(Path(directory) / f"{prefix}{suffix}"))

    monkeypatch.setattr(atomic, "make_temp_dir", read_only)
    capsys.readouterr()
    assert main(["export", "--src", str(run.run_dir), "--tgt", str(tmp_path / "ro" / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vhap export: error: ") and "read-only file system (EROFS)" in err
    assert str(tmp_path / "ro") in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_disk_full_mid_write_names_the_target_and_leaves_nothing(tmp_path, run, monkeypatch, capsys):
    """ENOSPC from a write (no file name in the error) becomes `<target>: disk full (ENOSPC)`."""
    import errno

    import vhap.export.nerf as nerf
    from vhap.cli import main

    def full(path, doc):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nerf, "write_json", full)
    tgt = tmp_path / "full"
    capsys.readouterr()
    assert main(["export", "--src", str(run.run_dir), "--tgt", str(tgt)]) == 2
    stderr = capsys.readouterr().err
    err = stderr.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith(f"vhap export: error: {tgt}: disk full (ENOSPC). ") and "Traceback" not in stderr
    assert not tgt.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".full.")]


class _FullAfter:
    """A binary file that accepts ``limit`` bytes, then fails as a full disk does."""

    def __init__(self, limit: int):
        self.limit, self.written = limit, 0

    def write(self, data) -> int:
        import errno

        if self.written + len(data) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_torch_save_on_a_full_disk_is_enospc_not_unexpected_pos(tmp_path, monkeypatch):
    import errno

    import torch

    import vhap.utils.atomic as atomic
    from vhap.track.checkpoint import write_checkpoint

    # what torch alone says
    with pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save({"x": torch.zeros(4096)}, _FullAfter(2000))
    import builtins

    def fake_open(path, mode="r", *args, **kwargs):
        return _FullAfter(2000) if mode == "wb" else builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    with pytest.raises(OSError) as info:
        write_checkpoint(tmp_path / "ckpt.pt", {"x": torch.zeros(4096)})
    assert info.value.errno == errno.ENOSPC and info.value.filename.endswith(".pt")
    assert not list(tmp_path.iterdir())  # the temporary file is gone


def _mount_tiny_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    import subprocess

    path.mkdir()
    if os.geteuid() != 0:
        return False
    opts = f"size={size}" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def test_real_read_only_disk(tmp_path, run, capsys):
    """On a real read-only tmpfs (root only; skipped elsewhere; chmod does not stop root): exit 2, one line."""
    import subprocess

    from vhap.cli import main

    disk = tmp_path / "ro"
    if not _mount_tiny_tmpfs(disk, "200k", read_only=True):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        capsys.readouterr()
        assert main(["export", "--src", str(run.run_dir), "--tgt", str(disk / "export")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"vhap export: error: {disk}") and "read-only file system (EROFS)" in err
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_real_full_disk_export_and_checkpoint(tmp_path, run, capsys):
    """On a real 200 kB tmpfs (root only; skipped elsewhere): export and a checkpoint fail with ENOSPC, exit 2."""
    import errno
    import subprocess

    import torch

    from vhap.cli import main
    from vhap.track.checkpoint import write_checkpoint

    disk = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(disk, "200k"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        with pytest.raises(OSError) as info:
            write_checkpoint(disk / "ckpt.pt", {"x": torch.zeros(200_000)})
        assert info.value.errno == errno.ENOSPC
        capsys.readouterr()
        assert main(["export", "--src", str(run.run_dir), "--tgt", str(disk / "export"), "--image-format", "png"]) == 2
        err = capsys.readouterr().err
        assert "disk full (ENOSPC)" in err and str(disk) in err and "Traceback" not in err
        assert not list(disk.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)  # lazy: an fd a failure left open must not block it


def test_next_write_removes_stale_temporaries_of_the_same_target_only(tmp_path):
    """A SIGKILLed run leaves `.overlay.<host>-<pid>.<rand>.tmp.mp4` in its folder; the next write of overlay.mp4
    removes it, and leaves a live writer's, another host's recent one and other targets' alone."""
    import subprocess
    import time

    from vhap.utils.atomic import UNNAMED_STALE_S, host_token, write_bytes_atomic

    p = subprocess.Popen(["true"])
    p.wait()
    dead, live, host = p.pid, os.getpid(), host_token()
    names = {
        f".overlay.{host}-{dead}.k3j4h5g6.tmp.mp4": False,  # killed writer: removed
        f".overlay.{host}-{live}.a1b2c3d4.tmp.mp4": True,  # running writer: kept
        f".overlay.otherhost-{dead}.z9y8x7w6.tmp.mp4": True,  # another machine, recent: kept
        ".overlay.oldname1.tmp.mp4": False,  # no owner in the name (older version), hours old: removed
        ".overlay.newname1.tmp.mp4": True,  # no owner, recent: kept
        f".metrics.{host}-{dead}.q1w2e3r4.tmp.json": True,  # another target: kept
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    old = time.time() - UNNAMED_STALE_S - 60
    os.utime(tmp_path / ".overlay.oldname1.tmp.mp4", (old, old))
    write_bytes_atomic(tmp_path / "overlay.mp4", b"video")
    assert (tmp_path / "overlay.mp4").read_bytes() == b"video"
    for name, kept in names.items():
        assert (tmp_path / name).exists() == kept, name


# ------------------------------------------------------------------------ frames.json from any directory (item 2)


def test_run_folder_reads_from_any_working_directory(tmp_path, run, monkeypatch):
    """frames.json written by `vhap track` run in one directory (relative data paths, as every demo and workflow
    run has) is read by export and the viewer from another; a missing input image is a loud error."""
    from types import SimpleNamespace

    from vhap.export.run import load_tracked_run
    from vhap.track.outputs import write_frames_json
    from vhap.viewer.scene import RunScene

    work = run.run_dir.parent.parent  # the folder holding the data folder and the output folder
    monkeypatch.chdir(work)
    rel = lambda p: Path(os.path.relpath(p, work))  # noqa: E731
    seq = SimpleNamespace(
        timestep_ids=[f"{t:06d}" for t in range(len(run.frame_paths))],
        camera_ids=run.camera_ids,
        frame_paths=[[rel(p) for p in row] for row in run.frame_paths],
        alpha_paths=[[rel(p) for p in row] for row in run.alpha_paths],
        image_size=run.image_size,
    )
    frames_json = rel(run.run_dir) / "frames.json"
    original = frames_json.read_text()
    try:
        write_frames_json(SimpleNamespace(seq=seq), frames_json)
        monkeypatch.chdir(tmp_path)  # somewhere else entirely
        loaded = load_tracked_run(run.run_dir)
        assert [f.image_path.resolve() for f in loaded.frames] == [p.resolve() for row in run.frame_paths for p in row]
        export_nerf_dataset(ExportConfig(src=run.run_dir, tgt=tmp_path / "exp", mask_below_neck=False))
        # the run folder reached through a symlinked folder (results -> /scratch/...), written and read that way:
        # the same files (".." in the stored paths is resolved physically, not undone lexically)
        alias = tmp_path / "deeper" / "alias"
        alias.parent.mkdir()
        alias.symlink_to(run.run_dir.parent)
        monkeypatch.chdir(work)
        write_frames_json(SimpleNamespace(seq=seq), alias / run.run_dir.name / "frames.json")
        monkeypatch.chdir(tmp_path)
        for src in (alias / run.run_dir.name, run.run_dir):
            assert [f.image_path for f in load_tracked_run(src).frames] == [f.image_path for f in loaded.frames]
        scene = RunScene(run.run_dir, min_size=0)
        assert scene.input_image(0, 0).std() > 5  # the input frame, not the grey stand-in
        # an input image that is gone: export and viewer say so instead of exporting/showing nothing
        moved = run.frame_paths[1][0].with_suffix(".moved")
        run.frame_paths[1][0].rename(moved)
        try:
            for reader in (lambda: load_tracked_run(run.run_dir), lambda: RunScene(run.run_dir, min_size=0)):
                with pytest.raises(VhapError, match="input image not found"):
                    reader()
        finally:
            moved.rename(run.frame_paths[1][0])
    finally:
        frames_json = run.run_dir / "frames.json"
        frames_json.write_text(original)


def test_same_content_is_a_hard_link_that_survives_a_later_replace_of_its_source(tmp_path, monkeypatch):
    """VHAP's second name of the final parameters costs no disk (hard link), stays the old content when the
    source is replaced by an atomic write, and falls back to a copy where links are refused."""
    from vhap.utils.atomic import same_content_atomic, write_bytes_atomic

    src, dst = tmp_path / "tracked_flame_params.npz", tmp_path / "tracked_flame_params_30.npz"
    write_bytes_atomic(src, b"first")
    write_bytes_atomic(dst, b"an older result")
    same_content_atomic(src, dst)
    assert dst.read_bytes() == b"first" and os.stat(dst).st_ino == os.stat(src).st_ino
    write_bytes_atomic(src, b"second")
    assert dst.read_bytes() == b"first" and src.read_bytes() == b"second"

    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    other = tmp_path / "copy.npz"
    same_content_atomic(src, other)
    assert other.read_bytes() == b"second" and os.stat(other).st_ino != os.stat(src).st_ino
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["copy.npz", "tracked_flame_params.npz", "tracked_flame_params_30.npz"]  # no temporaries
