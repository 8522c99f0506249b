"""Atomic file and folder writes: write to a temporary sibling, then rename.

An interrupted step therefore never leaves a half-written output behind that a workflow engine (or
a rerun) would mistake for a finished one.

Temporary paths come from :func:`make_temp_file` / :func:`make_temp_dir` only: ``mkstemp``/``mkdtemp`` create
them private (0600 / 0700) and a rename keeps the mode, so these helpers give them the mode an ordinary
``open``/``mkdir`` would (0666 / 0777 less the umask) - outputs stay readable by whoever the umask allows.

Their names carry the writer's host and pid (``.<name>.<host>-<pid>.<random>.tmp<suffix>``), so the next write of
the same target removes what a killed writer left (SIGKILL skips every cleanup) without touching the temporary
of a writer that is still running: :func:`remove_stale_temporaries`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
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


#: a temporary of another host (shared file system) is stale after this long without a change
OTHER_HOST_STALE_S = 24 * 3600.0
#: a temporary named without host and pid (written before they were in the name) is stale after this long
UNNAMED_STALE_S = 3600.0
_OWNER = re.compile(r"(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+")
_UNNAMED = re.compile(r"[A-Za-z0-9_]{8}")


def host_token() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname().split(".")[0]) or "host"


def _owner_token() -> str:
    return f"{host_token()}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(directory: str | Path, prefix: str, suffix: str) -> list[Path]:
    """Remove temporaries ``<prefix><owner>.<random><suffix>`` in ``directory`` whose writer is gone.

    Gone: this host and the pid no longer runs; another host (shared file system) and unchanged for
    :data:`OTHER_HOST_STALE_S`; no owner in the name (older versions) and unchanged for :data:`UNNAMED_STALE_S`.
    Only names of this one target (``prefix``/``suffix``) are considered. Returns the removed paths.
    """
    directory = Path(directory)
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    now, host = time.time(), host_token()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(suffix)) or len(name) <= len(prefix) + len(suffix):
            continue
        middle = name[len(prefix) : len(name) - len(suffix)]
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        m = _OWNER.fullmatch(middle)
        if m:
            if m["host"] == host:
                stale = not _pid_alive(int(m["pid"]))
            else:
                stale = age > OTHER_HOST_STALE_S
        elif _UNNAMED.fullmatch(middle):
            stale = age > UNNAMED_STALE_S
        else:
            continue
        if not stale:
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


def make_temp_file(directory: str | Path, prefix: str, suffix: str) -> Path:
    """An empty new file in ``directory`` (unique name) with the mode an ordinary new file gets; stale
    temporaries of the same ``prefix``/``suffix`` are removed first."""
    remove_stale_temporaries(directory, prefix, suffix)
    fd, tmp = tempfile.mkstemp(prefix=prefix + _owner_token(), suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def make_temp_dir(directory: str | Path, prefix: str, suffix: str) -> Path:
    """A new empty folder in ``directory`` (unique name) with the mode an ordinary ``mkdir`` gives; stale
    temporaries of the same ``prefix``/``suffix`` are removed first."""
    remove_stale_temporaries(directory, prefix, suffix)
    tmp = Path(tempfile.mkdtemp(prefix=prefix + _owner_token(), suffix=suffix, dir=directory))
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


def same_content_atomic(src: str | Path, dst: str | Path) -> None:
    """Give ``dst`` the content of ``src`` atomically: a hard link where the file system allows one (no second
    copy on disk; safe because every writer here replaces a file by rename, never rewrites it in place), else
    a copy."""
    src = Path(src)
    with atomic_path(dst) as tmp:
        tmp.unlink()  # the unique name stays ours: os.link needs it free
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
