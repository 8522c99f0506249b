"""The tracking problem (VHAP_SPEC §4.4): device-resident data, cameras, parameters, regularisers and the energy.

A :class:`TrackingProblem` knows what is fitted and how well (:meth:`TrackingProblem.energy`); it has no optimiser
and no schedule (:mod:`vhap.track.steps`, :mod:`vhap.track.schedule`). Every frame, matte and landmark is uploaded
to the device once; a step renders all frames × views of its sample in one batched call, samples the texture once
from one shared albedo, and builds nothing from host data, so a step can be recorded as a CUDA graph.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from vhap.errors import VhapError
from vhap.render.camera import Cameras
from vhap.track.config import StageConfig, TrackConfig, add_user_regions
from vhap.track.losses import (
    landmark_confidence,
    landmark_loss,
    landmark_weights,
    photometric_from_sums,
    silhouette_from_sums,
)
from vhap.track.params import OffsetField, TrackParams
from vhap.track.regularizers import Regularizers, mirror_pairs

if TYPE_CHECKING:
    from vhap.model.head import HeadOutput


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; a CUDA device without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VhapError(f"device {name!r} requested but CUDA is not available", fix="use --exp.device cpu")
    return dev


# ================================================================================================ rendering seam
def load_renderer(cfg: TrackConfig, device: torch.device):
    """The rasteriser of ``render.backend`` and the image-loss sums that go with it.

    Returns ``(renderer, image_loss_sums)``: vhap's fused image-loss kernel
    (:func:`vhap.render.kernels.image_loss_sums`) where the backend for ``device`` runs vhap's kernels, else its
    PyTorch reference (same sums). The renderer's extensions are loaded here, so their start-up is not booked to
    the first stage."""
    from vhap.render import MeshRenderer
    from vhap.render.kernels import image_loss_sums, image_loss_sums_reference

    renderer = MeshRenderer(cfg.render.backend)
    loss_sums = image_loss_sums_reference
    if cfg.exp.photometric:
        renderer.prepare(device)
        if renderer.caps(device).fused_kernels:
            loss_sums = image_loss_sums
    return renderer, loss_sums


# ================================================================================================ results
@dataclass
class LandmarkFit:
    """Projected and target landmarks of B frames × C views, frame-major (view b·C + c)."""

    pred_px: torch.Tensor
    """(B·C,K,2) the head model's landmarks projected, pixels."""
    target: torch.Tensor
    """(B·C,K,3) detected landmarks: x, y normalised to [0,1] by (W, H), and the detector's confidence."""
    conf: torch.Tensor
    """(B·C,K) weight of each detected point (0 = no detection)."""


@dataclass
class RenderedViews:
    """One batched render of all views of a sample (B·C views of H×W)."""

    rgba: torch.Tensor
    """(B·C,H,W,4) shaded colour over the background, antialiased coverage in alpha."""
    covered: torch.Tensor
    """(B·C,H,W) bool: pixels the photometric term normalises by (antialiased coverage > 0, as VHAP)."""
    tri_id: torch.Tensor
    """(B·C,H,W) int: triangle seen at each pixel, −1 = background."""
    diffuse_detached: torch.Tensor | None
    """Diffuse shading with detached normals (the lighting regulariser's input), or None."""

    @property
    def rgb(self) -> torch.Tensor:
        return self.rgba[..., :3]

    @property
    def alpha(self) -> torch.Tensor:
        return self.rgba[..., 3]


@dataclass
class Energy:
    """The energy of B frames for one stage: the weighted terms, their sum, and what they were computed from."""

    total: torch.Tensor
    """() sum of :attr:`terms`."""
    terms: dict[str, torch.Tensor]
    """() weighted value of each term by name (``landmark``, ``photo``, ``silhouette``, ``reg_*``, ``smooth_*``)."""
    head: HeadOutput
    """The head model's output for the B frames."""
    cameras: Cameras
    """B·C cameras, frame-major."""
    landmarks: LandmarkFit
    render: RenderedViews | None = None
    """None for landmark-only energies."""
    target: torch.Tensor | None = None
    """(B·C,H,W,3) float target images in [0,1] (photometric energies)."""
    photo_valid: torch.Tensor | None = None
    """(B·C,) bool: views whose render covers any pixel (an empty render drops out of the photometric term)."""


