"""Several track jobs on one GPU: what config ``tracks_per_gpu`` becomes for each executor.

A track job is one process that uses a few GiB of a large GPU and rarely keeps it busy, so k of them can
share one card. Snakemake resources are whole numbers, so "1/k of a GPU" is expressed per executor (the
workflow cannot tell which one a dry run stands for, so every track job carries both parts):

* local executor (``profiles/local``, ``--resources gpu=N``): every track job takes one *slot* of the
  resource :data:`SLOT_RESOURCE`, and the workflow declares ``N × k`` slots, so k track jobs run per GPU.
  Jobs of other rules that ask for ``gpu`` keep the plain GPU count. Groups are off in local execution.
* cluster executors (SLURM; no ``--resources gpu``, so no slot limit): a SLURM job asking for
  ``--gpus=1`` gets a whole GPU, and sharing one between jobs (``--gres=shard:…``, MPS) needs a site's
  cluster configuration. What works everywhere: k track jobs go into one snakemake *group job* (group
  :data:`TRACK_GROUP`, spanning k sequences), which is one SLURM job of one GPU running the k ``vhap track``
  processes side by side. Each track job asks for the GPU as the string ``gres: "gpu:1"``: snakemake adds
  up numbers over a group's jobs but keeps one copy of a string, so the group job requests
  ``--gres=gpu:1``, k × the threads and memory of a track job, and the longest runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vhap.errors import VhapError

#: the local scheduler's resource for track jobs sharing GPUs (N GPUs × k slots)
SLOT_RESOURCE = "gpu_track_slots"
#: snakemake group that bundles k track jobs into one cluster job
TRACK_GROUP = "track_gpu_share"


@dataclass(frozen=True)
class TrackGpuPlan:
    """How track jobs request GPUs: per-job resources, the cluster grouping, limits for the local scheduler."""

    tracks_per_gpu: int
    resources: dict[str, int | str] = field(default_factory=dict)
    """what every track job asks for (added to its memory/runtime)"""
    group: str | None = None
    """snakemake group of the track rule (cluster execution with k > 1), else None"""
    group_components: int = 1
    """track jobs (sequences) per group job"""
    global_resources: dict[str, int] = field(default_factory=dict)
    """limits the workflow declares to the scheduler (name -> amount); only where a GPU count is given"""
    summary: str = ""
    """one line for the user"""


def track_gpu_plan(tracks_per_gpu: int, gpus_per_job: int, gpu_limit: int | None) -> TrackGpuPlan:
    """The plan for ``tracks_per_gpu`` (k) track jobs per GPU.

    ``gpus_per_job``: config ``resources.track.gpu`` (0: tracking on the CPU, nothing to share);
    ``gpu_limit``: the ``--resources gpu=N`` snakemake was given (profiles/local: 1; None: no limit, as on a
    cluster). The plan holds both executors' parts: the local scheduler ignores groups and string resources,
    a cluster executor ignores the slot limit (none is declared there) and submits group jobs.
    """
    k = tracks_per_gpu
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise VhapError(f"tracks_per_gpu must be a whole number >= 1, got {k!r}", fix="set tracks_per_gpu: 1, 2, 4 ...")
    if gpus_per_job == 0:
        return TrackGpuPlan(k, summary="track jobs: on the CPU (resources.track.gpu = 0)")
    if k == 1:
        return TrackGpuPlan(1, resources={"gpu": gpus_per_job}, summary="track jobs per GPU: 1")
    if gpus_per_job != 1:
        raise VhapError(
            f"tracks_per_gpu = {k} shares one GPU between track jobs, but resources.track.gpu = {gpus_per_job}",
            fix="set resources.track.gpu: 1 (a track job uses one GPU), or tracks_per_gpu: 1",
        )
    local = (
        f"{gpu_limit * k} at once on {gpu_limit} GPU(s) here"
        if gpu_limit is not None
        else "no GPU count given here (--resources gpu=N), so no local limit"
    )
    return TrackGpuPlan(
        k,
        resources={SLOT_RESOURCE: 1, "gres": "gpu:1"},
        group=TRACK_GROUP,
        group_components=k,
        global_resources={} if gpu_limit is None else {SLOT_RESOURCE: gpu_limit * k},
        summary=f"track jobs per GPU: {k} ({local}; on a cluster, one job of one GPU runs {k} sequences)",
    )
