"""GPU utilisation and memory over time, sampled by ``nvidia-smi`` in the background, and a timeline plot.

    with GpuMonitor(interval_ms=500) as mon:
        mon.mark("track")          # a named phase starts now
        ...
    mon.samples                    # [(t_s, util_percent, mem_used_mib), ...] since the monitor started
    plot_timeline(mon, "timeline.png", title="...")

Without ``nvidia-smi`` (CPU machines) the monitor records phases only and ``samples`` stays empty.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class GpuMonitor:
    interval_ms: int = 500
    gpu_index: int = 0
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    """(seconds since start, GPU utilisation %, memory used MiB)"""
    phases: list[tuple[str, float]] = field(default_factory=list)
    """(name, seconds since start) of each phase start; a phase ends where the next starts or at stop"""
    stopped_at: float | None = None

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def mark(self, name: str) -> None:
        self.phases.append((name, self.now()))

    def start(self) -> GpuMonitor:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return self
        self._proc = subprocess.Popen(
            [
                exe,
                f"--id={self.gpu_index}",
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                f"-lms={self.interval_ms}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 2:
                continue
            try:
                self.samples.append((self.now(), float(parts[0]), float(parts[1])))
            except ValueError:
                continue

    def stop(self) -> None:
        self.stopped_at = self.now()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GpuMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def summary(self) -> dict:
        """Mean utilisation per phase and overall, peak memory; JSON-ready."""
        end = self.stopped_at if self.stopped_at is not None else self.now()
        ends = [t for _, t in self.phases[1:]] + [end]
        bounds = [(n, t, e) for (n, t), e in zip(self.phases, ends, strict=True)]
        per_phase = {}
        for name, a, b in bounds:
            vals = [u for t, u, _ in self.samples if a <= t < b]
            per_phase[name] = {
                "start_s": a,
                "seconds": b - a,
                "mean_util_percent": (sum(vals) / len(vals)) if vals else None,
            }
        utils = [u for _, u, _ in self.samples]
        return {
            "interval_ms": self.interval_ms,
            "num_samples": len(self.samples),
            "mean_util_percent": (sum(utils) / len(utils)) if utils else None,
            "peak_mem_used_mib": max((m for _, _, m in self.samples), default=None),
            "phases": per_phase,
            "samples": [[round(t, 2), u, m] for t, u, m in self.samples],
        }


def plot_timeline(summary: dict, path: Path, title: str) -> None:
    """GPU utilisation and memory over time with the phases shaded (PNG, 1000×420)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = summary.get("samples") or []
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    if samples:
        t = [s[0] for s in samples]
        ax.plot(t, [s[1] for s in samples], color="tab:blue", lw=1.2, label="GPU utilisation (%)")
        ax2 = ax.twinx()
        ax2.plot(t, [s[2] / 1024 for s in samples], color="tab:red", lw=1.0, label="memory used (GiB)")
        ax2.set_ylabel("memory used (GiB)", color="tab:red")
        ax2.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, "no nvidia-smi samples (CPU run)", transform=ax.transAxes, ha="center")
    colours = plt.get_cmap("tab20").colors
    for i, (name, ph) in enumerate((summary.get("phases") or {}).items()):
        ax.axvspan(ph["start_s"], ph["start_s"] + ph["seconds"], color=colours[i % len(colours)], alpha=0.25, lw=0)
        ax.text(ph["start_s"], 103, name, fontsize=7, rotation=30, va="bottom")
    ax.set_ylim(0, 100)
    ax.set_xlabel("seconds")
    ax.set_ylabel("GPU utilisation (%)", color="tab:blue")
    ax.set_title(title, fontsize=10, pad=28)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