# ================================================================================================ the problem
class TrackingProblem:
    """Data, parameters and energy of one tracking job. Built by :class:`vhap.track.tracker.Tracker`."""

    def __init__(self, cfg: TrackConfig, seq, model, renderer, image_loss_sums, device: torch.device, plan: dict):
        self.cfg = cfg
        self.device = dev = device
        self.seq = seq
        self.model = model
        self.renderer = renderer
        #: (N,H,W,4) rgba, (N,H,W,3) target, (N,H,W) covered, matte | None -> (N,3) sums (see load_renderer)
        self.image_loss_sums = image_loss_sums
        self.T = seq.num_timesteps
        self.C = seq.num_cameras
        self.H, self.W = seq.image_size
        self.calibrated = seq.calibrated

        # ---- device-resident data (one upload for the whole run)
        self.images = seq.images.to(dev)  # (T,C,H,W,3) uint8
        self.alphas = None if seq.alphas is None else seq.alphas.to(dev)  # (T,C,H,W) uint8
        #: (T,C,H,W) bool head regions for the head-coverage term (None when off or without mattes)
        self.head_masks: torch.Tensor | None = None
        if cfg.w.silhouette_head and seq.alphas is not None and cfg.exp.photometric:
            from vhap.eval.whole_head import head_region_of_frames

            T_, C_, H_, W_ = seq.alphas.shape
            heads = head_region_of_frames(
                seq.alphas.reshape(-1, H_, W_).float() / 255.0,
                seq.landmarks.reshape(T_ * C_, -1, 3)[:, :68],
                cfg.w.silhouette_head_part,
            )
            self.head_masks = heads.view(T_, C_, H_, W_).to(dev)
        self.use_mediapipe = cfg.model.landmarks == "mediapipe"
        self.landmarks68: torch.Tensor | None = None
        if self.use_mediapipe:
            if seq.landmarks_mp is None or not model.has_mediapipe:
                raise VhapError(
                    "model.landmarks=mediapipe needs MediaPipe landmarks (mediapipe_478 in the landmark npz) and a "
                    "head model with a MediaPipe embedding",
                    fix="run `vhap landmarks --detector mediapipe` or use --model.landmarks ibug68",
                )
            ids = model.mp_landmark_ids.cpu()
            self.landmarks = seq.landmarks_mp[:, :, ids].to(dev)
            self.landmarks68 = seq.landmarks.to(dev)  # NME is always measured on the iBUG-68 points
        else:
            self.landmarks = seq.landmarks.to(dev)  # (T,C,68,3)
        self.lmk_conf = landmark_confidence(self.landmarks.flatten(0, 1), cfg.model.landmark_confidence).view(
            self.T, self.C, -1
        )
        self.rig = None
        if self.calibrated:
            self.rig = Cameras(K=seq.K.to(dev), w2c=seq.w2c.to(dev), image_size=(self.H, self.W))
        self._lmk_weights: dict[tuple[int, bool], torch.Tensor] = {}

        # ---- parameters
        tex_res = cfg.model.tex_resolution
        self.params = TrackParams(
            self.T,
            model.num_verts,
            n_shape=cfg.model.n_shape,
            n_expr=cfg.model.n_expr,
            tex_resolution=tex_res,
            calibrated=self.calibrated,
            use_static_offset=cfg.model.use_static_offset,
            use_dynamic_offset=cfg.model.use_dynamic_offset,
            use_texture=cfg.exp.photometric,
            init_focal_length=cfg.model.init_focal_length,
            device=dev,
        )
        if self.calibrated and cfg.model.init_translation_from_cameras:
            with torch.no_grad():
                self.params.translation[:] = rig_focus_point(seq.w2c).to(dev)
        if cfg.model.flame_params_path is not None:
            self.params.load_npz(cfg.model.flame_params_path)
        base = model.base_texture[None]
        if base.shape[-1] != tex_res or base.shape[-2] != tex_res:
            base = F.interpolate(base, size=(tex_res, tex_res), mode="bilinear", antialias=True, align_corners=False)
        self.base_texture = base.contiguous()  # (1,3,R,R), row 0 = top

        # ---- region tables (user regions from model.regions_file join the model's own)
        regions = model.regions
        add_user_regions(regions, cfg.model.regions_file)
        self._regions = regions
        w = cfg.w
        warn_unknown_regions(cfg, plan, regions)
        mask_names = set(w.reg_offset_lap_relax_for) | set(w.reg_offset_relax_for) | set(w.reg_offset_rigid_for)
        vertex_masks = {n: regions.vertex_mask(n) for n in mask_names if n in regions}
        tex_mask = None
        if cfg.exp.photometric and self._known(w.reg_tex_res_for):
            tex_mask = regions.uv_mask(self._known(w.reg_tex_res_for), size=tex_res)
        ds = cfg.data.downsample or 1
        tv_scale = (cfg.data.scale_factor**2) / (ds**2)
        mirror = None
        if w.reg_offset_symmetry and self._known(w.reg_offset_symmetry_for):
            sym_mask = regions.vertex_mask(self._known(w.reg_offset_symmetry_for))
            mirror = mirror_pairs(model.v_template.cpu().numpy(), sym_mask)
        self.regs = Regularizers(
            w, model.faces.cpu().numpy(), model.num_verts, vertex_masks, tex_mask, tv_scale, device=dev,
            mirror=mirror,
        )  # fmt: skip
        if cfg.model.use_static_offset and self._known(cfg.model.offset_lowpass_for):
            lowpass = regions.vertex_mask(self._known(cfg.model.offset_lowpass_for))
            verts, faces = model.v_template.cpu().numpy(), model.faces.cpu().numpy()
            field = OffsetField(verts, faces, lowpass, cfg.model.offset_lowpass_iters, device=dev)
            self.params.enable_offset_field(field)
        with _warnings_suppressed():
            self.face_cluster = torch.as_tensor(
                regions.face_cluster_table(cfg.model.tex_clusters), device=dev, dtype=torch.int16
            )
        self.num_clusters = 2 + len(cfg.model.tex_clusters)
        #: (faces off texture alignment, vertices off boundary alignment) by the stage's two region lists
        self._align_masks: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple] = {}
        for st in plan.values():
            if st.photometric:
                self._align_masks_of(st)
        face_names = self._known(("face",))
        self.face_region_faces = torch.as_tensor(regions.face_mask(face_names), device=dev) if face_names else None

        # ---- samples: consecutive chunks of batch_size frames, all cameras each
        bs = max(1, cfg.exp.batch_size)
        self.samples = [list(range(s, min(self.T, s + bs))) for s in range(0, self.T, bs)]
        self.sample_idx = [torch.as_tensor(f, device=dev, dtype=torch.long) for f in self.samples]
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(cfg.exp.seed)
        torch.manual_seed(cfg.exp.seed)

        self._model_call = model
        self._regs_call = self.regs.__call__
        if cfg.exp.compile:
            # compile the non-raster parts (head model, regularisers); the rasteriser stays eager
            self._model_call = torch.compile(model, dynamic=False)
            self._regs_call = torch.compile(self.regs.__call__, dynamic=False)

    # ------------------------------------------------------------------------------------------ regions
    def _known(self, names) -> list[str]:
        return [n for n in names if n in self._regions]

    def _align_masks_of(self, stage: StageConfig) -> tuple:
        key = (tuple(stage.align_texture_except), tuple(stage.align_boundary_except))
        masks = self._align_masks.get(key)
        if masks is None:  # built at set-up for every stage of the plan: a step finds it here
            tex_names, bnd_names = self._known(key[0]), self._known(key[1])
            masks = (
                torch.as_tensor(self._regions.face_mask(tex_names), device=self.device) if tex_names else None,
                torch.as_tensor(self._regions.vertex_mask(bnd_names), device=self.device) if bnd_names else None,
            )
            self._align_masks[key] = masks
        return masks

    def alignment_masks(self, stage: StageConfig) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(faces (F,) bool, vertices (V,) bool)`` excluded from texture / boundary alignment in ``stage``
        (§3.7; None = none excluded)."""
        return self._align_masks_of(stage)

    # ------------------------------------------------------------------------------------------ model and cameras
    def cameras(self, num_frames: int) -> Cameras:
        """Cameras of ``num_frames`` frames, frame-major: view b·C + c = frame b seen by camera c. Uncalibrated
        data: VHAP's camera with the tracked focal length (differentiable)."""
        if self.rig is not None:
            return self.rig.repeat(num_frames)
        return Cameras.uncalibrated(self.params.focal_length, (self.H, self.W), batch=num_frames)

    def forward(self, frame_idx: torch.Tensor, landmarks_only: bool = False) -> HeadOutput:
        """The head model posed for frames ``frame_idx (B,)``."""
        return self._model_call(**self.params.frame_params(frame_idx), landmarks_only=landmarks_only)

    def albedo(self) -> torch.Tensor:
        """(1,3,R,R) full albedo = painted base + residual (shared by all frames and views)."""
        if self.params.tex_extra is None:
            return self.base_texture
        return self.base_texture + self.params.tex_extra[None]

    def background_value(self) -> torch.Tensor:
        """(3,) colour behind the head in the matte PSNR (``data.background_color``)."""
        v = 0.0 if self.cfg.data.background_color == "black" else 1.0
        return torch.full((3,), v, device=self.device)

    # ------------------------------------------------------------------------------------------ energy
    def energy(self, frame_idx: torch.Tensor, stage: StageConfig | None, train: bool = True) -> Energy:
        """Energy of frames ``frame_idx (B,)`` in ``stage`` (``train=False``, ``stage`` None: evaluation —
        landmark and photometric terms only, no perturbation, no region exclusions, jawline on)."""
        cfg, w = self.cfg, self.cfg.w
        B, C = frame_idx.shape[0], self.C
        photometric = stage.photometric if stage is not None else cfg.exp.photometric
        with record_function("track/head_model"):
            # a landmark-only step needs only the landmarks: pose just their triangles' vertices
            out = self.forward(frame_idx, landmarks_only=not photometric)
        cams = self.cameras(B)
        lmk3d = out.landmarks_mp if self.use_mediapipe else out.landmarks[:, :68]
        lmk_px = cams.project(lmk3d.repeat_interleave(C, 0))  # (BC,K,2)
        target_lmk = self.landmarks[frame_idx].flatten(0, 1)
        conf = self.lmk_conf[frame_idx].flatten(0, 1)
        jawline = (not train) or w.always_enable_jawline_landmarks or not (stage and stage.disable_jawline_landmarks)
        key = (target_lmk.shape[1], bool(jawline or self.use_mediapipe))
        pw = self._lmk_weights.get(key)
        if pw is None:  # cached: building it needs a host→device copy
            pw = landmark_weights(key[0], jawline=key[1], nose_weight=w.nose_landmark_weight, device=self.device)
            self._lmk_weights[key] = pw
        terms: dict[str, torch.Tensor] = {}
        terms["landmark"] = w.landmark * landmark_loss(
            lmk_px, target_lmk, conf, pw, (self.H, self.W), w.landmark_robust, w.landmark_robust_scale
        )
        fit = LandmarkFit(lmk_px, target_lmk, conf)
        res = Energy(total=terms["landmark"], terms=terms, head=out, cameras=cams, landmarks=fit)
        albedo = None
        if photometric:
            albedo = self.albedo()
            target = frames_to_float(self.images, frame_idx)  # (BC,H,W,3)
            tex_mask, bnd_mask = self.alignment_masks(stage) if train and stage is not None else (None, None)
            with record_function("track/render"):
                verts = out.verts.repeat_interleave(C, 0)
                rend = self.render_views(verts, cams, albedo, target, train, tex_mask, bnd_mask)
            use_matte = self.alphas is not None and w.silhouette
            matte = frames_to_float(self.alphas, frame_idx) if use_matte else None
            with record_function("track/photo_loss"):
                sums = self.image_loss_sums(rend.rgba, target, rend.covered, matte, w.silhouette_form == "excess")
                photo, valid = photometric_from_sums(sums[:, 0], sums[:, 1])
            terms["photo"] = w.photo * photo
            res.render, res.target, res.photo_valid = rend, target, valid
            if use_matte:
                terms["silhouette"] = w.silhouette * silhouette_from_sums(sums[:, 2], sums[:, 1])
            if self.head_masks is not None:
                head = self.head_masks.index_select(0, frame_idx).flatten(0, 1)  # (BC,H,W)
                uncovered = ((1.0 - rend.rgba[..., 3]) * head).flatten(1).sum(1)
                terms["silhouette_head"] = w.silhouette_head * silhouette_from_sums(uncovered, sums[:, 1])
        if train and stage is not None:
            with record_function("track/regularizers"):
                regs = self._regs_call(
                    self.params,
                    frame_idx,
                    set(stage.params),
                    tracking=stage.temporal,
                    albedo=albedo,
                    diffuse_detached=None if res.render is None else res.render.diffuse_detached,
                )
            terms.update(regs)
        # one stack + sum instead of a chain of scalar adds (a kernel each, ~15 per step)
        res.total = torch.stack(list(terms.values())).sum()
        return res

    def render_views(self, verts, cams, albedo, target, train, tex_mask, bnd_mask) -> RenderedViews:
        """One batched render of all views of a sample through :func:`vhap.render.head.render_head`
        (§3.6 perturbation when training, §3.7 region-selective alignment). ``verts (B·C,V,3)``."""
        from vhap.render.head import render_head

        cfg = self.cfg
        r = render_head(
            verts,
            self.model.faces,
            self.model.uvs,
            self.model.uv_faces,
            cams,
            albedo,
            self.params.lights[None] if cfg.render.lighting == "SH" else None,
            target if cfg.render.background == "target" else cfg.render.background,
            face_cluster=self.face_cluster,
            perturb_rates=(cfg.render.disturb_rate_fg, cfg.render.disturb_rate_bg) if train else None,
            texture_align_off_faces=tex_mask,
            boundary_align_off_verts=bnd_mask,
            generator=self.generator,
            renderer=self.renderer,
            lighting=cfg.render.lighting,
            num_clusters=self.num_clusters,
        )
        # VHAP normalises by the antialiased coverage (> 0), which includes the silhouette's AA fringe
        return RenderedViews(
            rgba=r.rgba,
            covered=r.rgba[..., 3].detach() > 0,
            tri_id=r.tri_id,
            diffuse_detached=r.diffuse_detach_normal,
        )


