"""The run log of a tracking job: schedule position, loss history, time per stage and outside the stages, and the
background writer of its files.

Loss values stay on the device and are read back every ``log.interval_scalar`` steps (one host sync per interval),
so a step never waits for the host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

from vhap.track.checkpoint import BackgroundWriter, RunState


class RunLog:
    """Bookkeeping of one run. ``state`` (:class:`~vhap.track.checkpoint.RunState`) is what a checkpoint keeps;
    ``overhead`` / ``overhead_max`` are seconds spent outside the optimisation stages by kind (set-up, checkpoints,
    parameter files, ...; summed, and the longest single occurrence), reported in metrics.json so the end-to-end
    time can be accounted for."""

    def __init__(self, device: torch.device, interval_scalar: int = 100, progress: bool = True):
        self.device = device
        self.interval = max(1, interval_scalar)
        self.show_progress = progress
        self.state = RunState()
        self.overhead: dict[str, float] = {}
        self.overhead_max: dict[str, float] = {}
        self._pending: list[tuple[str, int, dict[str, torch.Tensor]]] = []
        self._bar = None
        self._writer = BackgroundWriter()

    # ------------------------------------------------------------------------------------------ losses
    def record_step(self, stage_name: str, terms: dict[str, torch.Tensor]) -> int:
        """Count one step of ``stage_name`` with its (device) loss terms; returns the new global step."""
        pos = self.state.position
        pos.global_step += 1
        self._pending.append((stage_name, pos.global_step, terms))
        if len(self._pending) >= self.interval:
            self.flush()
        return pos.global_step

    def flush(self) -> None:
        """Read the pending loss values back (one host sync) into the loss history: one entry per stage, the mean
        of its pending steps."""
        if not self._pending:
            return
        by_stage: dict[str, list] = {}
        for stage, step, terms in self._pending:
            by_stage.setdefault(stage, []).append((step, terms))
        for stage, items in by_stage.items():
            keys = sorted(items[0][1])
            stacked = torch.stack([torch.stack([t[k] for k in keys]) for _, t in items]).float().cpu().numpy()
            mean = stacked.mean(0)
            entry = {
                "stage": stage,
                "step": int(items[-1][0]),
                **{k: float(v) for k, v in zip(keys, mean, strict=True)},
            }
            self.state.loss_history.append(entry)
            if self._bar is not None:
                self._bar.set_postfix(total=f"{entry['total']:.4g}", refresh=False)
        self._pending.clear()

    # ------------------------------------------------------------------------------------------ time
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def stage_timer(self, stage_name: str) -> Iterator[None]:
        """Book the block's wall time and steps to ``stage_name`` (device work it enqueued is waited for)."""
        t0, s0 = time.perf_counter(), self.state.position.global_step
        try:
            yield
        finally:
            self._sync()
            self.add_stage_time(stage_name, time.perf_counter() - t0, self.state.position.global_step - s0)

    def add_stage_time(self, stage_name: str, seconds: float, steps: int | None = None) -> None:
        """Book ``seconds`` (and ``steps`` optimisation steps, if any) to ``stage_name`` in the timing report."""
        st = self.state
        st.stage_time[stage_name] = st.stage_time.get(stage_name, 0.0) + seconds
        if steps is not None:
            st.stage_steps[stage_name] = st.stage_steps.get(stage_name, 0) + steps

    def add_overhead(self, kind: str, seconds: float) -> None:
        self.overhead[kind] = self.overhead.get(kind, 0.0) + seconds
        self.overhead_max[kind] = max(self.overhead_max.get(kind, 0.0), seconds)

    @contextlib.contextmanager
    def overhead_timer(self, kind: str) -> Iterator[None]:
        """Book the wall time of the block to ``overhead[kind]`` (device work it enqueues is waited for)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.add_overhead(kind, time.perf_counter() - t0)

    @contextlib.contextmanager
    def progress(self, total: int, desc: str):
        """A progress bar over ``total`` steps (hidden with ``log.no-progress``) that shows the latest loss."""
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, disable=not self.show_progress, leave=False, dynamic_ncols=True) as bar:
            self._bar = bar
            try:
                yield bar
            finally:
                self._bar = None

    # ------------------------------------------------------------------------------------------ files
    def write_in_background(self, write, *args) -> None:
        """Run ``write(*args)`` (a file write of host data) on the run's background writer, after earlier ones."""
        self._writer.submit(write, *args)

    def wait_for_writes(self) -> None:
        """Block until the files being written in the background are on disk (or raise a write's error)."""
        t0 = time.perf_counter()
        self._writer.wait()
        self.add_overhead("checkpoints", time.perf_counter() - t0)
