"""Tracking run folders for the export tests, built from synthetic sequences rendered with the head model.

A run folder is written exactly as docs/dev/INTERFACES.md describes ``vhap track``'s output
(``config.yml``, ``tracked_flame_params.npz``, ``cameras.npz`` with OpenCV K/w2c at tracking resolution,
``frames.json``, ``DONE``), with the ground-truth parameters standing in for tracked ones, so the export
tests do not depend on the tracker. (No tests in this module: it is imported by tests/test_export*.py.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth
from vhap.synth.heads import resolve_head_model


@dataclass
class FakeRun:
    run_dir: Path
    head_model: str
    params: dict
    K: np.ndarray  # (C,3,3) OpenCV, tracking world
    w2c: np.ndarray  # (C,4,4) OpenCV, tracking world (the head model's world)
    image_size: tuple[int, int]
    camera_ids: list[str]
    frame_paths: list[list[Path]]  # [t][c]
    alpha_paths: list[list[Path]]


def _one(paths) -> Path:
    found = sorted(paths)
    assert len(found) == 1, found
    return found[0]


def standin_head(cache: Path) -> str:
    return resolve_head_model("standin", cache)


def make_run(
    root: Path,
    head_model: str,
    *,
    rig: str = "monocular",
    num_frames: int = 4,
    num_cameras: int = 10,
    image_size: tuple[int, int] = (64, 48),
    seed: int = 0,
    static_offset: bool = True,
    dynamic_offset: bool = False,
    done: bool = True,
    name: str = "run",
) -> FakeRun:
    """Render a synthetic sequence under ``root/data`` and write a run folder ``root/<name>`` for it."""
    seq = generate_sequence(
        SynthConfig(
            output=root / "data",
            rig=rig,
            seed=seed,
            num_frames=num_frames,
            num_cameras=num_cameras,
            image_size=image_size,
            head_model=head_model,
            albedo_resolution=64,
            landmark_noise_px=0.0,
            supersample=1,
        ),
        progress=False,
    )
    gt = load_ground_truth(seq.sequence_dir)
    cams = gt["cameras"]
    # the tracker's world is the head model's world: fold world_from_flame into the extrinsics
    w2c = cams["w2c"].astype(np.float64) @ cams["world_from_flame"].astype(np.float64)
    K = cams["K"].astype(np.float64)
    C = K.shape[0]
    params = {k: v for k, v in gt["params"].items() if k not in ("world_from_flame",)}
    T = params["translation"].shape[0]
    if static_offset:
        rng = np.random.default_rng(seed)
        V = gt["meshes"]["verts"].shape[1]
        params["static_offset"] = (rng.normal(scale=1e-3, size=(1, V, 3))).astype(np.float32)
    if dynamic_offset:
        rng = np.random.default_rng(seed + 100)
        V = gt["meshes"]["verts"].shape[1]
        params["dynamic_offset"] = (rng.normal(scale=1e-3, size=(T, V, 3))).astype(np.float32)
    run = root / name
    run.mkdir(parents=True)
    np.savez(run / "tracked_flame_params.npz", **params)
    np.savez(
        run / "cameras.npz",
        K=K,
        w2c=w2c,
        camera_ids=np.asarray(seq.camera_ids),
        image_size=np.asarray(image_size),
        calibrated=np.asarray(rig != "monocular"),
    )
    mono = rig == "monocular"
    frame_paths, alpha_paths, frames = [], [], []
    for t, ts in enumerate(seq.timestep_ids):
        row_f, row_a = [], []
        for c, cam in enumerate(seq.camera_ids):
            stem = ts if mono else f"cam_{cam}_{ts}"
            # the generator may write multi-view frames into images_<n> (NeRSemble's downsampled folders)
            img = _one(seq.sequence_dir.glob(f"images*/{stem}.jpg"))
            alpha = _one(seq.sequence_dir.glob(f"alpha_maps*/{stem}.png"))
            row_f.append(img)
            row_a.append(alpha)
            frames.append(
                {
                    "timestep_index": t,
                    "timestep_id": ts,
                    "camera_index": c,
                    "camera_id": cam,
                    "image_path": str(img),
                    "alpha_path": str(alpha),
                }
            )
        frame_paths.append(row_f)
        alpha_paths.append(row_a)
    (run / "frames.json").write_text(json.dumps({"frames": frames}, indent=1))
    (run / "config.yml").write_text(yaml.safe_dump({"model": {"head_model": head_model, "add_teeth": True}}))
    if done:
        (run / "DONE").write_text("")
    assert len(frames) == T * C
    return FakeRun(
        run_dir=run,
        head_model=head_model,
        params=params,
        K=K,
        w2c=w2c,
        image_size=tuple(image_size),
        camera_ids=list(seq.camera_ids),
        frame_paths=frame_paths,
        alpha_paths=alpha_paths,
    )
