"""The typed configuration tree of ``vhap track`` (defaults = VHAP's monocular configuration, VHAP_SPEC §4).

Presets in ``vhap/track/presets/`` (package data) override parts of it (``nersemble``, ``few_views``, ``demo``, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from vhap.config.core import AT_LEAST_ONE, POSITIVE, UNIT, Range
from vhap.data.config import DataConfig

#: Stage names in the order of VHAP's declaration (§4.2, §4.7).
STAGE_NAMES = (
    "lmk_init_rigid",
    "lmk_init_all",
    "lmk_sequential_tracking",
    "lmk_global_tracking",
    "rgb_init_texture",
    "rgb_init_all",
    "rgb_init_offset",
    "rgb_sequential_tracking",
    "rgb_global_tracking",
)


@dataclass
class ModelConfig:
    """Head model and the per-run choices about its parameters."""

    head_model: str = "open"
    """``open`` (the project's own head model), ``flame2023``, ``flame2023_open``, ``flame2020`` or a folder."""
    n_shape: int = 300
    n_expr: int = 100
    add_teeth: bool = True
    use_static_offset: bool = True
    use_dynamic_offset: bool = False
    offset_lowpass_for: tuple[str, ...] = ()
    """Regions whose static offsets are a low-frequency field (a mesh-diffused displacement, faded in over the
    region's border) instead of free per-vertex offsets: they can grow to the hair outline but cannot form lumps.
    Empty (VHAP): per-vertex offsets everywhere."""
    offset_lowpass_iters: int = 40
    """Diffusion steps of the low-frequency field (its smoothing radius grows with the square root)."""
    occluded: tuple[str, ...] | None = None
    """Regions excluded from texture and boundary alignment in every photometric stage. ``None`` = take
    ``occluded_by_subject[data.subject]`` (or nothing); any value given here always wins over that table."""
    occluded_by_subject: dict[str, list[str]] = field(default_factory=dict)
    tex_resolution: Annotated[int, AT_LEAST_ONE] = 2048
    """Side of the residual texture (texels); the model's base texture is resized to it."""
    tex_clusters: tuple[str, ...] = ("skin", "hair", "boundary", "lips_tight", "teeth", "sclerae", "irises")
    landmarks: Literal["ibug68", "mediapipe"] = "ibug68"
    """Which detector points drive the landmark term: iBUG-68 (``face_landmark_2d``) or MediaPipe-478 via the
    model's MediaPipe embedding."""
    landmark_confidence: Literal["binary", "detector"] = "binary"
    """``binary`` (VHAP): a frame's 68 points all get weight 1, or 0 if the detection failed; ``detector``:
    use the detector's per-point confidence."""
    init_focal_length: Annotated[float, POSITIVE] = 1.5
    """Normalised focal length (f_px = focal * max(H, W)) that uncalibrated data starts from."""
    init_translation_from_cameras: bool = True
    """Calibrated rigs: start every frame's translation at the point closest to all optical axes (where the
    cameras look), instead of the world origin (our addition; the calibration origin need not be at the head)."""
    regions_file: Path | None = None
    """User regions (JSON ``{name: [vertex ids]}`` saved by ``vhap regions``) added to the head model's regions,
    so their names can be used in ``occluded``, ``tex_clusters``, ``w.reg_*_for`` and the stages'
    ``align_*_except`` lists. A name that already exists is replaced (regions derived from it, e.g. ``skin``
    from ``hair``, are not recomputed)."""
    flame_params_path: Path | None = None
    """Warm start from a previous ``tracked_flame_params*.npz`` (row-wise copy up to the shorter length)."""

    def __post_init__(self) -> None:
        if self.offset_lowpass_iters < 1:
            from vhap.errors import VhapError

            raise VhapError(
                f"model.offset_lowpass_iters must be at least 1, got {self.offset_lowpass_iters}",
                fix="use e.g. 40, or leave model.offset_lowpass_for empty for per-vertex offsets",
            )


@dataclass
class RenderConfig:
    backend: Literal["auto", "torch", "nvdiffrast", "cuda"] = "auto"
    disturb_rate_fg: Annotated[float, UNIT] = 0.5
    disturb_rate_bg: Annotated[float, UNIT] = 0.5
    lighting: Literal["SH", "constant"] = "SH"
    background: Literal["target", "white", "black"] = "target"
    """Background the render is composited over in the photometric term (VHAP: the target image itself)."""


@dataclass
class LossWeights:
    """Weights of every energy term (VHAP_SPEC §4.4); 0 switches a term off."""

    landmark: float = 10.0
    photo: float = 30.0
    silhouette: float = 10.0
    """Matte term (our addition): mean rendered coverage over pixels the matte calls background. One-sided on
    purpose: the matte also covers hair and torso, which the head model cannot (and should not) cover."""
    silhouette_form: Literal["coverage", "excess"] = "coverage"
    """Per pixel, ``coverage``: coverage × (1 − matte) — also penalises a render that matches a soft matte edge
    exactly, so it pulls every silhouette edge inward by a fraction of a pixel; ``excess``: max(0, coverage −
    matte) — only coverage beyond the matte, no pull where render and matte agree (same value off the matte)."""
    silhouette_head: float = 0.0
    """Head-coverage term (our addition): the uncovered part (1 − antialiased coverage) of each frame's head
    region — the matte above the collar line, without what lies beside the jaw below the mouth
    (:mod:`vhap.eval.whole_head`, the benchmark's rule) — per covered pixel. Its gradient moves only silhouette
    edges: it pulls the mesh out to the hair outline and down the neck, where the photometric term alone is
    outweighed by the offset priors. 0 (VHAP) = off."""
    silhouette_head_part: Literal["head", "cranium"] = "head"
    """Where ``silhouette_head`` pulls: the whole head region, or only its part above the brows (the hair
    outline; the sides beside the face, where mattes often keep a window or a seat, are left to the matte term
    and the photometric term)."""
    always_enable_jawline_landmarks: bool = True
    nose_landmark_weight: float = 10.0
    landmark_robust: Literal["l1", "geman_mcclure", "cauchy"] = "l1"
    """Per-point penalty of the landmark term: ``l1`` (VHAP) or a robust one that stops pulling on points far
    off (failed detections, e.g. a lower lip placed inside an open mouth); see ``landmark_loss``."""
    landmark_robust_scale: float = 0.03
    """Scale of the robust penalty in normalised device units (2 = image width); points farther off than a few
    scales pull little."""
    reg_shape: float = 0.3
    reg_expr: float = 3e-2
    reg_neck: float = 0.3
    reg_jaw: float = 0.3
    reg_eyes: float = 3e-2
    smooth_trans: float = 3e2
    smooth_rot: float = 3e1
    smooth_neck: float = 3e1
    smooth_jaw: float = 1e-1
    smooth_eyes: float = 0.0
    smooth_expr: float = 1.0
    reg_tex_tv: float = 1e4
    """Texture TV weight at full input resolution; the effective weight is divided by ``data.downsample``²."""
    reg_tex_res_clusters: float = 10.0
    reg_tex_res_for: tuple[str, ...] = ("sclerae", "teeth")
    reg_light: float | None = None
    reg_diffuse: float = 1e2
    reg_offset_lap: float = 1e6
    reg_offset_lap_relax_coef: float = 0.1
    reg_offset_lap_relax_for: tuple[str, ...] = ("hair", "ears")
    reg_offset: float = 3e2
    reg_offset_relax_coef: float = 1.0
    reg_offset_relax_for: tuple[str, ...] = ("hair", "ears")
    reg_offset_rigid: float = 3e2
    reg_offset_rigid_for: tuple[str, ...] = ("left_ear", "right_ear", "neck", "left_eye", "right_eye", "lips_tight")
    reg_offset_dynamic: float = 3e5
    reg_offset_symmetry: float = 0.0
    """Mirror-symmetry prior on the static offsets (mean squared difference between a vertex's offset and its
    mirror vertex's mirrored offset) over ``reg_offset_symmetry_for``; 0 (VHAP) = none."""
    reg_offset_symmetry_for: tuple[str, ...] = ("hair", "ears", "neck")

    def __post_init__(self):
        if not self.landmark_robust_scale > 0:
            from vhap.errors import VhapError

            raise VhapError(f"w.landmark_robust_scale must be > 0, got {self.landmark_robust_scale}")


@dataclass
class LearningRates:
    base: float = 5e-3
    translation: float = 1e-3
    expr: float = 5e-2
    light: float = 5e-3
    camera: float = 5e-3
    static_offset: float = 5e-4
    dynamic_offset: float = 5e-4


@dataclass
class StageConfig:
    """One optimisation stage: a fixed number of steps on one sample, or epochs over all samples."""

    num_steps: int = 0
    num_epochs: int = 0
    params: tuple[str, ...] = ()
    photometric: bool = False
    temporal: bool = False
    """A tracking stage: the temporal smoothness terms (``w.smooth_*``, towards the previous frame) are on."""
    disable_jawline_landmarks: bool = False
    align_texture_except: tuple[str, ...] = ()
    align_boundary_except: tuple[str, ...] = ()


def _stage(**kw) -> StageConfig:
    return StageConfig(**kw)


_ALL_RGB = ("cam", "pose", "shape", "joints", "expr", "texture", "lights")


@dataclass
class PipelineConfig:
    """The stages of VHAP_SPEC §4.2 (defaults = monocular)."""

    lmk_init_rigid: StageConfig = field(default_factory=lambda: _stage(num_steps=500, params=("cam", "pose")))
    lmk_init_all: StageConfig = field(
        default_factory=lambda: _stage(num_steps=500, params=("cam", "pose", "shape", "joints", "expr"))
    )
    rgb_init_texture: StageConfig = field(
        default_factory=lambda: _stage(
            num_steps=500,
            params=("cam", "shape", "texture", "lights"),
            photometric=True,
            align_texture_except=("hair", "boundary", "neck"),
            align_boundary_except=("hair", "boundary"),
        )
    )
    rgb_init_all: StageConfig = field(
        default_factory=lambda: _stage(
            num_steps=500,
            params=_ALL_RGB,
            photometric=True,
            disable_jawline_landmarks=True,
            align_texture_except=("hair", "boundary", "neck"),
            align_boundary_except=("hair", "bottomline"),
        )
    )
    rgb_init_offset: StageConfig = field(
        default_factory=lambda: _stage(
            num_steps=500,
            params=(*_ALL_RGB, "static_offset"),
            photometric=True,
            disable_jawline_landmarks=True,
            align_texture_except=("hair", "boundary", "neck"),
            align_boundary_except=("bottomline",),
        )
    )
    rgb_sequential_tracking: StageConfig = field(
        default_factory=lambda: _stage(
            num_steps=50,
            params=("pose", "joints", "expr", "texture", "dynamic_offset"),
            photometric=True,
            temporal=True,
            disable_jawline_landmarks=True,
            align_boundary_except=("bottomline",),
        )
    )
    rgb_global_tracking: StageConfig = field(
        default_factory=lambda: _stage(
            num_epochs=30,
            params=(*_ALL_RGB, "static_offset", "dynamic_offset"),
            photometric=True,
            temporal=True,
            disable_jawline_landmarks=True,
            align_boundary_except=("bottomline",),
        )
    )
    lmk_sequential_tracking: StageConfig = field(
        default_factory=lambda: _stage(num_steps=50, params=("pose", "joints", "expr"), temporal=True)
    )
    lmk_global_tracking: StageConfig = field(
        default_factory=lambda: _stage(num_epochs=30, params=("cam", "pose", "shape", "joints", "expr"), temporal=True)
    )
    lmk_prepass: StageConfig = field(
        default_factory=lambda: _stage(num_steps=0, params=("pose", "joints", "expr"), temporal=True)
    )
    """Landmark pre-pass (our addition, off in VHAP's defaults): before the sequential pass, every sample after
    the first is warm-started from the previous sample's last frame and fitted to its landmarks alone for
    ``num_steps`` steps (no rendering: cheap). The sequential pass then starts every frame from its own
    landmark fit instead of from the previous sample's last frame, which Adam (which moves a parameter by at
    most ~lr per step) cannot leave far enough within ``rgb_sequential_tracking.num_steps`` when the head
    turns fast: 50 steps × 5e-3 rad reach ~0.25 rad, synthetic motion jumps up to ~0.5 rad per 16-frame
    sample, and the later frames of every sample were left behind. ``num_steps`` = 0: off."""
    lmk_prepass_lr_scale: float = 1.0
    """Learning-rate multiplier of the pre-pass (reach ≈ num_steps × lr_scale × lr.base rad of rotation)."""
    sequential_warm_start: tuple[str, ...] = ("pose", "joints", "expr", "dynamic_offset")
    """Parameter groups the sequential pass copies from a sample's last frame into every frame of the next
    sample (VHAP: all per-frame groups). With the landmark pre-pass on, groups left out keep each frame's own
    pre-pass fit (copying them would throw that fit away)."""
    global_lr_scale: float = 0.1
    global_lr_gamma: Annotated[float, Range(gt=0, le=1)] = 0.9
    global_shared_lr_scale: Annotated[float, Range(gt=0, le=1)] = 1.0
    """Extra learning-rate multiplier, in the global stage only, of the tensors all frames share (shape, static
    offsets, texture, lights, focal length). Each global step visits one batch, so a shared tensor takes an Adam
    step (of up to ~lr) at every batch while each frame's pose takes one per epoch; 1 / (batches per epoch) lets
    them move at the same pace. 1 = VHAP."""
    eval_epochs: tuple[int, ...] = (0, 10, 20, 30)
    """Evaluate (and write ``tracked_flame_params_<e>.npz``) after these global epochs (0 = after the
    sequential pass). The last epoch is always evaluated."""
    begin_stage: str | None = None
    """Debugging: skip the fixed-step stages declared before this one (VHAP §4.7)."""


@dataclass
class ExpConfig:
    output_folder: Path = Path("output/track")
    """The run folder; outputs are written directly into it (deterministic path, resumable)."""
    timestamp_subfolder: bool = False
    photometric: bool = True
    batch_size: Annotated[int, AT_LEAST_ONE] = 16
    """Frames per sample (all cameras of each frame are always rendered together)."""
    cuda_graphs: bool = True
    """On CUDA, record each stage's step once as a CUDA graph and replay it (``vhap.track.graphs``): landmark
    stages always, photometric stages with the ``cuda`` render backend (``auto``'s choice on a GPU where our kernels
    build; nvdiffrast's rasteriser synchronises with the
    host, which recording forbids). Same arithmetic; off = every step launched from Python."""
    seed: int = 0
    checkpoint_every_samples: Annotated[int, AT_LEAST_ONE] = 8
    """Checkpoint after every N samples of the sequential pass (and always after each stage)."""
    checkpoint_every_epochs: Annotated[int, AT_LEAST_ONE] = 5
    checkpoint_dir: Path | None = None
    """Where checkpoints go and a resume reads them; None = ``<output_folder>/checkpoints``. A folder outside the
    run folder survives a workflow engine deleting the outputs of a failed job, so the retry resumes; it is
    removed after the run finishes."""
    resume: bool = True
    """Resume from the latest checkpoint when present (a finished run is left alone)."""
    overwrite: bool = False
    """Start from scratch even if the run folder holds a checkpoint or a finished run. The old run stays in place
    until the new one is complete."""
    compile: bool = False
    """``torch.compile`` the non-raster parts of a step (head model, losses, regularisers)."""
    device: str = "auto"
    """``cpu``, ``cuda``, ``cuda:1``, ... or ``auto`` (CUDA when available)."""
    write_media: bool = True
    """Write the textured mesh, overlay images and video, loss curves (metrics are always written)."""
    overlay_fps: Annotated[float, POSITIVE] = 25.0


@dataclass
class LogConfig:
    interval_scalar: Annotated[int, AT_LEAST_ONE] = 100
    """Read the loss values back from the device every N steps (keeps steps free of host syncs)."""
    view_indices: tuple[int, ...] = ()
    """Cameras shown in overlays; empty = up to ``max_num_views`` evenly spaced."""
    max_num_views: Annotated[int, AT_LEAST_ONE] = 3
    progress: bool = True


@dataclass
class TrackConfig:
    """Photometric head tracking (monocular or calibrated multi-view), VHAP-style."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    w: LossWeights = field(default_factory=LossWeights)
    lr: LearningRates = field(default_factory=LearningRates)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    exp: ExpConfig = field(default_factory=ExpConfig)
    log: LogConfig = field(default_factory=LogConfig)


def resolve_occluded(cfg: TrackConfig) -> tuple[str, ...]:
    """Regions treated as occluded: the user's list if given, else the subject table; ``hair`` is added when
    neither static nor dynamic offsets can move the surface (VHAP §3.7)."""
    if cfg.model.occluded is not None:
        regions = list(cfg.model.occluded)
    else:
        subject = str(getattr(cfg.data, "subject", "") or "")
        regions = list(cfg.model.occluded_by_subject.get(subject, ()))
    if not cfg.model.use_static_offset and not cfg.model.use_dynamic_offset and "hair" not in regions:
        regions.append("hair")
    return tuple(regions)


def stage_plan(cfg: TrackConfig) -> dict[str, StageConfig]:
    """The stages this run uses, in execution order, with ``occluded`` and ``begin_stage`` applied."""
    p = cfg.pipeline
    if cfg.exp.photometric:
        names = ["lmk_init_rigid", "lmk_init_all", "rgb_init_texture", "rgb_init_all"]
        if cfg.model.use_static_offset:
            names.append("rgb_init_offset")
        names += ["rgb_sequential_tracking", "rgb_global_tracking"]
    else:
        names = ["lmk_init_rigid", "lmk_init_all", "lmk_sequential_tracking", "lmk_global_tracking"]
    seq_name = "rgb_sequential_tracking" if cfg.exp.photometric else "lmk_sequential_tracking"
    if p.lmk_prepass.num_steps > 0 and p.lmk_prepass.params:
        names.insert(names.index(seq_name), "lmk_prepass")
    occluded = resolve_occluded(cfg)
    skip = set()
    if p.begin_stage is not None:
        if p.begin_stage not in STAGE_NAMES:
            from vhap.errors import VhapError

            raise VhapError(f"unknown pipeline.begin_stage {p.begin_stage!r}", fix=f"use one of {STAGE_NAMES}")
        skip = set(STAGE_NAMES[: STAGE_NAMES.index(p.begin_stage)])
        if seq_name in skip:
            skip.add("lmk_prepass")  # the pre-pass belongs to the sequential pass
    plan = {}
    for name in names:
        st: StageConfig = getattr(p, name)
        if st.photometric:
            st = dataclasses.replace(
                st,
                align_texture_except=tuple(dict.fromkeys((*st.align_texture_except, *occluded))),
                align_boundary_except=tuple(dict.fromkeys((*st.align_boundary_except, *occluded))),
            )
        if name in skip:
            st = dataclasses.replace(st, num_steps=0)
        params = tuple(
            g
            for g in st.params
            if not (g == "static_offset" and not cfg.model.use_static_offset)
            and not (g == "dynamic_offset" and not cfg.model.use_dynamic_offset)
            and not (g == "texture" and not cfg.exp.photometric)
        )
        plan[name] = dataclasses.replace(st, params=params)
    return plan


def add_user_regions(regions, path: Path | str | None) -> list[str]:
    """Add the regions of a user region file (``model.regions_file``) to ``regions`` (a
    :class:`vhap.model.regions.RegionSet`, changed in place). Returns the added names (``[]`` for no file).

    Raises :class:`vhap.errors.VhapError` naming the file when it is missing, malformed or made for another
    head model (vertex ids out of range)."""
    if path is None:
        return []
    from vhap.errors import VhapError
    from vhap.model.regions import load_region_file

    user = load_region_file(path)
    for name, ids in user.items():
        if ids.size and (ids.min() < 0 or ids.max() >= regions.num_verts):
            raise VhapError(
                f"region {name!r} has vertex ids outside [0, {regions.num_verts}) of this head model",
                path=path,
                fix="make the region file with `vhap regions` for the head model this run uses (model.head_model)",
            )
        regions.add(name, ids)
    return list(user)
