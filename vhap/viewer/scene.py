"""A tracking run as something to look at: the tracked head posed per timestep, rendered over the input image of
any camera with the torch (or CUDA) renderer, plus detected and model landmarks and the per-frame metrics.

Everything here is independent of the web server (``vhap.viewer.server``) so it can be used from scripts and
tests: ``RunScene(run_dir).render(t, c, mode=...)`` returns an ``(H, W, 3)`` uint8 picture.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vhap.errors import VhapError

#: render modes of the viewer
MODES = ("textured", "shaded", "normals", "wireframe")

#: landmark colours (as in the tracker's overlays): detector green, model red
DETECTED_RGB = (0, 230, 0)
MODEL_RGB = (255, 40, 40)


@dataclass
class ViewOptions:
    """What one picture of the run shows.

    mode: one of :data:`MODES`. background: ``"image"`` (the input frame), ``"white"`` or ``"black"``.
    opacity: of the mesh over the background in [0, 1]. landmarks: draw detected (green) and model (red) points.
    yaw, pitch (degrees), zoom: a free orbit around the head, starting from the tracked camera (0, 0, 1 = the
    tracked view itself). Away from it the input image does not apply: the head is shown on dark grey (or the
    chosen colour) and only the model's landmarks are drawn.
    """

    mode: str = "textured"
    background: str = "image"
    opacity: float = 0.7
    landmarks: bool = True
    yaw: float = 0.0
    pitch: float = 0.0
    zoom: float = 1.0

    @property
    def free(self) -> bool:
        """True when the view is not the tracked camera's."""
        return self.yaw != 0.0 or self.pitch != 0.0 or self.zoom != 1.0

    def check(self) -> ViewOptions:
        if self.mode not in MODES:
            raise VhapError(f"unknown render mode {self.mode!r}", fix=f"use one of {', '.join(MODES)}")
        if self.background not in ("image", "white", "black"):
            raise VhapError(f"unknown background {self.background!r}", fix="use image, white or black")
        if not all(math.isfinite(v) for v in (self.opacity, self.yaw, self.pitch, self.zoom)):
            raise VhapError("view options must be finite numbers")
        self.opacity = float(min(1.0, max(0.0, self.opacity)))
        self.yaw = float(self.yaw) % 360.0
        self.pitch = float(min(89.0, max(-89.0, self.pitch)))
        self.zoom = float(min(8.0, max(0.125, self.zoom)))
        return self


@dataclass
class FrameLayers:
    """One rendered frame, layer by layer (render size (h, w)): ``rgb`` (h,w,3) colour where covered (not
    premultiplied), ``alpha`` (h,w) antialiased coverage, ``tri_id`` (h,w) visible triangle (-1 empty),
    ``normal_rgb`` (h,w,3) camera-space normals mapped to [0,1], ``landmarks_px`` (68,2) projected model landmarks."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    tri_id: torch.Tensor
    normal_rgb: torch.Tensor
    landmarks_px: torch.Tensor


def wireframe_mask(tri_id: torch.Tensor) -> torch.Tensor:
    """(B,H,W) triangle-id buffer (-1 empty) -> (B,H,W) bool: pixels where the visible triangle changes to its
    right or below neighbour, i.e. the visible edges of the mesh (hidden edges are never drawn)."""
    edge = torch.zeros_like(tri_id, dtype=torch.bool)
    covered = tri_id >= 0
    dx = (tri_id[:, :, 1:] != tri_id[:, :, :-1]) & (covered[:, :, 1:] | covered[:, :, :-1])
    dy = (tri_id[:, 1:, :] != tri_id[:, :-1, :]) & (covered[:, 1:, :] | covered[:, :-1, :])
    edge[:, :, 1:] |= dx
    edge[:, 1:, :] |= dy
    return edge


def draw_points(image: np.ndarray, points_px: np.ndarray, rgb: tuple[int, int, int], radius: float) -> np.ndarray:
    """Draw filled discs at continuous pixel coordinates (N,2) (non-finite points are skipped); returns a copy."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(image)
    d = ImageDraw.Draw(im)
    for x, y in np.asarray(points_px, dtype=np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y):
            d.ellipse([x - radius, y - radius, x + radius, y + radius], fill=rgb)
    return np.asarray(im)


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """(H,W,3) uint8 of an image file, resized to ``size`` = (H, W) if needed; grey if the file is missing."""
    from PIL import Image

    H, W = size
    if not path.is_file():
        return np.full((H, W, 3), 96, np.uint8)
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (W, H):
            im = im.resize((W, H), Image.BILINEAR)
        return np.asarray(im)


