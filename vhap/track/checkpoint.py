"""Atomic, resumable checkpoints of a tracking run.

A checkpoint holds everything needed to continue bit-for-bit: the parameters, the optimiser and LR-scheduler
state of the running stage (global stage only; fixed-step stages restart with a fresh optimiser, as VHAP does),
all RNG states, the position in the schedule and the loss history. It is written only *between* units of
work (after a stage, after a sample of the sequential pass, after a global epoch), so a run killed at any
moment restarts from the last such boundary and repeats exactly the same computation.
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vhap.config import config_to_dict
from vhap.errors import VhapError
from vhap.utils.atomic import atomic_path, save_torch

CHECKPOINT_VERSION = 1

#: config keys that do not change the result (allowed to differ when resuming or re-running a finished run)
NON_RESULT_KEYS = {
    "exp": (
        "output_folder",
        "timestamp_subfolder",
        "checkpoint_dir",
        "resume",
        "overwrite",
        "checkpoint_every_samples",
        "checkpoint_every_epochs",
        "write_media",
        "overlay_fps",
        "device",
    ),
    "log": ("interval_scalar", "progress", "view_indices", "max_num_views"),
    "render": ("backend",),
}


class Phase(str, enum.Enum):
    """Phases of the schedule, in order (``lmk_prepass``: the landmark pre-pass before the sequential pass)."""

    INIT = "init"
    PREPASS = "lmk_prepass"
    SEQUENTIAL = "sequential"
    GLOBAL = "global"
    FINAL = "final"


def result_config(cfg) -> dict:
    """The result-relevant part of a config as plain values (:data:`NON_RESULT_KEYS` left out)."""
    d = json.loads(json.dumps(config_to_dict(cfg), default=str))
    for section, keys in NON_RESULT_KEYS.items():
        for k in keys:
            d.get(section, {}).pop(k, None)
    return d


def config_fingerprint(cfg) -> str:
    """Hash of the result-relevant part of the config: a checkpoint is only resumed by the same recipe."""
    return hashlib.sha256(json.dumps(result_config(cfg), sort_keys=True).encode()).hexdigest()[:16]


def config_differences(old, new) -> list[str]:
    """Dotted names of the result-relevant keys whose values differ between configs ``old`` and ``new``."""

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(result_config(old)), flat(result_config(new))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


@dataclass
class Position:
    """Where the schedule stands: ``phase``; ``index`` = number of init stages done,
    samples done (pre-pass, sequential pass) or global epochs done within the phase."""

    phase: Phase = Phase.INIT
    index: int = 0
    global_step: int = 0

    def as_dict(self) -> dict:
        return {"phase": self.phase.value, "index": self.index, "global_step": self.global_step}


@dataclass
class RunState:
    position: Position = field(default_factory=Position)
    loss_history: list[dict] = field(default_factory=list)
    stage_time: dict[str, float] = field(default_factory=dict)
    stage_steps: dict[str, int] = field(default_factory=dict)
    evaluations: dict[str, Any] = field(default_factory=dict)


def rng_state(generator: torch.Generator | None) -> dict:
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        out["generator"] = generator.get_state()
    return out


def set_rng_state(state: dict, generator: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def _to_host(obj):
    """Deep copy of a state (nested dicts / lists / tuples) with every tensor copied to host memory: the copy
    stays valid while the run keeps updating the originals in place (also on CPU, where ``.cpu()`` would alias).
    Device tensors go to pinned buffers with asynchronous copies (several times faster than pageable ones for
    the 50 MB texture and its moments); :func:`snapshot_checkpoint` waits for them once at the end."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.is_cuda:
            host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            host.copy_(t, non_blocking=True)
            return host
        return t.clone()
    if isinstance(obj, dict):
        return {k: _to_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_host(v) for v in obj)
    return copy.deepcopy(obj)


def snapshot_checkpoint(
    *,
    fingerprint: str,
    params: torch.nn.Module,
    run: RunState,
    generator: torch.Generator | None,
    optimizer: Any = None,
    scheduler: Any = None,
) -> dict:
    """Everything a checkpoint holds, as host-side copies taken now (see :class:`BackgroundWriter`). ``optimizer``
    and ``scheduler``: anything with ``state_dict()`` (the tracker's :class:`vhap.track.adam.Adam` and
    :class:`~vhap.track.adam.ExponentialDecay`)."""
    state = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "params": _to_host(params.state_dict()),
        "optimizer": None if optimizer is None else _to_host(optimizer.state_dict()),
        "scheduler": None if scheduler is None else _to_host(scheduler.state_dict()),
        "rng": _to_host(rng_state(generator)),
        "position": run.position.as_dict(),
        "loss_history": _to_host(run.loss_history),
        "stage_time": dict(run.stage_time),
        "stage_steps": dict(run.stage_steps),
        "evaluations": _to_host(run.evaluations),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # the asynchronous device → host copies of _to_host
    return state


def write_checkpoint(path: str | Path, state: dict) -> None:
    """Write a :func:`snapshot_checkpoint` atomically (a reader never sees a partial file)."""
    with atomic_path(path) as tmp:
        save_torch(state, tmp)  # a full disk stays an OSError (ENOSPC), not torch's "unexpected pos"


class BackgroundWriter:
    """Runs file writes (checkpoints, parameter files) on a background thread, one at a time and in order, so
    the optimisation does not wait for serialisation and disk (a 2048² texture with its Adam moments is ~150 MB,
    saved several times per run). Callers hand over host-side snapshots
    (:func:`snapshot_checkpoint`), so what is written is the state at the moment of :meth:`submit`. A run killed
    while a write is in flight keeps the previous file (writes are atomic). A write's error is raised by the
    next :meth:`submit` or :meth:`wait`."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write, *args) -> None:
        """Run ``write(*args)`` after the writes submitted before it."""
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(write, args), name="vhap-writer")
        self._thread.start()

    def _run(self, write, args) -> None:
        try:
            write(*args)
        except BaseException as e:  # handed to the main thread by wait()
            self._error = e

    def wait(self) -> None:
        """Block until the write in flight (if any) is done; re-raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def load_checkpoint(path: str | Path, fingerprint: str) -> dict:
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated file cannot exist (atomic writes) but a foreign one might
        raise VhapError(f"cannot read checkpoint: {e}", path=path, fix="delete it or pass --exp.overwrite") from e
    if state.get("version") != CHECKPOINT_VERSION:
        raise VhapError("checkpoint of another format version", path=path, fix="pass --exp.overwrite")
    if state.get("fingerprint") != fingerprint:
        raise VhapError(
            "the checkpoint was made with a different configuration",
            path=path,
            fix="rerun with the original options, use another --exp.output_folder, or pass --exp.overwrite",
        )
    return state


def restore_run_state(state: dict) -> RunState:
    pos = state["position"]
    known = [p.value for p in Phase]
    if pos.get("phase") not in known:
        raise VhapError(
            f"checkpoint stands in an unknown phase {pos.get('phase')!r} (known: {known})",
            fix="it was written by another version of vhap: pass --exp.overwrite to start again",
        )
    return RunState(
        position=Position(Phase(pos["phase"]), pos["index"], pos["global_step"]),
        loss_history=list(state["loss_history"]),
        stage_time=dict(state["stage_time"]),
        stage_steps=dict(state["stage_steps"]),
        evaluations=dict(state["evaluations"]),
    )
