"""The step runner: optimisation steps of a :class:`~vhap.track.problem.TrackingProblem`, eager or replayed from
CUDA graphs (:mod:`vhap.track.graphs`), and whole fixed-step stages on one sample."""

from __future__ import annotations

import torch
from torch.profiler import record_function

from vhap.track.config import StageConfig
from vhap.track.graphs import StepGraph
from vhap.track.problem import TrackingProblem
from vhap.track.runlog import RunLog


class TrackingInterrupted(RuntimeError):
    """Raised by the test hook ``stop_after`` (simulates a run killed mid-way)."""


class StepRunner:
    """Runs steps of ``problem`` and books them in ``log``.

    ``stop_after``: test hook — raise :class:`TrackingInterrupted` once the run's global step count reaches it
    (None = never)."""

    def __init__(self, problem: TrackingProblem, log: RunLog, cuda_graphs: bool = True):
        self.problem = problem
        self.log = log
        self.cuda_graphs = cuda_graphs
        self.stop_after: int | None = None
        self._kept: dict[tuple, tuple] = {}  # see run_fixed_stage(keep_graph=True)

    # ------------------------------------------------------------------------------------------ one step
    def optimizer(self, stage: StageConfig, lr_scale: float = 1.0, shared_lr_scale: float = 1.0):
        """A fresh optimiser (:class:`vhap.track.adam.Adam`, None without parameters) of ``stage``'s groups; the
        tensors shared by all frames get ``shared_lr_scale`` on top of ``lr_scale``."""
        p = self.problem
        return p.params.optimizer(stage.params, p.cfg.lr, scale=lr_scale, shared_scale=shared_lr_scale)

    def step_terms(self, stage: StageConfig, optimizer, frame_idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on frames ``frame_idx (B,)``; returns the detached loss terms (and ``total``).
        Also what a CUDA graph records."""
        optimizer.zero_grad(set_to_none=True)
        res = self.problem.energy(frame_idx, stage, train=True)
        with record_function("track/backward"):
            res.total.backward()
        with record_function("track/optimizer"):
            optimizer.step()
        terms = {k: v.detach() for k, v in res.terms.items()}
        terms["total"] = res.total.detach()
        return terms

    def step(self, stage_name: str, stage: StageConfig, optimizer, frame_idx: torch.Tensor, graph=None) -> None:
        """One step (replayed from ``graph`` when given) booked in the log under ``stage_name``."""
        if graph is not None:
            terms = graph(frame_idx)
        else:
            terms = self.step_terms(stage, optimizer, frame_idx)
        n = self.log.record_step(stage_name, terms)
        if self.stop_after is not None and n >= self.stop_after:
            raise TrackingInterrupted(f"stopped after {n} steps (test hook)")

    # ------------------------------------------------------------------------------------------ CUDA graphs
    def use_cuda_graph(self, stage: StageConfig, num_steps: int) -> bool:
        """Record this stage's steps as CUDA graphs? On CUDA with ``exp.cuda_graphs``, for landmark stages always
        and for photometric stages when the renderer never synchronises with the host (``render.backend cuda``),
        if there are enough steps to amortise the warm-up and the recording."""
        p = self.problem
        return (
            p.device.type == "cuda"
            and self.cuda_graphs
            and num_steps > StepGraph.WARMUP + 2
            and (not stage.photometric or p.renderer.caps(p.device).capturable)
        )

    def record(self, stage_name: str, stage: StageConfig, optimizer, batch_size: int) -> StepGraph:
        """A :class:`~vhap.track.graphs.StepGraph` of this stage's step (recorded on its first replayable call)."""
        return StepGraph(
            lambda idx: self.step_terms(stage, optimizer, idx),
            batch_size,
            self.problem.device,
            generators=(self.problem.generator,),
            label=stage_name,
        )

    @staticmethod
    def release(graph: StepGraph | None, optimizer) -> None:
        """Free a recorded step and its memory pool (None: nothing to free)."""
        if graph is not None:
            graph.release()
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)  # the recorded gradients live in the graph's memory pool

    # ------------------------------------------------------------------------------------------ fixed stages
    def run_fixed_stage(
        self, stage_name: str, stage: StageConfig, sample: int, lr_scale: float = 1.0, keep_graph: bool = False
    ) -> None:
        """``num_steps`` steps of a fresh Adam (learning rates × ``lr_scale``) on one sample (VHAP: a new
        optimiser per stage call).

        ``keep_graph``: more calls of this stage follow (the pre-pass and the sequential pass run one per sample):
        keep its recorded step and optimiser for them instead of warming up and recording again per sample. The
        next call then zeroes the optimiser's state in place, which is exactly a fresh Adam. The caller ends the
        series with :meth:`release_kept_graphs`."""
        if stage.num_steps <= 0 or not stage.params:
            return
        log = self.log
        graphed = self.use_cuda_graph(stage, stage.num_steps)
        frame_idx = self.problem.sample_idx[sample]
        key = (stage_name, frame_idx.numel(), lr_scale)
        kept = self._kept.pop(key, None) if graphed else None
        if kept is not None:
            opt, graph = kept
            opt.reset()
        else:
            with log.overhead_timer("stage_optimizer"):
                opt = self.optimizer(stage, lr_scale)
            graph = None
            if graphed:
                with log.overhead_timer("stage_graph_init"):
                    graph = self.record(stage_name, stage, opt, frame_idx.numel())
        with log.stage_timer(stage_name), log.progress(stage.num_steps, f"{stage_name} [{sample}]") as bar:
            done = False
            try:
                for _ in range(stage.num_steps):
                    self.step(stage_name, stage, opt, frame_idx, graph)
                    bar.update(1)
                done = True
            finally:
                if done and keep_graph and graph is not None and not graph.failed:
                    self._kept[key] = (opt, graph)
                else:
                    self.release(graph, opt)
            log.flush()

    def release_kept_graphs(self) -> None:
        """Free the steps kept by ``run_fixed_stage(..., keep_graph=True)`` (and their memory pools)."""
        for opt, graph in self._kept.values():
            self.release(graph, opt)
        self._kept.clear()
