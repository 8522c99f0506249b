"""VHAP's stage schedule (VHAP_SPEC §4.2): typed phases, resumable from checkpoints.

Phases: the initialisation stages on the first sample, the optional landmark pre-pass, the sequential pass over
the samples with warm starts, the global epochs over shuffled batches, then the final outputs. A checkpoint is
written only between units of work (a stage, a sample, an epoch), so a run killed at any moment resumes from the
last such boundary and repeats exactly the same computation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vhap.track import checkpoint as ckpt
from vhap.track.checkpoint import Phase
from vhap.track.config import StageConfig
from vhap.track.problem import TrackingProblem
from vhap.track.runlog import RunLog
from vhap.track.steps import StepRunner

#: the initialisation stages, in order (those of the plan run; VHAP_SPEC §4.2)
INIT_STAGES = ("lmk_init_rigid", "lmk_init_all", "rgb_init_texture", "rgb_init_all", "rgb_init_offset")


@dataclass(frozen=True)
class Stage:
    """A stage of the plan: its name (the ``pipeline`` field; the loss history and timings use it) and config."""

    name: str
    config: StageConfig


@dataclass(frozen=True)
class Schedule:
    """The stages of a run by their role in the schedule."""

    init: tuple[Stage, ...]
    prepass: Stage | None
    sequential: Stage
    global_: Stage

    @classmethod
    def from_plan(cls, plan: dict[str, StageConfig], photometric: bool) -> Schedule:
        """From :func:`vhap.track.config.stage_plan` (``photometric``: the ``rgb_*`` or the ``lmk_*`` tracking
        stages)."""
        kind = "rgb" if photometric else "lmk"
        return cls(
            init=tuple(Stage(n, plan[n]) for n in INIT_STAGES if n in plan),
            prepass=Stage("lmk_prepass", plan["lmk_prepass"]) if "lmk_prepass" in plan else None,
            sequential=Stage(f"{kind}_sequential_tracking", plan[f"{kind}_sequential_tracking"]),
            global_=Stage(f"{kind}_global_tracking", plan[f"{kind}_global_tracking"]),
        )


class ScheduleRunner:
    """Runs (or resumes) the schedule of ``problem`` up to the final phase; the caller writes the final outputs.

    ``out_dir``: where the intermediate parameter files go; ``checkpoint_path``: the checkpoint file written
    between units of work and read by :meth:`resume`."""

    def __init__(
        self,
        problem: TrackingProblem,
        steps: StepRunner,
        log: RunLog,
        schedule: Schedule,
        out_dir: Path,
        checkpoint_path: Path,
    ):
        self.problem = problem
        self.steps = steps
        self.log = log
        self.schedule = schedule
        self.out_dir = Path(out_dir)
        self.checkpoint_path = Path(checkpoint_path)
        self.cfg = problem.cfg
        self.fingerprint = ckpt.config_fingerprint(problem.cfg)

    # ------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, optimizer=None, scheduler=None) -> None:
        """Snapshot the run now and write it on the background writer (``checkpoints`` overhead = the snapshot
        plus any wait for the previous write)."""
        self.log.flush()
        t0 = time.perf_counter()
        state = ckpt.snapshot_checkpoint(
            fingerprint=self.fingerprint,
            params=self.problem.params,
            run=self.log.state,
            generator=self.problem.generator,
            optimizer=optimizer,
            scheduler=scheduler,
        )
        self.log.write_in_background(ckpt.write_checkpoint, self.checkpoint_path, state)
        self.log.add_overhead("checkpoints", time.perf_counter() - t0)

    def resume(self) -> dict | None:
        """Restore parameters, RNG states and the run log from the checkpoint; None where there is none."""
        if not self.checkpoint_path.is_file():
            return None
        state = ckpt.load_checkpoint(self.checkpoint_path, self.fingerprint)
        p = self.problem
        p.params.load_state_dict({k: v.to(p.device) for k, v in state["params"].items()})
        ckpt.set_rng_state(state["rng"], p.generator)
        self.log.state = ckpt.restore_run_state(state)
        return state

    # ------------------------------------------------------------------------------------------ the schedule
    def run(self, state: dict | None) -> None:
        """Run every phase from where the run log stands (``state``: the resumed checkpoint, for the optimiser of
        the global epochs)."""
        pos = self.log.state.position
        sch = self.schedule
        steps, log, p = self.steps, self.log, self.problem

        # ---- 1. initialisation stages on the first sample
        if pos.phase == Phase.INIT:
            for i in range(pos.index, len(sch.init)):
                steps.run_fixed_stage(sch.init[i].name, sch.init[i].config, 0)
                pos.index = i + 1
                self.save_checkpoint()
            pos.phase, pos.index = (Phase.PREPASS if sch.prepass is not None else Phase.SEQUENTIAL), 0
            self.save_checkpoint()

        # ---- 2a. landmark pre-pass (our addition; off in VHAP's defaults)
        if pos.phase == Phase.PREPASS:
            self.run_landmark_prepass()
            pos.phase, pos.index = Phase.SEQUENTIAL, 0
            self.save_checkpoint()

        # ---- 2b. sequential pass with warm starts
        seq = sch.sequential
        if pos.phase == Phase.SEQUENTIAL:
            n = len(p.samples)
            every = max(1, self.cfg.exp.checkpoint_every_samples)
            for s in range(pos.index, n):
                steps.run_fixed_stage(seq.name, seq.config, s, keep_graph=s + 1 < n)
                if s + 1 < n:
                    # VHAP fix (§4.5): warm-start *every* frame of the next sample, the last frame included
                    with log.overhead_timer("warm_start"):
                        p.params.warm_start(p.samples[s][-1], p.samples[s + 1], self.cfg.pipeline.sequential_warm_start)
                pos.index = s + 1
                if (s + 1) % every == 0 and s + 1 < n:
                    self.save_checkpoint()
            steps.release_kept_graphs()
            if 0 in self.cfg.pipeline.eval_epochs:
                self.evaluate_and_save(0)
            pos.phase, pos.index = Phase.GLOBAL, 0
            self.save_checkpoint()

        # ---- 3. global epochs (shuffled), lr × global_lr_scale, exponential decay per epoch
        if pos.phase == Phase.GLOBAL:
            self.run_global_epochs(state)
            pos.phase, pos.index = Phase.FINAL, 0
            self.save_checkpoint()

    def run_landmark_prepass(self) -> None:
        """The landmark pre-pass (``pipeline.lmk_prepass``), resumable per sample: every sample after the first
        (which the init stages fitted) is warm-started from the previous sample's last frame, then fitted to
        its landmarks alone (no rendering), with the temporal terms of tracking on. Advances the position's
        index (samples done) and checkpoints like the sequential pass."""
        stage = self.schedule.prepass
        if stage is None:
            return
        p, pos = self.problem, self.log.state.position
        n = len(p.samples)
        scale = self.cfg.pipeline.lmk_prepass_lr_scale
        every = max(1, self.cfg.exp.checkpoint_every_samples)
        for s in range(max(1, pos.index), n):
            with self.log.overhead_timer("warm_start"):
                p.params.warm_start(p.samples[s - 1][-1], p.samples[s], stage.config.params)
            self.steps.run_fixed_stage(stage.name, stage.config, s, lr_scale=scale, keep_graph=s + 1 < n)
            pos.index = s + 1
            if (s + 1) % every == 0 and s + 1 < n:
                self.save_checkpoint()
        self.steps.release_kept_graphs()

    def run_global_epochs(self, state: dict | None) -> None:
        from vhap.track.adam import ExponentialDecay

        g = self.schedule.global_
        p, log, steps, pos, cfg = self.problem, self.log, self.steps, self.log.state.position, self.cfg
        E = g.config.num_epochs
        graphed = steps.use_cuda_graph(g.config, E * len(p.samples))
        with log.overhead_timer("stage_optimizer"):
            opt = steps.optimizer(g.config, cfg.pipeline.global_lr_scale, cfg.pipeline.global_shared_lr_scale)
            sched = None if opt is None else ExponentialDecay(opt, cfg.pipeline.global_lr_gamma)
        if opt is None:
            return
        if state is not None and state.get("optimizer") is not None and pos.index > 0:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        graphs: dict[int, object] = {}  # one recorded step per batch size
        every = max(1, cfg.exp.checkpoint_every_epochs)
        for epoch in range(pos.index, E):
            batches = self.epoch_batches(epoch)
            with log.stage_timer(g.name), log.progress(len(batches), f"{g.name} epoch {epoch + 1}/{E}") as bar:
                for idx in batches:
                    graph = None
                    if graphed:
                        graph = graphs.get(idx.numel())
                        if graph is None:
                            graph = graphs[idx.numel()] = steps.record(g.name, g.config, opt, idx.numel())
                    steps.step(g.name, g.config, opt, idx, graph)
                    bar.update(1)
                log.flush()
            sched.step()
            pos.index = epoch + 1
            if pos.index in cfg.pipeline.eval_epochs and pos.index != E:
                self.evaluate_and_save(pos.index)
            if pos.index % every == 0 or pos.index == E:
                self.save_checkpoint(opt, sched)
        for graph in graphs.values():
            steps.release(graph, opt)

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """Shuffled batches of one global epoch, from a generator seeded by (seed, epoch): the order does not
        depend on how often the run was resumed."""
        g = torch.Generator().manual_seed(self.cfg.exp.seed * 100_003 + epoch)
        T = self.problem.T
        perm = torch.randperm(T, generator=g)
        bs = max(1, self.cfg.exp.batch_size)
        return [perm[i : i + bs].to(self.problem.device) for i in range(0, T, bs)]

    def evaluate_and_save(self, epoch: int) -> None:
        """Evaluate every frame and write ``tracked_flame_params_<epoch>.npz`` (in the background)."""
        from vhap.track import outputs
        from vhap.track.evaluation import evaluate

        t0 = time.perf_counter()
        ev = evaluate(self.problem)
        self.log.add_stage_time("evaluation", time.perf_counter() - t0)
        outputs.write_params_npz(self.problem, self.log, self.out_dir / f"tracked_flame_params_{epoch}.npz", True)
        self.log.state.evaluations[str(epoch)] = outputs.summarize_eval(ev.per_frame)
