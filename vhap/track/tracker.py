"""One tracking job: builds its parts and runs the schedule, then writes the outputs.

The parts, each with a public interface: :class:`~vhap.track.problem.TrackingProblem` (device data, cameras,
parameters, ``energy(...) -> Energy``), :class:`~vhap.track.steps.StepRunner` (optimiser steps, CUDA graphs),
:class:`~vhap.track.schedule.ScheduleRunner` (typed phases, checkpoints, resume),
:class:`~vhap.track.runlog.RunLog` (losses, timings, background writer) and
:class:`~vhap.track.runfolder.RunFolder` (where the files go; atomic overwrite).
"""

from __future__ import annotations

import threading
import time

import torch

from vhap.track.config import TrackConfig, stage_plan
from vhap.track.evaluation import Evaluation, evaluate
from vhap.track.problem import TrackingProblem, load_renderer, resolve_device
from vhap.track.runlog import RunLog
from vhap.track.schedule import Schedule, ScheduleRunner
from vhap.track.steps import StepRunner, TrackingInterrupted


class Tracker:
    """Runs one tracking job (see :func:`track`). Construct, then :meth:`run`.

    Public parts: ``problem``, ``steps``, ``log``, ``schedule``; ``plan`` (stage name → config of the stages this
    run uses, in order); ``params`` and ``model`` are the problem's."""

    def __init__(self, cfg: TrackConfig, seq=None, model=None):
        from vhap.model import HeadModel, load_head_assets

        t_setup = time.perf_counter()
        self.cfg = cfg
        device = resolve_device(cfg.exp.device)
        self.log = RunLog(device, cfg.log.interval_scalar, cfg.log.progress)
        if seq is None:
            from vhap.data import load_sequence

            with self.log.overhead_timer("load_sequence"):
                seq = load_sequence(cfg.data)
        with self.log.overhead_timer("head_model"):
            if model is None:
                assets = load_head_assets(cfg.model.head_model)
                model = HeadModel(
                    assets, n_shape=cfg.model.n_shape, n_expr=cfg.model.n_expr, add_teeth=cfg.model.add_teeth
                )
            model = model.to(device)
        with self.log.overhead_timer("renderer"):
            renderer, image_loss_ext = load_renderer(cfg, device)
        self.plan = stage_plan(cfg)
        self.schedule = Schedule.from_plan(self.plan, cfg.exp.photometric)
        self.problem = TrackingProblem(cfg, seq, model, renderer, image_loss_ext, device, self.plan)
        self.steps = StepRunner(self.problem, self.log, cuda_graphs=cfg.exp.cuda_graphs)
        self.log.add_overhead("setup", time.perf_counter() - t_setup)

    @property
    def params(self):
        return self.problem.params

    @property
    def model(self):
        return self.problem.model

    def evaluate(self, collect_images: bool = False) -> Evaluation:
        """Landmark + photometric energy and quality metrics of every frame (no perturbation)."""
        return evaluate(self.problem, collect_images)

    def run_fixed_stage(self, stage_name: str, sample: int, lr_scale: float = 1.0) -> None:
        """``num_steps`` steps of the plan's stage ``stage_name`` on one sample, with a fresh optimiser."""
        self.steps.run_fixed_stage(stage_name, self.plan[stage_name], sample, lr_scale)

    # ------------------------------------------------------------------------------------------ the job
    def run(self, stop_after_steps: int | None = None) -> dict:
        """Run (or resume) the whole schedule and write every output. Returns the metrics (metrics.json).

        ``stop_after_steps``: test hook, raise :class:`TrackingInterrupted` after that many steps in all."""
        from vhap.track import outputs
        from vhap.track.runfolder import RunFolder

        cfg, log = self.cfg, self.log
        if cfg.exp.write_media:
            threading.Thread(target=outputs.import_media_writers, name="vhap-import-media", daemon=True).start()
        self.steps.stop_after = stop_after_steps
        try:
            t0 = time.perf_counter()
            folder = RunFolder.open(cfg.exp.output_folder, cfg.exp.checkpoint_dir, cfg.exp.overwrite)
            runner = ScheduleRunner(self.problem, self.steps, log, self.schedule, folder.work, folder.checkpoint_path)
            state = None
            if cfg.exp.resume and not cfg.exp.overwrite:
                state = runner.resume()
            if state is None:
                folder.clear_checkpoint()
            outputs.write_run_inputs(self.problem, folder.work, fresh=state is None)
            log.add_overhead("run_folder", time.perf_counter() - t0)
            t_start = time.perf_counter()
            if self.problem.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.problem.device)
            runner.run(state)
            metrics = outputs.write_final_outputs(
                self.problem,
                log,
                folder.work,
                final_epoch=self.schedule.global_.config.num_epochs,
                resumed=state is not None,
                t_start=t_start,
            )
            folder.commit()
            return metrics
        finally:
            log.wait_for_writes()


def track(cfg: TrackConfig, *, seq=None, model=None, stop_after_steps: int | None = None) -> dict:
    """Library entry point of ``vhap track``: run or resume the job described by ``cfg``; returns the metrics."""
    return Tracker(cfg, seq=seq, model=model).run(stop_after_steps=stop_after_steps)


__all__ = ["Tracker", "TrackingInterrupted", "track"]
