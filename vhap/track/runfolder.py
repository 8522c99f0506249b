"""Where a tracking run writes, and the guarantees about it: an overwrite is atomic, a finished run is not
silently re-used with other options, and checkpoints may live outside the run folder.

* ``--exp.overwrite`` of an existing run builds the new run in a hidden sibling folder and swaps it in only once
  it is complete (``DONE`` written): an interrupted overwrite leaves the old run as it was.
* ``--exp.checkpoint-dir DIR`` keeps the checkpoint out of the run folder, where a workflow engine that deletes
  the outputs of a failed job does not look, so the retry resumes; it is removed after the run finishes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vhap.errors import VhapError

CHECKPOINT_NAME = "latest.pt"
#: the checkpoint of an overwrite in progress, next to the old run's (with ``exp.checkpoint_dir``)
OVERWRITE_CHECKPOINT_NAME = "latest.overwrite.pt"


def staging_path(final: Path) -> Path:
    """The hidden sibling an overwrite of ``final`` is built in."""
    return final.parent / f".{final.name}.overwrite"


def retired_path(final: Path) -> Path:
    """Where the old run waits while the new one takes its place (only without an atomic exchange)."""
    return final.parent / f".{final.name}.overwritten"


@dataclass
class RunFolder:
    """The folders of one run. ``final``: the run folder (``exp.output_folder``); ``work``: where the files are
    written now (``final``, or the staging sibling of an overwrite); ``checkpoint_path``: the checkpoint file."""

    final: Path
    work: Path
    checkpoint_path: Path
    checkpoint_dir: Path | None = None

    @property
    def staged(self) -> bool:
        return self.work != self.final

    @classmethod
    def open(cls, output_folder: Path, checkpoint_dir: Path | None, overwrite: bool) -> RunFolder:
        """Settle an interrupted swap or overwrite of an earlier process, then choose where this run writes."""
        final = Path(output_folder)
        recover_swap(final)
        shutil.rmtree(staging_path(final), ignore_errors=True)  # an interrupted overwrite starts again from scratch
        staged = overwrite and final.is_dir() and any(final.iterdir())
        work = staging_path(final) if staged else final
        work.mkdir(parents=True, exist_ok=True)
        name = OVERWRITE_CHECKPOINT_NAME if staged else CHECKPOINT_NAME
        ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        path = (work / "checkpoints" / name) if ckpt_dir is None else (ckpt_dir / name)
        return cls(final=final, work=work, checkpoint_path=path, checkpoint_dir=ckpt_dir)

    def clear_checkpoint(self) -> None:
        """Start without a checkpoint: remove the one this run would write (another run's are left alone)."""
        self.checkpoint_path.unlink(missing_ok=True)

    def commit(self) -> None:
        """The run in ``work`` is complete: swap it in for the old run (an overwrite), and remove the checkpoints
        kept outside the run folder."""
        if self.staged:
            exchange(self.work, self.final)
            shutil.rmtree(self.work)  # the old run, now at the staging path
            self.work = self.final
        if self.checkpoint_dir is not None:
            for name in (CHECKPOINT_NAME, OVERWRITE_CHECKPOINT_NAME):
                (self.checkpoint_dir / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: someone else's files are there too
                self.checkpoint_dir.rmdir()


# ------------------------------------------------------------------------------------------------ atomic swap
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def exchange(a: Path, b: Path) -> None:
    """Swap two folders. Linux: one atomic ``renameat2(RENAME_EXCHANGE)``. Elsewhere two renames, with ``b``
    parked at :func:`retired_path` in between (:func:`recover_swap` finishes such a swap if it was cut)."""
    fn = _renameat2()
    if fn is not None:
        if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (22, 38, 95):  # EINVAL / ENOSYS / EOPNOTSUPP: the file system cannot; fall back
            raise VhapError(f"cannot swap in the new run ({os.strerror(err)})", path=b, fix="check the folder")
    parked = retired_path(b)
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)


def recover_swap(final: Path) -> None:
    """Finish a two-rename swap that was cut short: the new run (in staging, with ``DONE``) takes ``final``'s
    place if ``final`` is missing; else the old run goes back."""
    parked = retired_path(final)
    if not parked.exists():
        return
    staging = staging_path(final)
    if final.exists():  # cut after the second rename: the swap is done, the old run was being put aside
        shutil.rmtree(parked, ignore_errors=True)
    elif (staging / "DONE").is_file():
        os.rename(staging, final)
        shutil.rmtree(parked, ignore_errors=True)
    else:
        os.rename(parked, final)
