"""``vhap qa gate | dashboard | pending``: quality verdicts, the dataset page, a dry run's pending work."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from vhap.config import parse_config
from vhap.errors import VhapError


@dataclass
class GateConfig:
    """Quality gates of the tracked sequences of one subject: one verdict per sequence in --output."""

    runs: tuple[Path, ...] = ()
    """tracking run folders (each with metrics.json)"""
    exports: tuple[Path, ...] = ()
    """their export folders, same order (empty: no export check)"""
    names: tuple[str, ...] = ()
    """sequence names, same order (default: the run folder names)"""
    output: Path = Path("qa")
    """folder of the verdicts: <name>.json, and <name>.FAILED for a failed sequence"""
    max_nme_percent: float | None = 5.0
    """landmark NME above this (percent) fails; None: off"""
    min_face_psnr_db: float | None = 20.0
    """face PSNR below this (dB) fails; None: off"""
    min_head_coverage: float | None = 0.8
    """whole-head coverage below this fails (when metrics.json has it); None: off"""
    decode_images: bool = True
    """validate the export with every image decoded (a truncated image fails)"""
    head_model: str | None = None
    """head model to check vertex counts against (default: the one the export records)"""
    for_gaussian_avatars: bool = False
    """also fail what GaussianAvatars mishandles (a vertex count other than FLAME's): set it when tracking with
    FLAME for GaussianAvatars; the open head model's exports are for the project's own tools"""

    def __post_init__(self):
        if self.exports and len(self.exports) != len(self.runs):
            raise VhapError(f"--exports has {len(self.exports)} folders for {len(self.runs)} runs", fix="one per run")
        if self.names and len(self.names) != len(self.runs):
            raise VhapError(f"--names has {len(self.names)} names for {len(self.runs)} runs", fix="one per run")


@dataclass
class DashboardConfig:
    """One HTML page of every verdict under the given folders (sortable, paged, thumbnails)."""

    verdicts: tuple[Path, ...] = ()
    """folders of verdicts written by `vhap qa gate`"""
    output: Path = Path("qa.html")
    """the page"""
    title: str = "vhap quality gates"
    thresholds: str = ""
    """how the gates were set, shown on the page"""


@dataclass
class PendingConfig:
    """Pending work of a dry run per step and subject: `snakemake -n ... | vhap qa pending`."""

    input: Path | None = None
    """the dry run's output (default: standard input)"""


def _gate(argv: list[str]) -> int:
    from vhap.qa.gates import Thresholds, gate_sequence, write_verdict

    cfg = parse_config(GateConfig, argv, prog="vhap qa gate")
    thresholds = Thresholds(cfg.max_nme_percent, cfg.min_face_psnr_db, cfg.min_head_coverage)
    failed = 0
    for i, run in enumerate(cfg.runs):
        name = cfg.names[i] if cfg.names else Path(run).name
        export = cfg.exports[i] if cfg.exports else None
        v = gate_sequence(name, run, export, thresholds, decode_images=cfg.decode_images, head_model=cfg.head_model,
                          for_gaussian_avatars=cfg.for_gaussian_avatars)  # fmt: skip
        write_verdict(cfg.output, v)
        failed += not v.passed
        print(f"{name}: {'pass' if v.passed else 'FAILED: ' + '; '.join(v.failures)}", flush=True)
    print(f"{len(cfg.runs) - failed} passed, {failed} failed (verdicts in {cfg.output})")
    return 0  # a failed gate is a verdict (the .FAILED marker), not a failed job


def _dashboard(argv: list[str]) -> int:
    from vhap.qa.dashboard import write_dashboard
    from vhap.qa.gates import read_verdicts

    cfg = parse_config(DashboardConfig, argv, prog="vhap qa dashboard")
    verdicts = read_verdicts(list(cfg.verdicts))
    write_dashboard(cfg.output, verdicts, cfg.title, cfg.thresholds)
    failed = sum(not v.passed for v in verdicts)
    print(f"{cfg.output}: {len(verdicts)} sequences, {failed} failed")
    return 0


def _pending(argv: list[str]) -> int:
    from vhap.workflow.summary import parse_dry_run, pending_table

    cfg = parse_config(PendingConfig, argv, prog="vhap qa pending")
    text = sys.stdin.read() if cfg.input is None else Path(cfg.input).read_text()
    print(pending_table(parse_dry_run(text)))
    return 0


ACTIONS = {"gate": _gate, "dashboard": _dashboard, "pending": _pending}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ACTIONS:
        print(f"usage: vhap qa {{{'|'.join(ACTIONS)}}} [options]   (vhap qa <action> --help)", file=sys.stderr)
        return 2
    return ACTIONS[argv[0]](argv[1:])