# ================================================================================================ helpers
def frames_to_float(frames: torch.Tensor, frame_idx: torch.Tensor) -> torch.Tensor:
    """Frames ``frame_idx (B,)`` of a device-resident uint8 stack ``(T,C,...)`` as float32 in [0,1], ``(B·C,...)``:
    one selection kernel, then the uint8 → float conversion and the 1/255 scale as one kernel (type promotion)."""
    return frames.index_select(0, frame_idx).flatten(0, 1) * (1.0 / 255.0)


def rig_focus_point(w2c: torch.Tensor) -> torch.Tensor:
    """(C,4,4) OpenCV world-to-camera -> (3,) least-squares point closest to every camera's optical axis.

    With one camera (or parallel axes) the system is singular; the result then falls back to a point 1 m in
    front of the mean camera."""
    w2c = w2c.double().cpu()
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    centres = -(R.transpose(1, 2) @ t[..., None])[..., 0]  # (C,3)
    axes = R[:, 2, :]  # camera +z (viewing direction) in world coordinates
    eye = torch.eye(3, dtype=torch.float64)
    P = eye - axes[:, :, None] * axes[:, None, :]  # projectors orthogonal to each axis
    A = P.sum(0)
    b = (P @ centres[..., None]).sum(0)[..., 0]
    if w2c.shape[0] < 2 or torch.linalg.matrix_rank(A) < 3:
        return (centres.mean(0) + axes.mean(0)).float()
    return torch.linalg.solve(A, b).float()