class RunScene:
    """A tracking run folder (docs/dev/INTERFACES.md → vhap.track outputs) ready to be rendered.

    Args:
        run_dir: the run folder (or a folder of runs: the newest is used).
        epoch: which ``tracked_flame_params_<epoch>.npz`` (-1 = the final ``tracked_flame_params.npz``).
        head_model: override the head model the run records.
        max_size: longest side of the rendered pictures (larger tracking resolutions are scaled down to it).
        min_size: smaller tracking resolutions are rendered larger, at this longest side (crisper mesh edges and
            landmarks over the upsampled input image; 0 = never upscale).
        device: torch device of the renderer (``cpu`` works everywhere).
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        epoch: int = -1,
        head_model: str | None = None,
        max_size: int = 768,
        min_size: int = 512,
        device: str = "cpu",
    ):
        from vhap.export.run import load_tracked_run
        from vhap.model import HeadModel, load_head_assets
        from vhap.render import MeshRenderer

        run = load_tracked_run(run_dir, epoch=epoch, require_done=False, head_model=head_model)
        if not run.head_model:
            raise VhapError(
                "the run does not record its head model", path=run.root, fix="pass --head-model open|flame2023|DIR"
            )
        self.run = run
        self.root = run.root
        self.device = torch.device(device)
        p = run.params
        self.T = len(run.timestep_ids)
        self.C = len(run.camera_ids)
        self.timestep_ids = list(run.timestep_ids)
        self.camera_ids = list(run.camera_ids)
        self.image_size = tuple(run.image_size)  # tracking resolution (H, W)
        H, W = self.image_size
        self.scale = min(float(max_size) / max(H, W), max(1.0, float(min_size) / max(H, W)))
        self.render_size = (max(1, round(H * self.scale)), max(1, round(W * self.scale)))

        cfg_model = run.config.get("model", {}) if isinstance(run.config, dict) else {}
        assets = load_head_assets(run.head_model)
        offsets = p.get("static_offset", p.get("dynamic_offset"))
        if offsets is not None:
            add_teeth = int(np.asarray(offsets).shape[-2]) != assets.num_verts
        else:
            add_teeth = bool(cfg_model.get("add_teeth", True)) if isinstance(cfg_model, dict) else True
        n_shape = int(np.asarray(p["shape"]).reshape(-1).shape[0])
        n_expr = int(np.asarray(p["expr"]).shape[-1])
        self.model = HeadModel(assets, n_shape=n_shape, n_expr=n_expr, add_teeth=add_teeth).to(self.device)
        self.renderer = MeshRenderer("auto")

        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=self.device)  # noqa: E731
        self._params = {k: f32(p[k]) for k in ("rotation", "translation", "neck_pose", "jaw_pose", "eyes_pose")}
        self._params["expr"] = f32(p["expr"])
        self._shape = f32(np.asarray(p["shape"]).reshape(-1))
        self._static_offset = f32(p["static_offset"]) if "static_offset" in p else None
        self._dynamic_offset = f32(p["dynamic_offset"]) if "dynamic_offset" in p else None
        self.lights = f32(p["lights"]).reshape(1, 9, 3) if "lights" in p else None
        self.texture = self._albedo(p.get("tex_extra"))
        self.K = torch.as_tensor(run.K, dtype=torch.float32, device=self.device)
        self.w2c = torch.as_tensor(run.w2c, dtype=torch.float32, device=self.device)
        self._frames = {(f.timestep_index, f.camera_index): f for f in run.frames}
        self._verts_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.metrics = self._read_metrics()
        self.detected = self._read_detected_landmarks()

    # ------------------------------------------------------------------ loading
    def _albedo(self, tex_extra) -> torch.Tensor:
        """(3,Ht,Wt) tracked albedo = base texture (resized to the residual's resolution) + residual."""
        base = self.model.base_texture
        if tex_extra is None:
            return base.clamp(0, 1)
        extra = torch.as_tensor(np.asarray(tex_extra, dtype=np.float32), device=self.device)
        if extra.ndim == 4:
            extra = extra[0]
        if base.shape[-2:] != extra.shape[-2:]:
            base = torch.nn.functional.interpolate(base[None], size=extra.shape[-2:], mode="bilinear")[0]
        return (base + extra).clamp(0, 1)

    def _read_metrics(self) -> dict:
        path = self.root / "metrics.json"
        if not path.is_file():
            return {}
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def _landmark_files(self) -> dict[int, Path]:
        """Camera index -> landmark npz, found next to the input images (``<seq>/landmark2d/``)."""
        frame = self._frames.get((0, 0))
        if frame is None:
            return {}
        folder = frame.image_path.parent.parent / "landmark2d"
        if not folder.is_dir():
            return {}
        data_cfg = self.run.config.get("data", {}) if isinstance(self.run.config, dict) else {}
        detector = str(data_cfg.get("landmark_detector", "")) if isinstance(data_cfg, dict) else ""
        names = [detector] if detector else []
        names += sorted(p.stem if p.is_file() else p.name for p in folder.iterdir())
        for name in names:
            if not name:
                continue
            if self.C == 1 and (folder / f"{name}.npz").is_file():
                return {0: folder / f"{name}.npz"}
            per_cam = {c: folder / name / f"{cam}.npz" for c, cam in enumerate(self.camera_ids)}
            if any(p.is_file() for p in per_cam.values()):
                return {c: p for c, p in per_cam.items() if p.is_file()}
        return {}

    def _read_detected_landmarks(self) -> dict[tuple[int, int], np.ndarray]:
        """(t, c) -> (68,3) normalised x/W, y/H, confidence of the detector (absent where undetected)."""
        out: dict[tuple[int, int], np.ndarray] = {}
        index = {ts: t for t, ts in enumerate(self.timestep_ids)}
        for c, path in self._landmark_files().items():
            try:
                with np.load(path) as z:
                    lmk = np.asarray(z["face_landmark_2d"], dtype=np.float32)
                    ts_ids = [str(s) for s in z["timestep_id"]] if "timestep_id" in z.files else None
                    valid = np.asarray(z["valid"], dtype=bool) if "valid" in z.files else np.ones(len(lmk), bool)
            except (OSError, KeyError, ValueError):
                continue
            for i in range(len(lmk)):
                t = index.get(ts_ids[i]) if ts_ids is not None else (i if i < self.T else None)
                if t is not None and valid[i]:
                    out[(t, c)] = lmk[i]
        return out

    # ------------------------------------------------------------------ geometry
    @torch.no_grad()
    def posed(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(verts (1,V,3), landmarks (1,68,3)) of timestep ``t`` in the tracking world."""
        self._check_indices(t, 0)
        if t not in self._verts_cache:
            if len(self._verts_cache) > 64:
                self._verts_cache.clear()
            out = self.model(
                shape=self._shape,
                expr=self._params["expr"][t : t + 1],
                rotation=self._params["rotation"][t : t + 1],
                neck_pose=self._params["neck_pose"][t : t + 1],
                jaw_pose=self._params["jaw_pose"][t : t + 1],
                eyes_pose=self._params["eyes_pose"][t : t + 1],
                translation=self._params["translation"][t : t + 1],
                static_offset=self._static_offset,
                dynamic_offset=None if self._dynamic_offset is None else self._dynamic_offset[t : t + 1],
            )
            lmk = out.landmarks[:, :68] if out.landmarks is not None else out.verts[:, :0]
            self._verts_cache[t] = (out.verts, lmk)
        return self._verts_cache[t]

    def cameras(self, c: int):
        """The run's camera ``c`` at the render size (intrinsics scaled from the tracking resolution)."""
        from vhap.render import Cameras

        K = self.K[c : c + 1].clone()
        H, W = self.image_size
        h, w = self.render_size
        K[:, 0] *= w / W
        K[:, 1] *= h / H
        return Cameras(K=K, w2c=self.w2c[c : c + 1], image_size=self.render_size)

    @torch.no_grad()
    def orbit_cameras(self, t: int, c: int, yaw: float = 0.0, pitch: float = 0.0, zoom: float = 1.0):
        """Camera ``c``'s intrinsics on an orbit around the head of timestep ``t``: from the camera's own centre,
        turned by ``yaw`` about its up axis and ``pitch`` about its side axis (degrees, around the head's centre),
        at 1/``zoom`` of the distance."""
        from vhap.render import Cameras

        base = self.cameras(c)
        if yaw == 0.0 and pitch == 0.0 and zoom == 1.0:
            return base
        w2c = self.w2c[c]
        rot, trans = w2c[:3, :3], w2c[:3, 3]
        eye0 = -rot.T @ trans
        up = -rot[1]  # OpenCV y points down
        target = self.posed(t)[0][0].mean(0)
        # the camera turns rigidly about the head centre, so yaw = pitch = 0 is exactly the tracked view
        d = _rotate(eye0 - target, up, math.radians(yaw))
        side = torch.nn.functional.normalize(torch.linalg.cross(d, up), dim=0)
        axes = _rotate(_rotate(rot.T, up, math.radians(yaw)), side, math.radians(pitch))  # camera axes (columns)
        d = _rotate(d, side, math.radians(pitch)) / zoom
        new_rot = axes.T
        new_w2c = torch.eye(4, device=self.device)
        new_w2c[:3, :3] = new_rot
        new_w2c[:3, 3] = -new_rot @ (target + d)
        dist = float(d.norm())
        return Cameras(K=base.K, w2c=new_w2c[None], image_size=base.image_size, near=max(1e-3, 0.2 * dist),
                       far=dist * 5)  # fmt: skip

    def _check_indices(self, t: int, c: int) -> None:
        if not (0 <= t < self.T and 0 <= c < self.C):
            raise VhapError(f"frame ({t}, {c}) outside the run's {self.T} timesteps x {self.C} cameras")

    # ------------------------------------------------------------------ pictures
    def input_image(self, t: int, c: int) -> np.ndarray:
        """(h,w,3) uint8 input frame at the render size."""
        self._check_indices(t, c)
        frame = self._frames.get((t, c))
        if frame is None:
            return np.full((*self.render_size, 3), 96, np.uint8)
        return _read_image(frame.image_path, self.render_size)

    def _hidden_points(self, points: torch.Tensor, verts: torch.Tensor, cams, tri_id: torch.Tensor) -> np.ndarray:
        """(N,) bool: model points (1,N,3) behind the surface seen at their pixel (more than 1 cm deeper)."""
        if not points.shape[1]:
            return np.zeros(0, bool)
        h, w = tri_id.shape
        px = cams.project(points)[0].floor().long()
        inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        px[:, 0].clamp_(0, w - 1)
        px[:, 1].clamp_(0, h - 1)
        tri = tri_id[px[:, 1], px[:, 0]]
        rot, trans = cams.w2c[0, :3, :3], cams.w2c[0, :3, 3]
        depth = lambda x: x @ rot[2] + trans[2]  # noqa: E731 - camera-space z
        surface = depth(verts[0][self.model.faces[tri.clamp(min=0)]].mean(1))
        return (inside & (tri >= 0) & (depth(points[0]) > surface + 0.01)).cpu().numpy()

    def _draw_orbit_landmarks(self, img: np.ndarray, cams, lmk3d: torch.Tensor, verts, tri_id) -> np.ndarray:
        """A free view: the model's landmarks that the surface does not hide (the detector's belong to the camera)."""
        if not lmk3d.shape[1]:
            return img
        pts = cams.project(lmk3d)[0].cpu().numpy()
        pts[self._hidden_points(lmk3d, verts, cams, tri_id)] = np.nan
        return draw_points(img, pts, MODEL_RGB, max(1.5, min(self.render_size) / 170))

    def turntable(self, t: int, c: int, options: ViewOptions | None = None, num_frames: int = 36) -> list[np.ndarray]:
        """``num_frames`` pictures of timestep ``t`` turning once around the head (yaw from ``options.yaw`` on)."""
        if not 2 <= num_frames <= 720:
            raise VhapError(f"a turntable needs 2…720 frames, got {num_frames}")
        base = (options or ViewOptions()).check()
        out = []
        for k in range(num_frames):
            opt = ViewOptions(base.mode, base.background, base.opacity, base.landmarks,
                              base.yaw + 360.0 * k / num_frames, base.pitch, base.zoom).check()  # fmt: skip
            if not opt.free:  # the turn passes the tracked view: keep the orbit look (no input image) there too
                opt.yaw = 1e-6
            out.append(self.render(t, c, opt))
        return out

    @torch.no_grad()
    def render(self, t: int, c: int, options: ViewOptions | None = None) -> np.ndarray:
        """(h,w,3) uint8: the tracked head of timestep ``t`` seen by camera ``c`` over the chosen background."""
        from vhap.render import render_visual

        opt = (options or ViewOptions()).check()
        self._check_indices(t, c)
        h, w = self.render_size
        if opt.background == "image" and not opt.free:
            bg = torch.from_numpy(self.input_image(t, c).copy()).to(self.device).float() / 255.0
        else:
            level = {"white": 1.0, "black": 0.0}.get(opt.background, 0.18)
            bg = torch.full((h, w, 3), level, device=self.device)
        verts, lmk3d = self.posed(t)
        cams = self.orbit_cameras(t, c, opt.yaw, opt.pitch, opt.zoom)
        m = self.model
        if opt.mode == "textured":
            r = render_visual(
                verts, m.faces, cams, uvs=m.uvs, uv_faces=m.uv_faces, texture=self.texture, sh=self.lights,
                background="black", renderer=self.renderer,
            )  # fmt: skip
            colour = r["rgba"][0, ..., :3].clamp(0, 1)
        else:
            r = render_visual(verts, m.faces, cams, background="black", renderer=self.renderer)
            if opt.mode == "normals":
                colour = (r["normal"][0] * 0.5 + 0.5).clamp(0, 1)
            else:
                colour = r["rgba"][0, ..., :3].clamp(0, 1)
        alpha = r["rgba"][0, ..., 3:4].clamp(0, 1)  # antialiased coverage
        if opt.mode == "wireframe":
            edges = wireframe_mask(r["tri_id"])[0].unsqueeze(-1).float()
            wire = torch.tensor([0.15, 0.85, 1.0], device=self.device)
            img = bg * (1 - edges * opt.opacity) + wire * edges * opt.opacity
        else:
            if opt.mode != "normals":
                colour = colour / alpha.clamp(min=1e-3)  # rgba is premultiplied (composited over black)
            a = alpha * opt.opacity
            img = colour * a + bg * (1 - a)
        out = (img.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        if opt.landmarks and opt.free:
            out = self._draw_orbit_landmarks(out, cams, lmk3d, verts, r["tri_id"][0])
        elif opt.landmarks:
            out = self._draw_landmarks(out, t, c, cams, lmk3d)
        return out

    @torch.no_grad()
    def layers(self, t: int, c: int) -> FrameLayers:
        """The render of timestep ``t`` seen by camera ``c`` at the render size, as separate layers (for scoring)."""
        from vhap.render import render_visual

        self._check_indices(t, c)
        verts, lmk3d = self.posed(t)
        cams = self.cameras(c)
        m = self.model
        r = render_visual(
            verts, m.faces, cams, uvs=m.uvs, uv_faces=m.uv_faces, texture=self.texture, sh=self.lights,
            background="black", renderer=self.renderer,
        )  # fmt: skip
        alpha = r["rgba"][0, ..., 3].clamp(0, 1)
        rgb = (r["rgba"][0, ..., :3] / alpha.clamp(min=1e-3)[..., None]).clamp(0, 1)  # rgba is premultiplied
        normals = render_visual(verts, m.faces, cams, background="black", renderer=self.renderer)["normal"][0]
        return FrameLayers(
            rgb=rgb,
            alpha=alpha,
            tri_id=r["tri_id"][0],
            normal_rgb=(normals * 0.5 + 0.5).clamp(0, 1),
            landmarks_px=cams.project(lmk3d)[0] if lmk3d.shape[1] else torch.zeros(0, 2),
        )

    @torch.no_grad()
    def canonical_verts(self, offsets: bool = True) -> torch.Tensor:
        """(V,3) the tracked shape at zero pose, with the static offsets (``offsets``) or without them."""
        out = self.model(shape=self._shape, static_offset=self._static_offset if offsets else None)
        return out.verts[0]

    @property
    def static_offset(self) -> torch.Tensor | None:
        """(V,3) the run's static offsets (None when the run has none)."""
        return None if self._static_offset is None else self._static_offset.reshape(-1, 3)

    def _draw_landmarks(self, img: np.ndarray, t: int, c: int, cams, lmk3d: torch.Tensor) -> np.ndarray:
        h, w = self.render_size
        radius = max(1.5, min(h, w) / 170)
        det = self.detected.get((t, c))
        if det is not None:
            pts = det[:, :2] * np.array([w, h], np.float32)
            pts[det[:, 2] <= 0] = np.nan
            img = draw_points(img, pts, DETECTED_RGB, radius * 1.5)  # larger: stays visible under the model's
        if lmk3d.shape[1]:
            img = draw_points(img, cams.project(lmk3d)[0].cpu().numpy(), MODEL_RGB, radius)
        return img

    # ------------------------------------------------------------------ metrics / info
    def frame_metrics(self, t: int) -> dict[str, float | None]:
        """Numeric metrics of timestep ``t`` from metrics.json (``per_frame`` rows matched by timestep id)."""
        rows = self.metrics.get("per_frame", [])
        ts = self.timestep_ids[t]
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, dict) and str(row.get("timestep_id", i)) == ts:
                return {k: _finite(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "timestep_id"}
        return {}

    def frame_figures(self, t: int) -> dict[str, float | None]:
        """:meth:`frame_metrics` as shown to people: whole-head figures, each labelled with its unit."""
        from vhap.eval.whole_head import display_figures

        return display_figures(self.frame_metrics(t))

    def info(self) -> dict:
        from vhap.eval.whole_head import display_figures
        from vhap.track.report import gate_failures

        totals = self.metrics.get("totals", {}) if isinstance(self.metrics.get("totals"), dict) else {}
        whole = self.metrics.get("whole_head", {}) if isinstance(self.metrics.get("whole_head"), dict) else {}
        return {
            "run": str(self.root),
            "head_model": self.run.head_model,
            "num_timesteps": self.T,
            "num_cameras": self.C,
            "timestep_ids": self.timestep_ids,
            "camera_ids": self.camera_ids,
            "image_size": list(self.image_size),
            "render_size": list(self.render_size),
            "modes": list(MODES),
            "has_texture": "tex_extra" in self.run.params,
            "has_detected_landmarks": bool(self.detected),
            "totals": display_figures({**totals, **whole}),
            # quality gates (None: no metrics.json); a list of reasons, empty when the run passes
            "gate_failures": gate_failures(self.metrics) if self.metrics else None,
            "done": (self.root / "DONE").is_file(),
        }


def _rotate(v: torch.Tensor, axis: torch.Tensor, angle: float) -> torch.Tensor:
    """``v`` (3,) or columns of (3,N) rotated by ``angle`` (radians, right-handed) about the (3,) ``axis``."""
    a = torch.nn.functional.normalize(axis, dim=0)
    k = torch.zeros(3, 3, dtype=v.dtype, device=v.device)
    k[0, 1], k[0, 2], k[1, 2] = -a[2], a[1], -a[0]
    k = k - k.T
    rot = torch.eye(3, dtype=v.dtype, device=v.device) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)
    return rot @ v


def _finite(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
