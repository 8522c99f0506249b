"""The tracking driver: VHAP's stage schedule (VHAP_SPEC §4) over device-resident data, resumable.

Design for speed (issue 6): every frame, matte and landmark is uploaded to the device once; a step renders
all frames × views of its sample in one batched call; the texture is sampled once per step from one shared
albedo; the loss values stay on the device and are read back every ``log.interval_scalar`` steps, so a step
never waits for the host.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import record_function

from vhap.errors import VhapError
from vhap.track import checkpoint as ckpt
from vhap.track.config import StageConfig, TrackConfig, add_user_regions, stage_plan
from vhap.track.losses import (
    image_loss_sums,
    landmark_confidence,
    landmark_loss,
    landmark_weights,
    photometric_from_sums,
    silhouette_from_sums,
)
from vhap.track.metrics import landmark_nme, masked_sse, psnr_from_sse, silhouette_iou
from vhap.track.params import OffsetField, TrackParams
from vhap.track.regularizers import Regularizers, mirror_pairs

INIT_STAGES = ("lmk_init_rigid", "lmk_init_all", "rgb_init_texture", "rgb_init_all", "rgb_init_offset")


class TrackingInterrupted(RuntimeError):
    """Raised by the test hook ``stop_after_steps`` (simulates a run killed mid-way)."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VhapError(f"device {name!r} requested but CUDA is not available", fix="use --exp.device cpu")
    return dev


@dataclass
class Batch:
    """One sample: frames ``frame_idx (B,)`` and all C cameras, flattened frame-major to B·C views."""

    frame_idx: torch.Tensor
    frames: list[int]


@dataclass
class StepResult:
    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    aux: dict = field(default_factory=dict)


