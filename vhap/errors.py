"""User-facing errors.

Every bad input (missing file, corrupt video, missing asset, bad calibration, ...) raises
:class:`VhapError` with one message that names the offending path and says how to fix it. The CLI
prints such errors without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class VhapError(RuntimeError):
    """An error caused by the user's input or environment, with an actionable message."""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        parts = []
        if path is not None:
            parts.append(f"{path}: ")
        parts.append(message)
        if fix:
            parts.append(f"\n  fix: {fix}")
        super().__init__("".join(parts))
        self.path = None if path is None else Path(path)
        self.fix = fix
