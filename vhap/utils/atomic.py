"""Atomic file and folder writes: write to a temporary sibling, then rename.

An interrupted step therefore never leaves a half-written output behind that a workflow engine (or
a rerun) would mistake for a finished one.

Temporary paths come from :func:`make_temp_file` / :func:`make_temp_dir` only: ``mkstemp``/``mkdtemp`` create
them private (0600 / 0700) and a rename keeps the mode, so these helpers give them the mode an ordinary
``open``/``mkdir`` would (0666 / 0777 less the umask) - outputs stay readable by whoever the umask allows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status`` on Linux; elsewhere a set-and-restore)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_file(directory: str | Path, prefix: str, suffix: str) -> Path:
    """An empty new file in ``directory`` (unique name) with the mode an ordinary new file gets."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def make_temp_dir(directory: str | Path, prefix: str, suffix: str) -> Path:
    """A new empty folder in ``directory`` (unique name) with the mode an ordinary ``mkdir`` gives."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=directory))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the suffix so that writers which infer the format from the extension
    (PIL, numpy, cv2) still work. On an exception the temporary file is removed and nothing appears
    at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = make_temp_file(path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        _raise_with_path(e, path)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it replaces ``path`` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = make_temp_dir(path.parent, prefix=f".{path.name}.", suffix=".tmpdir")
    try:
        yield tmp_path
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp_path, path)
    except BaseException as e:
        shutil.rmtree(tmp_path, ignore_errors=True)
        _raise_with_path(e, path)
        raise


def _raise_with_path(error: BaseException, path: Path) -> None:
    """Re-raise an OSError of a write (``write``/``close`` errors name no file) as one naming ``path``."""
    if isinstance(error, OSError) and error.errno is not None and error.filename is None:
        raise OSError(error.errno, error.strerror or os.strerror(error.errno), str(path)) from error


class _RecordingWriter:
    """A binary file wrapper that remembers the first OSError of a write (torch turns it into a RuntimeError)."""

    def __init__(self, fh):
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_torch(obj, path: str | Path) -> None:
    """``torch.save(obj, path)`` whose disk errors stay OSErrors with their errno (ENOSPC, EROFS, ...).

    torch's zip writer reports a failed write as ``RuntimeError: ... unexpected pos N vs M``; here the OSError
    behind it is raised instead, naming ``path``. Not atomic by itself: call it on a path from :func:`atomic_path`.
    """
    import torch

    path = Path(path)
    with open(path, "wb") as fh:
        writer = _RecordingWriter(fh)
        try:
            torch.save(obj, writer)
        except RuntimeError as e:
            if writer.error is None:
                raise
            err = writer.error
            raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from e


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
