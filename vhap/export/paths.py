"""Where an export may be written: never onto, over or into its own inputs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vhap.errors import VhapError


def _within(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def check_target_apart(tgt: str | Path, sources: Iterable[str | Path], *, what: str = "source") -> None:
    """Raise :class:`VhapError` when ``tgt`` is, contains or lies inside one of ``sources``.

    Paths are compared after resolving symlinks, so a link to the source folder is caught too. An export with
    ``--overwrite`` deletes its target before renaming the new one into place: a target that contains a source
    would take the source (and everything next to it) with it; one inside a source writes into the input.
    """
    t = Path(tgt).resolve()
    for src in sources:
        s = Path(src).resolve()
        if t == s:
            relation = f"is the {what}"
        elif _within(s, t):
            relation = f"contains the {what} {s}"
        elif _within(t, s):
            relation = f"lies inside the {what} {s}"
        else:
            continue
        raise VhapError(
            f"the target folder {relation}; writing it would destroy or change its own input",
            path=tgt,
            fix="choose a --tgt outside every source folder",
        )
