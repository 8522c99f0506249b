"""Train / val / test splits of an exported dataset (VHAP_SPEC §6.3 step 4, §6.6).

Timesteps: the first ``ceil(train_ratio * T)`` timesteps are train (and val), the rest test. Cameras:
with several cameras, val = camera index ``val_camera`` (8, NeRSemble's frontal camera) if it exists, else
the last camera; train = every other camera; test = all cameras. With one camera val is empty and train =
test cameras = [0].
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from vhap.errors import VhapError

DEFAULT_TRAIN_RATIO = 0.7
DEFAULT_VAL_CAMERA = 8


def val_camera_index(camera_indices: Sequence[int], val_camera: int = DEFAULT_VAL_CAMERA) -> int | None:
    """The held-out validation camera of a rig, or None for a single camera."""
    cams = sorted(set(camera_indices))
    if len(cams) <= 1:
        return None
    return val_camera if val_camera in cams else cams[-1]


def split_cameras(frames: list[dict], val_camera: int = DEFAULT_VAL_CAMERA) -> tuple[list[dict], list[dict]]:
    """Split frames by camera into (train, val): val = the frames of :func:`val_camera_index`."""
    held_out = val_camera_index([f["camera_index"] for f in frames], val_camera)
    train = [f for f in frames if f["camera_index"] != held_out]
    val = [f for f in frames if f["camera_index"] == held_out]
    return train, val


def split_frames(
    frames: list[dict], train_ratio: float = DEFAULT_TRAIN_RATIO, val_camera: int = DEFAULT_VAL_CAMERA
) -> dict[str, list[dict]]:
    """Split the frames of one exported sequence into ``{"train", "val", "test"}`` (module docstring)."""
    if not 0.0 < train_ratio <= 1.0:
        raise VhapError(f"train_ratio must be in (0, 1], got {train_ratio}", fix="pass e.g. --train-ratio 0.7")
    timesteps = sorted({f["timestep_index"] for f in frames})
    n_train = math.ceil(train_ratio * len(timesteps))
    train_ts = set(timesteps[:n_train])
    trainval = [f for f in frames if f["timestep_index"] in train_ts]
    test = [f for f in frames if f["timestep_index"] not in train_ts]
    train, val = split_cameras(trainval, val_camera)
    return {"train": train, "val": val, "test": test}


def select_test_sequences(names: Sequence[str], mode: str, seed: str, group_size: int = 10) -> list[int]:
    """Indices (into ``names``) of the sequences held out for testing in a union dataset (§6.6).

    The RNG is Python's ``random.Random(seed)`` (seeded with the subject string, so a subject always gets the
    same split). Modes:

    - ``random_group``: ``n_test = max(1, n // group_size)``; for each group g the test sequence is drawn
      uniformly from the members of group g, i.e. original indices ``[g*group_size, min((g+1)*group_size, n))``.
      Unlike VHAP (which pops from a list while still indexing it as if nothing had been removed, so later
      picks are shifted by one per earlier pick), indices always refer to the original order.
    - ``random_single``: one uniformly drawn sequence.
    - ``last``: the last sequence.
    """
    n = len(names)
    if n < 2:
        raise VhapError(f"a union needs at least two sequences, got {n}", fix="pass two or more --src folders")
    rng = random.Random(seed)
    if mode == "random_group":
        n_test = max(1, n // group_size)
        picks = []
        for g in range(n_test):
            start, stop = g * group_size, min((g + 1) * group_size, n)
            picks.append(start + rng.randrange(stop - start))
        return sorted(picks)
    if mode == "random_single":
        return [rng.randrange(n)]
    if mode == "last":
        return [n - 1]
    raise VhapError(f"unknown test selection mode '{mode}'", fix="use random_group, random_single or last")
