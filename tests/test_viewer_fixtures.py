"""Run folders for the viewer tests, built from synthetic sequences rendered with a head model.

A run folder is written as docs/dev/INTERFACES.md describes ``vhap track``'s output (``config.yml``,
``tracked_flame_params.npz``, ``cameras.npz`` with OpenCV K/w2c, ``frames.json``, ``metrics.json``, ``DONE``),
with the ground-truth parameters standing in for tracked ones (plus a coloured texture residual so that the
textured mode differs from the plain one). No tests here: imported by tests/test_viewer*.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from vhap.synth.generate import SynthConfig, generate_sequence, load_ground_truth
from vhap.synth.heads import resolve_head_model


def make_viewer_run(
    root: Path,
    *,
    rig: str = "monocular",
    num_frames: int = 4,
    num_cameras: int = 3,
    image_size: tuple[int, int] = (96, 80),
    seed: int = 0,
    head_model: str = "open",
) -> Path:
    """Render a synthetic sequence under ``root/data`` and write a run folder ``root/run`` for it.

    ``head_model``: ``open`` (the project's own, always present) or ``standin`` (FLAME topology, needs
    ../shared/flame-topology).
    """
    head = resolve_head_model(head_model, root / "cache")
    seq = generate_sequence(
        SynthConfig(
            output=root / "data",
            rig=rig,
            seed=seed,
            num_frames=num_frames,
            num_cameras=num_cameras,
            image_size=image_size,
            head_model=head,
            albedo_resolution=64,
            landmark_noise_px=1.0,
            supersample=1,
        ),
        progress=False,
    )
    gt = load_ground_truth(seq.sequence_dir)
    cams = gt["cameras"]
    w2c = cams["w2c"].astype(np.float64) @ cams["world_from_flame"].astype(np.float64)
    params = {k: v for k, v in gt["params"].items() if k != "world_from_flame"}
    rng = np.random.default_rng(seed)
    V = gt["meshes"]["verts"].shape[1]
    params["static_offset"] = rng.normal(scale=1e-4, size=(1, V, 3)).astype(np.float32)
    tex = np.zeros((3, 64, 64), np.float32)
    tex[0, :, :32] = 0.3  # a reddish left half of the UV square
    params["tex_extra"] = tex
    lights = np.zeros((9, 3), np.float32)
    lights[0] = np.sqrt(4 * np.pi)
    params["lights"] = lights
    params["timestep_id"] = np.asarray(seq.timestep_ids)
    params["head_model"] = np.asarray(head)
    run = root / "run"
    run.mkdir(parents=True)
    np.savez(run / "tracked_flame_params.npz", **params)
    np.savez(
        run / "cameras.npz",
        K=cams["K"].astype(np.float32),
        w2c=w2c.astype(np.float32),
        camera_ids=np.asarray(seq.camera_ids),
        image_size=np.asarray(image_size),
        calibrated=np.asarray(rig != "monocular"),
    )
    mono = rig == "monocular"
    frames = []
    for t, ts in enumerate(seq.timestep_ids):
        for c, cam in enumerate(seq.camera_ids):
            stem = ts if mono else f"cam_{cam}_{ts}"
            candidates = [seq.sequence_dir / d / f"{stem}.jpg" for d in ("images", "images_4")]
            img = next(p for p in candidates if p.is_file())
            frames.append(
                {"timestep_index": t, "timestep_id": ts, "camera_index": c, "camera_id": cam, "image": str(img)}
            )
    doc = {"timestep_ids": list(seq.timestep_ids), "camera_ids": list(seq.camera_ids), "frames": frames}
    (run / "frames.json").write_text(json.dumps(doc, indent=1))
    per_frame = [
        {"timestep_id": ts, "nme": 0.01 * (t + 1), "psnr_face": 30.0 - t} for t, ts in enumerate(seq.timestep_ids)
    ]
    metrics = {"per_frame": per_frame, "totals": {"nme": 0.025, "psnr_face": 28.5}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    data_cfg = {"landmark_detector": seq.landmark_detector}
    config = {"model": {"head_model": head, "add_teeth": True}, "data": data_cfg}
    (run / "config.yml").write_text(yaml.safe_dump(config))
    (run / "DONE").write_text("")
    return run
