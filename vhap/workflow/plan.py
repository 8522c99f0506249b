"""The dataset plan: every sequence the workflow processes, found once and written to one file.

The planning process (the snakemake invocation a user starts) discovers the sequences of every dataset
(:func:`vhap.data.layout.discover`, or a TSV listing) and writes them to ``<results>/.plan/<key>.json``;
every job step of that run (a SLURM job parses the Snakefile again, twice) reads that file instead of
listing the dataset again. ``key`` is a digest of the dataset settings, so a job of another run with
other datasets never reads a plan that is not its own.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vhap.data.layout import discover
from vhap.errors import VhapError
from vhap.utils.atomic import write_text_atomic

PLAN_VERSION = 1
#: Cameras assumed for a listed multi-view sequence (a listing names the folder, not its videos).
LISTED_RIG_CAMERAS = 16


@dataclass(frozen=True)
class SequenceRecord:
    """One sequence of a dataset, as the rules use it.

    ``layout``: monocular | nersemble_v1 | nersemble_v2 (the demo is monocular); ``root``: the dataset
    root as ``vhap track --data.root`` sees it; ``folder``: where images/, alpha_maps/, landmark2d/ are
    written; ``videos``: preprocess inputs (a listing gives the sequence folder only); ``frames``: a known
    frame count or None; ``listed``: found in a listing (folders taken on trust, no stat at DAG time).
    """

    ds: str
    layout: str
    subject: str
    seq: str
    root: str
    folder: str
    videos: tuple[str, ...]
    frames: int | None = None
    listed: bool = False

    @property
    def cameras(self) -> int:
        """Cameras of the sequence (a listed multi-view sequence is assumed to be a full NeRSemble rig)."""
        if self.listed and self.layout != "monocular":
            return LISTED_RIG_CAMERAS
        return max(1, len(self.videos))


def _sequence_folder(root: Path, layout: str, subject: str, seq: str) -> Path:
    if layout == "nersemble_v1":
        return root / subject / seq
    return root / subject / "sequences" / seq


def read_listing(ds: str, layout: str, root: str | Path | None, path: str | Path) -> list[SequenceRecord]:
    """Sequences from a TSV listing ``subject<TAB>sequence[<TAB>frames]`` (``#`` comments); no scan."""
    path = Path(path)
    if not path.is_file():
        raise VhapError(f"dataset '{ds}': listing file not found", path=path, fix=f"datasets.{ds}.listing")
    root = Path(root or ".")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise VhapError(f"line {lineno}: expected 'subject<TAB>sequence[<TAB>frames]', got {line!r}", path=path)
        subject, seq = cols[0], cols[1]
        try:
            frames = int(cols[2]) if len(cols) > 2 and cols[2].strip() else None
        except ValueError:
            raise VhapError(f"line {lineno}: frame count {cols[2]!r} is not an integer", path=path) from None
        if layout == "monocular":
            out.append(
                SequenceRecord(
                    ds, layout, subject, seq, str(root), str(root / seq), (str(root / f"{seq}.mp4"),), frames, True
                )
            )
        else:
            folder = str(_sequence_folder(root, layout, subject, seq))
            out.append(SequenceRecord(ds, layout, subject, seq, str(root), folder, (folder,), frames, True))
    return out


def scan_dataset(ds: str, layout: str, root: str | Path, subjects: Iterable[str] = ()) -> list[SequenceRecord]:
    """Sequences of a dataset root that have raw videos (what ``vhap preprocess`` can read).

    One directory listing per subject and per sequence folder (:func:`vhap.data.layout.discover`).
    A monocular video is its own subject.
    """
    root = Path(root)
    if not root.is_dir():
        raise VhapError(f"dataset '{ds}': root is not a folder", path=root, fix=f"datasets.{ds}.root")
    out = []
    for e in discover(root, layout, subjects=list(subjects) or None):
        if not e.videos:  # frames without raw videos: nothing for `vhap preprocess` to read
            continue
        subject = e.subject or e.sequence
        out.append(
            SequenceRecord(
                ds, layout, subject, e.sequence, str(root), str(e.folder), tuple(str(v) for v in e.videos.values())
            )
        )
    return out


def select(
    records: Iterable[SequenceRecord],
    subjects: Iterable[str] = (),
    sequences: Iterable[str] = (),
    exclude: Iterable[str] = (),
    skipped: Callable[[str, str], bool] | None = None,
) -> list[SequenceRecord]:
    """Records of the wanted subjects whose sequence matches a ``sequences`` glob (all if none) and no
    ``exclude`` glob, less those ``skipped(subject, seq)`` says to leave out."""
    subjects, sequences, exclude = set(subjects), list(sequences), list(exclude)
    out = []
    for r in records:
        if subjects and r.subject not in subjects:
            continue
        if sequences and not any(fnmatch.fnmatchcase(r.seq, p) for p in sequences):
            continue
        if any(fnmatch.fnmatchcase(r.seq, p) for p in exclude):
            continue
        if skipped is not None and skipped(r.subject, r.seq):
            continue
        out.append(r)
    return out


def plan_key(settings: object) -> str:
    """Digest of JSON-able ``settings`` (key order does not matter): names the plan of one configuration."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def plan_path(results: str | Path, key: str) -> Path:
    return Path(results) / ".plan" / f"{key}.json"


def write_plan(path: str | Path, records: Iterable[SequenceRecord]) -> None:
    """Write the plan atomically (a job never reads half a file), as one JSON document."""
    rows = [dataclasses.astuple(r) for r in records]
    doc = {"version": PLAN_VERSION, "fields": [f.name for f in dataclasses.fields(SequenceRecord)], "records": rows}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(doc, separators=(",", ":")))


def read_plan(path: str | Path) -> list[SequenceRecord]:
    """The records of a plan written by :func:`write_plan`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise VhapError(
            "the workflow plan is missing (a job step started without its planning run?)",
            path=path,
            fix="rerun snakemake from the login node; it writes the plan before queueing jobs",
        ) from None
    except ValueError as e:
        raise VhapError(f"unreadable workflow plan: {e}", path=path, fix="delete it and rerun snakemake") from None
    if doc.get("version") != PLAN_VERSION:
        raise VhapError("workflow plan of another version", path=path, fix="delete it and rerun snakemake")
    out = []
    for row in doc["records"]:
        ds, layout, subject, seq, root, folder, videos, frames, listed = row
        out.append(SequenceRecord(ds, layout, subject, seq, root, folder, tuple(videos), frames, listed))
    return out


def video_stamp(record: SequenceRecord) -> str:
    """Digest of name, size and mtime of a scanned multi-view sequence's videos ('' otherwise).

    A monocular video is a rule input itself; a listing's folders are taken on trust.
    """
    if record.layout == "monocular" or record.listed:
        return ""
    stats = []
    for path in record.videos:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise VhapError("video found by the scan is gone", path=path, fix="rerun, or restore it") from None
        stats.append((os.path.basename(path), st.st_size, st.st_mtime_ns))
    return hashlib.sha1(repr(stats).encode()).hexdigest()[:16]
