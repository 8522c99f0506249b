"""CUDA-graph replay of tracker steps.

A tracker step (head model, render, losses, backward, Adam) is ~1000 small kernels. Launched one by one from
Python it is bound by launch overhead, not by GPU work (a step's wall time is a multiple of its kernel time,
most of all for the small landmark steps). Recording the step once as a CUDA graph and replaying it removes
that overhead. Requirements, all met by the tracker when ``StepRunner.use_cuda_graph`` says so:

* no host synchronisation inside the step — landmark steps have none; photometric steps only with a renderer
  whose rasteriser never reads back to the host (``render.backend cuda``; nvdiffrast's CUDA rasteriser does);
* fixed shapes: one graph per batch size; the frames of a batch are copied into a static index tensor;
* optimiser state on the device and tensor learning rates (:class:`vhap.track.adam.Adam`), so that the
  learning-rate decay changes the rate after recording and a reset optimiser can reuse a recorded step;
* random draws (the §3.6 perturbation) from a generator registered with the graph, so every replay draws new
  numbers, exactly as the eager steps would.

If recording fails (an op that synchronises), a warning says why and the caller runs the steps eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch


class StepGraph:
    """Records ``step_fn(frame_idx) -> {name: scalar tensor}`` once for batches of ``batch_size`` frames and
    replays it. ``optimizer.zero_grad`` + forward + backward + ``optimizer.step`` must all happen inside
    ``step_fn`` (it is called eagerly for the warm-up steps too)."""

    WARMUP = 3

    def __init__(
        self,
        step_fn: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        batch_size: int,
        device: torch.device,
        generators: tuple[torch.Generator, ...] = (),
        label: str = "step",
    ):
        self.step_fn = step_fn
        self.batch_size = batch_size
        self.device = device
        self.generators = tuple(g for g in generators if g is not None and g.device.type == "cuda")
        self.label = label
        self.static_idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: torch.Tensor | None = None
        self.keys: list[str] = []
        self.failed = False
        self.warm = 0
        self._side = torch.cuda.Stream(device)

    def __call__(self, frame_idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step on ``frame_idx (batch_size,)``; returns the detached loss terms (fresh tensors)."""
        if self.failed:
            return self.step_fn(frame_idx)
        self.static_idx.copy_(frame_idx, non_blocking=True)
        if self.graph is None and self.warm < self.WARMUP:
            # warm-up on a side stream (allocator pools, cuBLAS workspaces, lazy caches) as torch recommends
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                terms = self.step_fn(self.static_idx)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
            self.warm += 1
            return terms
        if self.graph is None and not self._record():
            return self.step_fn(frame_idx)
        # (the recording only enqueued work: the first replay is the step that was recorded)
        self.graph.replay()
        values = self.outputs.clone()
        return {k: values[i] for i, k in enumerate(self.keys)}

    def _record(self) -> bool:
        graph = torch.cuda.CUDAGraph()
        for g in self.generators:
            graph.register_generator_state(g)
        try:
            with torch.cuda.graph(graph):
                terms = self.step_fn(self.static_idx)
                self.keys = sorted(terms)
                self.outputs = torch.stack([terms[k].float().reshape(()) for k in self.keys])
        except Exception as e:  # pragma: no cover - depends on the CUDA/torch build and the ops in the step
            warnings.warn(f"CUDA graph capture of {self.label} failed ({e}); running it eagerly", stacklevel=3)
            self.failed = True
            self.outputs = None
            return False
        self.graph = graph
        return True

    def release(self) -> None:
        """Drop the graph and its memory pool (the recorded gradients and activations live there)."""
        self.graph = None
        self.outputs = None