class Tracker:
    """Runs one tracking job (see :func:`track`). Construct, then :meth:`run`."""

    def __init__(self, cfg: TrackConfig, seq=None, model=None):
        from vhap.model import HeadModel, load_head_assets
        from vhap.render import MeshRenderer

        t_setup = time.perf_counter()
        #: seconds spent outside the optimisation stages (set-up, checkpoints, parameter files), by kind; the
        #: final outputs add theirs. Reported in metrics.json so the end-to-end time can be accounted for.
        self.overhead: dict[str, float] = {}
        self.overhead_max: dict[str, float] = {}  # the longest single occurrence of each kind
        self.cfg = cfg
        self.device = resolve_device(cfg.exp.device)
        if seq is None:
            from vhap.data import load_sequence

            t0 = time.perf_counter()
            seq = load_sequence(cfg.data)
            self.overhead["load_sequence"] = time.perf_counter() - t0
        self.seq = seq
        t0 = time.perf_counter()
        if model is None:
            assets = load_head_assets(cfg.model.head_model)
            model = HeadModel(assets, n_shape=cfg.model.n_shape, n_expr=cfg.model.n_expr, add_teeth=cfg.model.add_teeth)
        self.model = model.to(self.device)
        self.overhead["head_model"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.renderer = MeshRenderer(cfg.render.backend)
        self._image_loss_ext = None
        if cfg.exp.photometric:
            # load the rasteriser's extensions now, so their start-up is not booked to the first stage
            self.renderer.prepare(self.device)
            if self.device.type == "cuda" and getattr(self.renderer.backend_for(self.device), "name", "") == "cuda":
                # with our own kernels in use, the image terms use their fused kernels too (vhap/track/image_loss.cu)
                try:
                    from vhap.track.losses import load_image_loss_extension

                    self._image_loss_ext = load_image_loss_extension()
                except Exception as e:  # compiler missing, CUDA mismatch: the PyTorch reference gives the same sums
                    warnings.warn(f"fused image-loss kernels unavailable ({e}); using the PyTorch path", stacklevel=2)
        self.overhead["renderer"] = time.perf_counter() - t0
        self.plan = stage_plan(cfg)
        self.T = seq.num_timesteps
        self.C = seq.num_cameras
        self.H, self.W = seq.image_size
        self.calibrated = seq.calibrated
        dev = self.device

        # ---- device-resident data (one upload for the whole run)
        self.images = seq.images.to(dev)  # (T,C,H,W,3) uint8
        self.alphas = None if seq.alphas is None else seq.alphas.to(dev)  # (T,C,H,W) uint8
        self.use_mediapipe = cfg.model.landmarks == "mediapipe"
        if self.use_mediapipe:
            if seq.landmarks_mp is None or not model.has_mediapipe:
                raise VhapError(
                    "model.landmarks=mediapipe needs MediaPipe landmarks (mediapipe_478 in the landmark npz) and a "
                    "head model with a MediaPipe embedding",
                    fix="run `vhap landmarks --detector mediapipe` or use --model.landmarks ibug68",
                )
            ids = model.mp_landmark_ids.cpu()
            self.landmarks = seq.landmarks_mp[:, :, ids].to(dev)
            self.seq_landmarks68 = seq.landmarks.to(dev)
        else:
            self.landmarks = seq.landmarks.to(dev)  # (T,C,68,3)
        self.lmk_conf = landmark_confidence(self.landmarks.flatten(0, 1), cfg.model.landmark_confidence).view(
            self.T, self.C, -1
        )
        if self.calibrated:
            from vhap.render import Cameras

            self.cameras = Cameras(K=seq.K.to(dev), w2c=seq.w2c.to(dev), image_size=(self.H, self.W))
        else:
            self._K_const = torch.tensor([[[0.0, 0, self.W / 2], [0, 0, self.H / 2], [0, 0, 1]]], device=dev)
            self._K_focal_mask = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, 0]]], device=dev)
            self._w2c_uncal = torch.tensor(
                [[[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, -1.0, 1.0], [0, 0, 0, 1.0]]], device=dev
            )
        self._lmk_weights: dict[tuple[int, bool], torch.Tensor] = {}

        # ---- parameters
        tex_res = cfg.model.tex_resolution
        self.params = TrackParams(
            self.T,
            self.model.num_verts,
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
        base = self.model.base_texture[None]
        if base.shape[-1] != tex_res or base.shape[-2] != tex_res:
            base = F.interpolate(base, size=(tex_res, tex_res), mode="bilinear", antialias=True, align_corners=False)
        self.base_texture = base.contiguous()  # (1,3,R,R), row 0 = top

        # ---- region tables (user regions from model.regions_file join the model's own)
        regions = self.model.regions
        add_user_regions(regions, cfg.model.regions_file)
        known = lambda names: [n for n in names if n in regions]
        w = cfg.w
        _warn_unknown_regions(cfg, self.plan, regions)
        mask_names = set(w.reg_offset_lap_relax_for) | set(w.reg_offset_relax_for) | set(w.reg_offset_rigid_for)
        vertex_masks = {n: regions.vertex_mask(n) for n in mask_names if n in regions}
        tex_mask = None
        if cfg.exp.photometric and known(w.reg_tex_res_for):
            tex_mask = regions.uv_mask(known(w.reg_tex_res_for), size=tex_res)
        ds = cfg.data.downsample or 1
        tv_scale = (cfg.data.scale_factor**2) / (ds**2)
        mirror = None
        if w.reg_offset_symmetry and known(w.reg_offset_symmetry_for):
            sym_mask = regions.vertex_mask(known(w.reg_offset_symmetry_for))
            mirror = mirror_pairs(self.model.v_template.cpu().numpy(), sym_mask)
        self.regs = Regularizers(
            w, self.model.faces.cpu().numpy(), self.model.num_verts, vertex_masks, tex_mask, tv_scale, device=dev,
            mirror=mirror,
        )  # fmt: skip
        if cfg.model.use_static_offset and known(cfg.model.offset_lowpass_for):
            lowpass = regions.vertex_mask(known(cfg.model.offset_lowpass_for))
            field = OffsetField(self.regs.nbr, self.regs.wgt, lowpass, cfg.model.offset_lowpass_iters, device=dev)
            self.params.enable_offset_field(field)
        with warnings_suppressed():
            self.face_cluster = torch.as_tensor(
                regions.face_cluster_table(cfg.model.tex_clusters), device=dev, dtype=torch.int16
            )
        self.num_clusters = 2 + len(cfg.model.tex_clusters)
        self.stage_masks = {}
        for name, st in self.plan.items():
            if st.photometric:
                tex_names, bnd_names = known(st.align_texture_except), known(st.align_boundary_except)
                self.stage_masks[name] = (
                    torch.as_tensor(regions.face_mask(tex_names), device=dev) if tex_names else None,
                    torch.as_tensor(regions.vertex_mask(bnd_names), device=dev) if bnd_names else None,
                )
        face_names = known(("face",))
        self.face_region_faces = torch.as_tensor(regions.face_mask(face_names), device=dev) if face_names else None

        # ---- samples: consecutive chunks of batch_size frames, all cameras each
        bs = max(1, cfg.exp.batch_size)
        self.samples = [list(range(s, min(self.T, s + bs))) for s in range(0, self.T, bs)]
        self.sample_idx = [torch.as_tensor(f, device=dev, dtype=torch.long) for f in self.samples]
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(cfg.exp.seed)
        torch.manual_seed(cfg.exp.seed)

        self.run_state = ckpt.RunState()
        self.fingerprint = ckpt.config_fingerprint(cfg)
        self.out_dir = Path(cfg.exp.output_folder)
        self._pending: list[tuple[str, int, dict[str, torch.Tensor]]] = []
        self._writer = ckpt.BackgroundWriter()  # checkpoints and parameter files
        self._kept_graphs: dict[tuple, tuple] = {}  # see run_fixed_stage(keep_graph=True)
        self._progress = None
        self._model_call = self.model
        self._regs_call = self.regs.__call__
        if cfg.exp.compile:
            # compile the non-raster parts (head model, regularisers); the rasteriser stays eager
            self._model_call = torch.compile(self.model, dynamic=False)
            self._regs_call = torch.compile(self.regs.__call__, dynamic=False)
        self.overhead["setup"] = time.perf_counter() - t_setup

    # =============================================================================== cameras / forward
    def _cameras(self, num_frames: int):
        """Cameras of a sample, frame-major: view b·C + c = frame b seen by camera c."""
        from vhap.render import Cameras

        if self.calibrated:
            return self.cameras.repeat(num_frames)
        # VHAP's uncalibrated camera (f_px = focal · max(H, W), centred principal point, at (0,0,1) looking
        # to -z) built from cached device constants: no host→device copy inside a step
        f = self.params.focal_length.reshape(1, 1, 1) * float(max(self.H, self.W))
        K = self._K_const + f * self._K_focal_mask
        return Cameras(
            K=K.expand(num_frames, 3, 3), w2c=self._w2c_uncal.expand(num_frames, 4, 4), image_size=(self.H, self.W)
        )

    def _forward(self, frame_idx: torch.Tensor, landmarks_only: bool = False):
        return self._model_call(**self.params.frame_params(frame_idx), landmarks_only=landmarks_only)

    def albedo(self) -> torch.Tensor:
        """(1,3,R,R) full albedo = painted base + residual (shared by all frames and views)."""
        if self.params.tex_extra is None:
            return self.base_texture
        return self.base_texture + self.params.tex_extra[None]

    # =============================================================================== energy
    def energy(self, frame_idx: torch.Tensor, stage_name: str | None, stage: StageConfig | None, train: bool = True):
        """Total energy of frames ``frame_idx`` for ``stage`` (``train=False``: evaluation — landmark and
        photometric terms only, no perturbation, no region exclusions, jawline on)."""
        cfg, w = self.cfg, self.cfg.w
        B, C = frame_idx.shape[0], self.C
        photometric = stage.photometric if stage is not None else cfg.exp.photometric
        with record_function("track/head_model"):
            # a landmark-only step needs only the landmarks: pose just their triangles' vertices
            out = self._forward(frame_idx, landmarks_only=not photometric)
        cams = self._cameras(B)
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
        terms["landmark"] = w.landmark * landmark_loss(lmk_px, target_lmk, conf, pw, (self.H, self.W))
        aux = {"lmk_px": lmk_px, "target_lmk": target_lmk, "conf": conf, "out": out, "cams": cams}
        albedo = None
        rend = None
        if photometric:
            albedo = self.albedo()
            target = frames_to_float(self.images, frame_idx)  # (BC,H,W,3)
            tex_mask, bnd_mask = self.stage_masks.get(stage_name, (None, None)) if train else (None, None)
            with record_function("track/render"):
                rend = self._render(out.verts.repeat_interleave(C, 0), cams, albedo, target, train, tex_mask, bnd_mask)
            use_matte = self.alphas is not None and w.silhouette
            matte = frames_to_float(self.alphas, frame_idx) if use_matte else None
            with record_function("track/photo_loss"):
                sums = image_loss_sums(rend["rgba"], target, rend["covered"], matte, ext=self._image_loss_ext)
                photo, valid = photometric_from_sums(sums[:, 0], sums[:, 1])
            terms["photo"] = w.photo * photo
            aux.update(rend=rend, target=target, photo_valid=valid)
            if use_matte:
                terms["silhouette"] = w.silhouette * silhouette_from_sums(sums[:, 2], sums[:, 1])
        if train and stage is not None:
            groups = set(stage.params)
            with record_function("track/regularizers"):
                regs = self._regs_call(
                    self.params,
                    frame_idx,
                    groups,
                    tracking="tracking" in (stage_name or "") or stage_name == "lmk_prepass",
                    albedo=albedo,
                    diffuse_detached=None if rend is None else rend.get("diffuse_detached"),
                )
            terms.update(regs)
        # one stack + sum instead of a chain of scalar adds (a kernel each, ~15 per step)
        total = torch.stack(list(terms.values())).sum()
        return StepResult(total, terms, aux)

    def _render(self, verts, cams, albedo, target, train, tex_mask, bnd_mask) -> dict:
        """One batched render of all views of the sample through :func:`vhap.render.head.render_head`
        (§3.6 perturbation when training, §3.7 region-selective alignment)."""
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
        alpha_aa = r.rgba[..., 3]
        return {
            "rgba": r.rgba,
            "rgb": r.rgba[..., :3],
            "alpha": alpha_aa,
            # VHAP normalises by the antialiased coverage (> 0), which includes the silhouette's AA fringe
            "covered": alpha_aa.detach() > 0,
            "tri_id": r.tri_id,
            "diffuse_detached": r.diffuse_detach_normal,
        }

    # =============================================================================== steps and logging
    def _step_terms(self, stage_name: str, stage: StageConfig, optimizer, frame_idx: torch.Tensor) -> dict:
        """One optimisation step; returns the detached loss terms (and ``total``). Also what a CUDA graph records."""
        optimizer.zero_grad(set_to_none=True)
        res = self.energy(frame_idx, stage_name, stage, train=True)
        with record_function("track/backward"):
            res.total.backward()
        with record_function("track/optimizer"):
            optimizer.step()
        terms = {k: v.detach() for k, v in res.terms.items()}
        terms["total"] = res.total.detach()
        return terms

    def _step(self, stage_name: str, stage: StageConfig, optimizer, frame_idx: torch.Tensor, graph=None) -> None:
        """One step (replayed from ``graph`` when given) and its bookkeeping."""
        if graph is not None:
            terms = graph(frame_idx)
        else:
            terms = self._step_terms(stage_name, stage, optimizer, frame_idx)
        rs = self.run_state
        rs.position.global_step += 1
        self._pending.append((stage_name, rs.position.global_step, terms))
        if len(self._pending) >= max(1, self.cfg.log.interval_scalar):
            self._flush_log()
        if self._stop_after is not None and rs.position.global_step >= self._stop_after:
            raise TrackingInterrupted(f"stopped after {rs.position.global_step} steps (test hook)")

    def _flush_log(self) -> None:
        """Read the pending loss values back (one host sync per interval) into the loss history."""
        if not self._pending:
            return
        by_stage: dict[str, list] = {}
        for stage, step, terms in self._pending:
            by_stage.setdefault(stage, []).append((step, terms))
        for stage, items in by_stage.items():
            keys = sorted(items[0][1])
            stacked = torch.stack([torch.stack([t[k] for k in keys]) for _, t in items]).float().cpu().numpy()
            mean = stacked.mean(0)
            entry = {
                "stage": stage,
                "step": int(items[-1][0]),
                **{k: float(v) for k, v in zip(keys, mean, strict=True)},
            }
            self.run_state.loss_history.append(entry)
            if self._progress is not None:
                self._progress.set_postfix(total=f"{entry['total']:.4g}", refresh=False)
        self._pending.clear()

    def _timed(self, stage_name: str):
        tracker = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()
                self.s0 = tracker.run_state.position.global_step

            def __exit__(self, *exc):
                if tracker.device.type == "cuda":
                    torch.cuda.synchronize(tracker.device)
                rs = tracker.run_state
                rs.stage_time[stage_name] = rs.stage_time.get(stage_name, 0.0) + time.perf_counter() - self.t0
                rs.stage_steps[stage_name] = rs.stage_steps.get(stage_name, 0) + rs.position.global_step - self.s0

        return _Timer()

    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.cfg.log.progress, leave=False, dynamic_ncols=True)

    # =============================================================================== stages
    def run_fixed_stage(self, stage_name: str, sample: int, lr_scale: float = 1.0, keep_graph: bool = False) -> None:
        """``num_steps`` steps of a fresh Adam (learning rates × ``lr_scale``) on one sample (VHAP: a new
        optimiser per stage call).

        ``keep_graph``: more calls of this stage follow (the pre-pass and the sequential pass run one per sample):
        keep its recorded step and optimiser for them instead of warming up and recording again per sample. The
        next call then zeroes the optimiser's state in place, which is exactly a fresh Adam. The caller ends the
        series with :meth:`release_kept_graphs`."""
        stage = self.plan[stage_name]
        if stage.num_steps <= 0 or not stage.params:
            return
        graphed = self._use_cuda_graph(stage, stage.num_steps)
        frame_idx = self.sample_idx[sample]
        key = (stage_name, frame_idx.numel(), lr_scale)
        kept = self._kept_graphs.pop(key, None) if graphed else None
        if kept is not None:
            opt, graph = kept
            opt.reset()
        else:
            with self.overhead_timer("stage_optimizer"):
                opt = self.params.optimizer(stage.params, self.cfg.lr, scale=lr_scale)
            graph = None
            if graphed:
                with self.overhead_timer("stage_graph_init"):
                    graph = self._step_graph(stage_name, stage, opt, frame_idx.numel())
        with self._timed(stage_name), self._bar(stage.num_steps, f"{stage_name} [{sample}]") as bar:
            self._progress = bar
            done = False
            try:
                for _ in range(stage.num_steps):
                    self._step(stage_name, stage, opt, frame_idx, graph)
                    bar.update(1)
                done = True
            finally:
                if done and keep_graph and graph is not None and not graph.failed:
                    self._kept_graphs[key] = (opt, graph)
                else:
                    self._release(graph, opt)
            self._flush_log()
            self._progress = None

    def release_kept_graphs(self) -> None:
        """Free the steps kept by ``run_fixed_stage(..., keep_graph=True)`` (and their memory pools)."""
        for opt, graph in self._kept_graphs.values():
            self._release(graph, opt)
        self._kept_graphs.clear()

    # =============================================================================== CUDA graphs
    def _use_cuda_graph(self, stage: StageConfig, num_steps: int) -> bool:
        """Record this stage's steps as CUDA graphs (``vhap.track.graphs``)? On CUDA with ``exp.cuda_graphs``, for
        landmark stages always and for photometric stages when the renderer never synchronises with the host
        (``render.backend cuda``), if there are enough steps to amortise the warm-up and the recording."""
        from vhap.track.graphs import StepGraph

        return (
            self.device.type == "cuda"
            and self.cfg.exp.cuda_graphs
            and num_steps > StepGraph.WARMUP + 2
            and (not stage.photometric or self.renderer.capturable(self.device))
        )

    def _step_graph(self, stage_name: str, stage: StageConfig, optimizer, batch_size: int):
        from vhap.track.graphs import StepGraph

        return StepGraph(
            lambda idx: self._step_terms(stage_name, stage, optimizer, idx),
            batch_size,
            self.device,
            generators=(self.generator,),
            label=stage_name,
        )

    def _release(self, graph, optimizer) -> None:
        if graph is not None:
            graph.release()
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)  # the recorded gradients live in the graph's memory pool

    def _global_name(self) -> str:
        return "rgb_global_tracking" if self.cfg.exp.photometric else "lmk_global_tracking"

    def _sequential_name(self) -> str:
        return "rgb_sequential_tracking" if self.cfg.exp.photometric else "lmk_sequential_tracking"

    def _make_global_optimizer(self):
        from vhap.track.adam import ExponentialDecay

        stage = self.plan[self._global_name()]
        opt = self.params.optimizer(stage.params, self.cfg.lr, scale=self.cfg.pipeline.global_lr_scale)
        sched = None if opt is None else ExponentialDecay(opt, self.cfg.pipeline.global_lr_gamma)
        return opt, sched

    def _epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """Shuffled batches of one global epoch, from a generator seeded by (seed, epoch): the order does not
        depend on how often the run was resumed."""
        g = torch.Generator().manual_seed(self.cfg.exp.seed * 100_003 + epoch)
        perm = torch.randperm(self.T, generator=g)
        bs = max(1, self.cfg.exp.batch_size)
        return [perm[i : i + bs].to(self.device) for i in range(0, self.T, bs)]

    # =============================================================================== checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoints" / "latest.pt"

    def add_overhead(self, kind: str, seconds: float) -> None:
        self.overhead[kind] = self.overhead.get(kind, 0.0) + seconds
        self.overhead_max[kind] = max(self.overhead_max.get(kind, 0.0), seconds)

    @contextlib.contextmanager
    def overhead_timer(self, kind: str):
        """Book the wall time of the block to ``overhead[kind]`` (device work it enqueues is waited for)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.add_overhead(kind, time.perf_counter() - t0)

    def save_checkpoint(self, optimizer=None, scheduler=None) -> None:
        """Snapshot the run now and write it on the background writer (``checkpoints`` overhead = the snapshot
        plus any wait for the previous write)."""
        self._flush_log()
        t0 = time.perf_counter()
        state = ckpt.snapshot_checkpoint(
            fingerprint=self.fingerprint,
            params=self.params,
            run=self.run_state,
            generator=self.generator,
            optimizer=optimizer,
            scheduler=scheduler,
        )
        self.write_in_background(ckpt.write_checkpoint, self.checkpoint_path, state)
        self.add_overhead("checkpoints", time.perf_counter() - t0)

    def _try_resume(self) -> dict | None:
        if self.cfg.exp.overwrite or not self.cfg.exp.resume or not self.checkpoint_path.is_file():
            return None
        state = ckpt.load_checkpoint(self.checkpoint_path, self.fingerprint)
        self.params.load_state_dict({k: v.to(self.device) for k, v in state["params"].items()})
        ckpt.set_rng_state(state["rng"], self.generator)
        self.run_state = ckpt.restore_run_state(state)
        return state

    # =============================================================================== evaluation
    @torch.no_grad()
    def evaluate(self, collect_images: bool = False) -> dict:
        """Landmark + photometric energy and quality metrics of every frame (no perturbation)."""
        per_frame = []
        images = []
        bs = max(1, self.cfg.exp.batch_size)
        for start in range(0, self.T, bs):
            frames = list(range(start, min(self.T, start + bs)))
            idx = torch.as_tensor(frames, device=self.device)
            res = self.energy(idx, None, None, train=False)
            a = res.aux
            B, C = len(frames), self.C
            size = torch.tensor([self.W, self.H], device=self.device, dtype=torch.float32)
            if self.use_mediapipe:  # NME is always measured on the iBUG-68 points
                ibug_px = a["cams"].project(a["out"].landmarks[:, :68].repeat_interleave(C, 0))
                ibug_t = self.seq_landmarks68[idx].flatten(0, 1)
                conf68 = landmark_confidence(ibug_t, self.cfg.model.landmark_confidence)
                nme = landmark_nme(ibug_px, ibug_t[..., :2] * size, conf68)
            else:
                nme = landmark_nme(a["lmk_px"][:, :68], a["target_lmk"][:, :68, :2] * size, a["conf"][:, :68])
            rec = {"nme": nme.view(B, C)}
            if "rend" in a:
                rend, target = a["rend"], a["target"]
                tri = rend["tri_id"]
                face_mask = tri >= 0
                if self.face_region_faces is not None:
                    face_mask = face_mask & self.face_region_faces[tri.clamp(min=0)]
                sse, cnt = masked_sse(rend["rgb"], target, face_mask)
                rec["psnr_face"] = psnr_from_sse(sse, cnt).view(B, C)
                if self.alphas is not None:
                    matte = frames_to_float(self.alphas, idx)
                    bg = self._background_value()
                    comp = torch.where((rend["tri_id"] >= 0)[..., None], rend["rgb"], bg)
                    sse_m, cnt_m = masked_sse(comp, target, matte > 0.5)
                    rec["psnr_matte"] = psnr_from_sse(sse_m, cnt_m).view(B, C)
                    rec["iou"] = silhouette_iou(rend["alpha"], matte).view(B, C)
                if collect_images:
                    images.append(self._overlay_batch(res, frames))
            rec["landmark"] = res.terms["landmark"].expand(B)
            if "photo" in res.terms:
                rec["photo"] = res.terms["photo"].expand(B)
            per_frame.append({k: v.float().cpu().numpy() for k, v in rec.items()})
        merged = {k: np.concatenate([p[k] for p in per_frame]) for k in per_frame[0]}
        return {"per_frame": merged, "images": images}

    def _background_value(self) -> torch.Tensor:
        color = getattr(self.cfg.data, "background_color", None)
        v = 0.0 if color == "black" else 1.0
        return torch.full((3,), v, device=self.device)

    def _overlay_batch(self, res: StepResult, frames: list[int]) -> list[tuple[int, int, np.ndarray]]:
        """(frame, camera, overlay image uint8) for the logged views of a batch."""
        from vhap.track.outputs import draw_overlay

        a = res.aux
        views = self.log_views()
        out = []
        C = self.C
        rgb = a["rend"]["rgb"]
        alpha = (a["rend"]["tri_id"] >= 0).float()
        for bi, t in enumerate(frames):
            for c in views:
                k = bi * C + c
                img = draw_overlay(
                    a["target"][k].cpu().numpy(),
                    rgb[k].cpu().numpy(),
                    alpha[k].cpu().numpy(),
                    a["lmk_px"][k].cpu().numpy(),
                    (a["target_lmk"][k, :, :2].cpu().numpy() * np.array([self.W, self.H])),
                    a["conf"][k].cpu().numpy(),
                )
                out.append((t, c, img))
        return out

    def log_views(self) -> list[int]:
        if self.cfg.log.view_indices:
            return [v for v in self.cfg.log.view_indices if 0 <= v < self.C]
        n = min(self.C, max(1, self.cfg.log.max_num_views))
        return sorted({int(round(x)) for x in np.linspace(0, self.C - 1, n)})

    # =============================================================================== the schedule
    def run(self, stop_after_steps: int | None = None) -> dict:
        """Run (or resume) the whole schedule and write every output. Returns the summary dict."""
        try:
            return self._run(stop_after_steps)
        finally:
            self.wait_for_writes()

    def write_in_background(self, write, *args) -> None:
        """Run ``write(*args)`` (a file write of host data) on the run's background writer, after earlier ones."""
        self._writer.submit(write, *args)

    def wait_for_writes(self) -> None:
        """Block until the files being written in the background are on disk (or raise a write's error)."""
        t0 = time.perf_counter()
        self._writer.wait()
        self.add_overhead("checkpoints", time.perf_counter() - t0)

    def _run(self, stop_after_steps: int | None) -> dict:
        import threading

        from vhap.track import outputs

        if self.cfg.exp.write_media:
            threading.Thread(target=outputs.import_media_writers, name="vhap-import-media", daemon=True).start()

        self._stop_after = stop_after_steps
        cfg = self.cfg
        t0 = time.perf_counter()
        state = self._try_resume()
        if state is None:
            outputs.prepare_run_folder(self)
        self.add_overhead("run_folder", time.perf_counter() - t0)
        rs = self.run_state
        pos = rs.position
        t_start = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

        # ---- 1. initialisation stages on the first sample
        init_names = [n for n in INIT_STAGES if n in self.plan]
        if pos.phase == "init":
            for i in range(pos.index, len(init_names)):
                self.run_fixed_stage(init_names[i], 0)
                pos.index = i + 1
                self.save_checkpoint()
            pos.phase, pos.index = ("lmk_prepass" if "lmk_prepass" in self.plan else "sequential"), 0
            self.save_checkpoint()

        # ---- 2a. landmark pre-pass (our addition; off in VHAP's defaults)
        if pos.phase == "lmk_prepass":
            self.run_landmark_prepass()
            pos.phase, pos.index = "sequential", 0
            self.save_checkpoint()

        # ---- 2b. sequential pass with warm starts
        seq_name = self._sequential_name()
        warm_groups = cfg.pipeline.sequential_warm_start
        if pos.phase == "sequential":
            n = len(self.samples)
            for s in range(pos.index, n):
                self.run_fixed_stage(seq_name, s, keep_graph=s + 1 < n)
                if s + 1 < n:
                    # VHAP fix (§4.5): warm-start *every* frame of the next sample, the last frame included
                    with self.overhead_timer("warm_start"):
                        self.params.warm_start(self.samples[s][-1], self.samples[s + 1], warm_groups)
                pos.index = s + 1
                every = max(1, cfg.exp.checkpoint_every_samples)
                if (s + 1) % every == 0 and s + 1 < n:
                    self.save_checkpoint()
            self.release_kept_graphs()
            self._evaluate_and_save(0)
            pos.phase, pos.index = "global", 0
            self.save_checkpoint()

        # ---- 3. global epochs (shuffled), lr × 0.1, ExponentialLR per epoch
        gname = self._global_name()
        gstage = self.plan[gname]
        if pos.phase == "global":
            E = gstage.num_epochs
            graphed = self._use_cuda_graph(gstage, E * len(self.samples))
            with self.overhead_timer("stage_optimizer"):
                opt, sched = self._make_global_optimizer()
            graphs: dict[int, object] = {}  # one recorded step per batch size
            if state is not None and state.get("optimizer") is not None and pos.index > 0 and opt is not None:
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
            if opt is not None:
                for epoch in range(pos.index, E):
                    batches = self._epoch_batches(epoch)
                    with self._timed(gname), self._bar(len(batches), f"{gname} epoch {epoch + 1}/{E}") as bar:
                        self._progress = bar
                        for idx in batches:
                            graph = None
                            if graphed:
                                graph = graphs.get(idx.numel())
                                if graph is None:
                                    graph = graphs[idx.numel()] = self._step_graph(gname, gstage, opt, idx.numel())
                            self._step(gname, gstage, opt, idx, graph)
                            bar.update(1)
                        self._flush_log()
                        self._progress = None
                    sched.step()
                    pos.index = epoch + 1
                    if pos.index in cfg.pipeline.eval_epochs and pos.index != E:
                        self._evaluate_and_save(pos.index)
                    every = max(1, cfg.exp.checkpoint_every_epochs)
                    if pos.index % every == 0 or pos.index == E:
                        self.save_checkpoint(opt, sched)
                for graph in graphs.values():
                    self._release(graph, opt)
            pos.phase, pos.index = "final", 0
            self.save_checkpoint()

        # ---- 4. final outputs
        E = gstage.num_epochs
        summary = outputs.write_final_outputs(self, final_epoch=E, resumed=state is not None, t_start=t_start)
        return summary

    def run_landmark_prepass(self) -> None:
        """The landmark pre-pass (``pipeline.lmk_prepass``), resumable per sample: every sample after the first
        (which the init stages fitted) is warm-started from the previous sample's last frame, then fitted to
        its landmarks alone (no rendering), with the temporal terms of tracking on. Advances
        ``run_state.position.index`` (samples done) and checkpoints like the sequential pass."""
        stage = self.plan.get("lmk_prepass")
        if stage is None:
            return
        pos = self.run_state.position
        n = len(self.samples)
        scale = self.cfg.pipeline.lmk_prepass_lr_scale
        every = max(1, self.cfg.exp.checkpoint_every_samples)
        for s in range(max(1, pos.index), n):
            with self.overhead_timer("warm_start"):
                self.params.warm_start(self.samples[s - 1][-1], self.samples[s], stage.params)
            self.run_fixed_stage("lmk_prepass", s, lr_scale=scale, keep_graph=s + 1 < n)
            pos.index = s + 1
            if (s + 1) % every == 0 and s + 1 < n:
                self.save_checkpoint()
        self.release_kept_graphs()

    def _evaluate_and_save(self, epoch: int) -> None:
        from vhap.track import outputs

        t0 = time.perf_counter()
        ev = self.evaluate()
        self.run_state.stage_time["evaluation"] = self.run_state.stage_time.get("evaluation", 0.0) + (
            time.perf_counter() - t0
        )
        outputs.write_params_npz(self, self.out_dir / f"tracked_flame_params_{epoch}.npz", background=True)
        self.run_state.evaluations[str(epoch)] = outputs.summarize_eval(ev["per_frame"])


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
def warnings_suppressed():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def track(cfg: TrackConfig, *, seq=None, model=None, stop_after_steps: int | None = None) -> dict:
    """Library entry point of ``vhap track``: run or resume the job described by ``cfg``; returns the summary."""
    return Tracker(cfg, seq=seq, model=model).run(stop_after_steps=stop_after_steps)


__all__ = ["Tracker", "TrackingInterrupted", "track"]


def _warn_unknown_regions(cfg: TrackConfig, plan: dict, regions) -> None:
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
