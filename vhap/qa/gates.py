"""Per-sequence quality gates: thresholds on a tracking run's figures, and the export's validity.

A verdict is written for every sequence, passed or not (``<name>.json``); a failed one also gets a
``<name>.FAILED`` marker (one reason a line), which the workflow reads to leave the sequence out of
unions unless forced. Figures are read from ``metrics.json`` as the tracker writes it (``totals.nme``
is a fraction of the inter-ocular distance, ``totals.psnr_face`` in dB) and, when present, its
``whole_head`` block (``head_coverage`` in [0, 1]).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vhap.errors import VhapError
from vhap.utils.atomic import write_text_atomic

#: Overlay frames shown per sequence on the dashboard.
THUMBNAILS = 4


@dataclass(frozen=True)
class Thresholds:
    """Limits of a passing sequence; None switches a gate off."""

    max_nme_percent: float | None = 5.0
    """landmark NME (percent of the inter-ocular distance) above this fails"""
    min_face_psnr_db: float | None = 20.0
    """face PSNR (dB) below this fails (photometric runs only)"""
    min_head_coverage: float | None = 0.8
    """whole-head coverage (metrics.json ``whole_head.head_coverage``, when present) below this fails"""

    def __post_init__(self):
        for name in ("max_nme_percent", "min_face_psnr_db", "min_head_coverage"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise VhapError(f"qa threshold {name} must be finite, got {v}")
        if self.max_nme_percent is not None and self.max_nme_percent <= 0:
            raise VhapError(f"qa threshold max_nme_percent must be > 0, got {self.max_nme_percent}")
        if self.min_head_coverage is not None and not 0 <= self.min_head_coverage <= 1:
            raise VhapError(f"qa threshold min_head_coverage must be in [0, 1], got {self.min_head_coverage}")


@dataclass
class Verdict:
    """The gate result of one sequence. ``figures``: NME %, face PSNR dB, head coverage, frames (None: n/a)."""

    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    figures: dict[str, float | int | None] = field(default_factory=dict)
    run: str = ""
    export: str = ""
    thumbnails: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _nonfinite(x) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def figures_of(metrics: dict) -> dict[str, float | int | None]:
    """The gated figures of a ``metrics.json`` document (None where the run has none)."""
    totals = metrics.get("totals") or {}
    nme = _finite(totals.get("nme"))
    whole = metrics.get("whole_head") or {}
    return {
        "nme_percent": None if nme is None else 100.0 * nme,
        "face_psnr_db": _finite(totals.get("psnr_face")),
        "head_coverage": _finite(whole.get("head_coverage")),
        "frames": metrics.get("num_timesteps"),
        "cameras": metrics.get("num_cameras"),
    }


def diverged(metrics: dict) -> str | None:
    """Why the run counts as diverged (a ``diverged`` flag or non-finite figures), else None."""
    flag = metrics.get("diverged")
    if flag:
        return f"diverged: {flag}" if isinstance(flag, str) else "diverged (metrics.json says so)"
    totals = metrics.get("totals") or {}
    bad = sorted(k for k, v in totals.items() if _nonfinite(v))
    if bad:
        return f"non-finite figures: {', '.join(bad)}"
    losses = metrics.get("final_losses") or metrics.get("losses") or {}
    if isinstance(losses, dict):
        bad = sorted(k for k, v in losses.items() if _nonfinite(v))
        if bad:
            return f"non-finite losses: {', '.join(bad)}"
    return None


def judge(metrics: dict, thresholds: Thresholds) -> tuple[list[str], dict]:
    """(failures, figures) of one run's metrics; no failures = the run passes the gates."""
    figs = figures_of(metrics)
    failures = []
    why = diverged(metrics)
    if why:
        failures.append(why)
    t = thresholds
    nme = figs["nme_percent"]
    if t.max_nme_percent is not None:
        if nme is None:
            failures.append("no landmark NME (no landmarks fitted?)")
        elif nme > t.max_nme_percent:
            failures.append(f"NME {nme:.4g} % > {t.max_nme_percent:g} %")
    psnr = figs["face_psnr_db"]
    if t.min_face_psnr_db is not None and metrics.get("photometric", True):
        if psnr is None:
            failures.append("no face PSNR")
        elif psnr < t.min_face_psnr_db:
            failures.append(f"face PSNR {psnr:.4g} dB < {t.min_face_psnr_db:g} dB")
    cov = figs["head_coverage"]
    if t.min_head_coverage is not None and cov is not None and cov < t.min_head_coverage:
        failures.append(f"head coverage {cov:.4g} < {t.min_head_coverage:g}")
    return failures, figs


def thumbnails_of(run: Path, count: int = THUMBNAILS) -> list[str]:
    """Up to ``count`` overlay frames of a run, evenly spaced (paths relative to the run folder)."""
    folder = Path(run) / "overlays"
    if not folder.is_dir():
        return []
    files = sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg")
    if len(files) > count:
        step = (len(files) - 1) / (count - 1) if count > 1 else 0
        files = [files[round(i * step)] for i in range(count)]
    return [f"overlays/{f}" for f in files]


def gate_sequence(name: str, run: Path, export: Path | None, thresholds: Thresholds, *, validate: bool = True,
                  decode_images: bool = True, head_model: str | None = None,
                  for_gaussian_avatars: bool = False) -> Verdict:  # fmt: skip
    """The verdict of one sequence: its run's figures against ``thresholds``, and its export's validity."""
    run = Path(run)
    path = run / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        return Verdict(name, False, ["no metrics.json (run not finished)"], {}, str(run), str(export or ""))
    except ValueError as e:
        return Verdict(name, False, [f"unreadable metrics.json: {e}"], {}, str(run), str(export or ""))
    failures, figs = judge(metrics, thresholds)
    if export is not None and validate:
        from vhap.export.validate import validate_export

        try:
            rep = validate_export(
                Path(export), decode_images=decode_images, head_model=head_model,
                for_gaussian_avatars=for_gaussian_avatars,
            )  # fmt: skip
        except VhapError as e:
            failures.append(f"export not readable: {e}")
        else:
            if not rep.ok:
                errors = rep.to_dict().get("num_errors")
                failures.append(f"export invalid ({errors} error(s); vhap validate-export {export})")
    return Verdict(name, not failures, failures, figs, str(run), str(export or ""), thumbnails_of(run))


def write_verdict(folder: Path, verdict: Verdict) -> None:
    """``<name>.json`` always; ``<name>.FAILED`` (the reasons) only for a failed sequence, removed otherwise."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / f"{verdict.name}.json", json.dumps(verdict.to_dict(), indent=1))
    marker = folder / f"{verdict.name}.FAILED"
    if verdict.passed:
        marker.unlink(missing_ok=True)
    else:
        write_text_atomic(marker, "\n".join(verdict.failures) + "\n")


def read_verdicts(folders: list[Path]) -> list[Verdict]:
    """Every ``*.json`` verdict in ``folders`` (sorted by folder, then name)."""
    out = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            d = json.loads(path.read_text())
            out.append(Verdict(**d))
    return out


def failed_members(folder: Path, members: list[str]) -> list[str]:
    """The members of a union whose gate failed (a ``<member>.FAILED`` marker in ``folder``)."""
    return [m for m in members if (Path(folder) / f"{m}.FAILED").exists()]
