"""Atomic, resumable checkpoints of a tracking run.

A checkpoint holds everything needed to continue bit-for-bit: the parameters, the optimiser and LR-scheduler
state of the running stage (global stage only; fixed-step stages restart with a fresh optimiser, as VHAP does),
all RNG states, the position in the schedule and the loss history. It is written only *between* units of
work (after a stage, after a sample of the sequential pass, after a global epoch), so a run killed at any
moment restarts from the last such boundary and repeats exactly the same computation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vhap.config import config_to_dict
from vhap.errors import VhapError
from vhap.utils.atomic import atomic_path

CHECKPOINT_VERSION = 1

#: config sections that do not change the result (allowed to differ when resuming)
_NON_RESULT_KEYS = {
    "exp": ("resume", "overwrite", "checkpoint_every_samples", "checkpoint_every_epochs", "write_media", "device"),
    "log": ("interval_scalar", "progress", "view_indices", "max_num_views"),
    "render": ("backend",),
}


#: ``pipeline`` keys added after checkpoints existed, with the value that reproduces the older schedule: left out
#: of the fingerprint at that value, so checkpoints of runs that did not use them still resume
_ADDED_PIPELINE_DEFAULTS = {
    "sequential_warm_start": ["pose", "joints", "expr", "dynamic_offset"],
}

#: phases of the schedule, in order (``lmk_prepass``: the landmark pre-pass before the sequential pass)
PHASES = ("init", "lmk_prepass", "sequential", "global", "final")


def config_fingerprint(cfg) -> str:
    """Hash of the result-relevant part of the config: a checkpoint is only resumed by the same recipe."""
    d = config_to_dict(cfg)
    for section, keys in _NON_RESULT_KEYS.items():
        for k in keys:
            d.get(section, {}).pop(k, None)
    pipe = d.get("pipeline", {})
    if int(pipe.get("lmk_prepass", {}).get("num_steps", 0)) <= 0:  # pre-pass off: as before it existed
        pipe.pop("lmk_prepass", None)
        pipe.pop("lmk_prepass_lr_scale", None)
    for k, v in _ADDED_PIPELINE_DEFAULTS.items():
        if k in pipe and list(pipe[k]) == v:
            pipe.pop(k)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Position:
    """Where the schedule stands: ``phase`` in :data:`PHASES`; ``index`` = number of init stages done,
    samples done (pre-pass, sequential pass) or global epochs done within the phase."""

    phase: str = "init"
    index: int = 0
    global_step: int = 0

    def as_dict(self) -> dict:
        return {"phase": self.phase, "index": self.index, "global_step": self.global_step}


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


def save_checkpoint(
    path: str | Path,
    *,
    fingerprint: str,
    params: torch.nn.Module,
    run: RunState,
    generator: torch.Generator | None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> None:
    state = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "params": {k: v.detach().cpu() for k, v in params.state_dict().items()},
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_state(generator),
        "position": run.position.as_dict(),
        "loss_history": run.loss_history,
        "stage_time": run.stage_time,
        "stage_steps": run.stage_steps,
        "evaluations": run.evaluations,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


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
    if pos.get("phase") not in PHASES:
        raise VhapError(
            f"checkpoint stands in an unknown phase {pos.get('phase')!r} (known: {PHASES})",
            fix="it was written by another version of vhap: pass --exp.overwrite to start again",
        )
    return RunState(
        position=Position(pos["phase"], pos["index"], pos["global_step"]),
        loss_history=list(state["loss_history"]),
        stage_time=dict(state["stage_time"]),
        stage_steps=dict(state["stage_steps"]),
        evaluations=dict(state["evaluations"]),
    )