@contextlib.contextmanager
def _warnings_suppressed():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def warn_unknown_regions(cfg: TrackConfig, plan: dict[str, StageConfig], regions) -> None:
    """Warn once about region names in the config that the head model does not have.

    Unknown names are skipped (a default list may name a region that one head model lacks, e.g. ``teeth``
    without ``add_teeth``), but a typo in ``model.occluded`` must not pass silently.
    """
    referenced = {
        "model.occluded": tuple(cfg.model.occluded or ()),
        "model.tex_clusters": tuple(cfg.model.tex_clusters),
        "w.reg_offset_lap_relax_for": tuple(cfg.w.reg_offset_lap_relax_for),
        "w.reg_offset_relax_for": tuple(cfg.w.reg_offset_relax_for),
        "w.reg_offset_rigid_for": tuple(cfg.w.reg_offset_rigid_for),
        "w.reg_tex_res_for": tuple(cfg.w.reg_tex_res_for),
    }
    for name, st in plan.items():
        referenced[f"pipeline.{name}.align_texture_except"] = tuple(st.align_texture_except)
        referenced[f"pipeline.{name}.align_boundary_except"] = tuple(st.align_boundary_except)
    unknown = {key: [n for n in names if n not in regions] for key, names in referenced.items()}
    unknown = {key: names for key, names in unknown.items() if names}
    if unknown:
        listed = "; ".join(f"{key}: {names}" for key, names in unknown.items())
        warnings.warn(
            f"region names not in head model '{cfg.model.head_model}' are ignored ({listed}); "
            f"valid names: {sorted(regions.names)}",
            stacklevel=2,
        )
