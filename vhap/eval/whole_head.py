"""Whole-head figures of a tracked real video, without a ground-truth mesh.

Everything here is a pure function of tensors (batch first) or arrays; the tracker (final evaluation), the
real-video benchmark (``bench/realvideo.py``) and the report use the same rules.

**Head region** of a frame = the matte (> 0.5) above the *collar line*. The collar line is a row found from the
matte's width profile ``w(y)`` (foreground pixels per row) and the detected iBUG-68 landmarks:

1. ``face_h`` = chin row (point 8) − mean brow row (points 17-26); ``jaw_w`` = |x(16) − x(0)| (face width at
   the ears). Both are in pixels of the frame.
2. The *neck row* is the narrowest matte row in ``[chin, chin + NECK_SEARCH · face_h]``.
3. The *collar row* is the first row at or below the neck row where the matte is wider than
   ``SHOULDER_RATIO · jaw_w`` (the shoulders start), but at most ``chin + MAX_NECK · face_h`` (a long neck or a
   matte that never widens, e.g. a cropped frame) and at most the image height.

4. Beside the jaw, below the mouth, nothing is head: pixels below the line through the mouth corners (points 48,
   54; "below" along the face's own up-down axis, brow → chin, so a rolled head is cut along its own jaw) that
   lie farther than ``SIDE_REACH · max(jaw_w, face_h)`` from the face's centre line (through the midpoint of
   points 0 and 16, parallel to that axis) are left out. A horizontal collar line alone keeps what the matte
   holds beside a tilted head above it — a raised shoulder, a car seat or a helmet ring the matting kept — none
   of which a head mesh should cover. The neck (narrower than the jaw) and the hair and ears above the mouth
   are untouched; hair hanging below the mouth beside the jaw is cut (long hair is not what a head mesh covers).

The head region thus holds hair, ears and the neck down to where the shoulders flare — what a whole-head mesh
must cover. ``draw_head_region`` shows the rule on a frame (collar line in red, neck row in yellow).

**Per frame** (:func:`frame_figures`), with ``covered`` = rendered alpha > 0.5:

- ``head_coverage`` = |covered ∩ head| / |head| (fraction of the head region's pixels the render covers);
- ``spill`` = |covered ∖ matte| / |covered| (fraction of the covered area outside the matte);
- ``head_psnr_db`` = PSNR (peak 1) of render vs frame over covered ∩ head;
- ``head_region_psnr_db`` = PSNR over the whole head region, uncovered pixels showing the background colour
  (penalises missing coverage and wrong colour in one number);
- ``face_psnr_db`` = PSNR over covered pixels whose triangle is in the model's ``face`` region;
- ``nme`` / ``mouth_nme`` / ``nme_without_mouth`` = mean landmark error (model landmarks projected vs detected,
  points with confidence > 0) over all 68 / the mouth points 48-67 / points 0-47, divided by the detected
  outer-eye-corner distance (36-45);
- ``mouth_gap_model`` / ``mouth_gap_detected`` = inner-lip opening |p62 − p66| / the same eye distance.

**Per run** (:func:`mesh_smoothness`): over the vertices/faces of a region, the mean |uniform Laplacian| of the
surface in mm (v_i − mean of its neighbours), of the offsets alone, and the max / 99th-percentile dihedral angle
(degrees between the normals of two faces sharing an edge; 0 = flat). The undeformed template's values are the
reference a smooth fit should stay near.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

#: rule constants (see the module docstring)
NECK_SEARCH = 0.6
MAX_NECK = 1.0
SHOULDER_RATIO = 1.5
SIDE_REACH = 0.6

MOUTH = slice(48, 68)
NOT_MOUTH = slice(0, 48)
EYE_CORNERS = (36, 45)
INNER_LIPS = (62, 66)

#: per-frame figures (keys of :func:`frame_figures`), with their units for reports
FRAME_FIGURES = {
    "head_coverage": "fraction",
    "spill": "fraction",
    "head_psnr_db": "dB",
    "head_region_psnr_db": "dB",
    "face_psnr_db": "dB",
    "nme": "fraction of eye distance",
    "mouth_nme": "fraction of eye distance",
    "nme_without_mouth": "fraction of eye distance",
    "mouth_gap_model": "fraction of eye distance",
    "mouth_gap_detected": "fraction of eye distance",
}


#: How the report and the viewer show a run's figures: metrics.json key (``totals``/``per_frame``/``whole_head``)
#: → (label with its unit, scale). The tracker's matte PSNR and IoU are not shown: they count the torso.
DISPLAY = {
    "nme": ("landmark NME (% eye distance)", 100.0),
    "mouth_nme": ("mouth NME (% eye distance)", 100.0),
    "psnr_face": ("face PSNR (dB)", 1.0),
    "head_psnr_db": ("head PSNR (dB)", 1.0),
    "head_coverage": ("head coverage (% of head region)", 100.0),
    "spill": ("spill outside matte (% of covered)", 100.0),
    "head_region_psnr_db": ("head region PSNR, uncovered = background (dB)", 1.0),
}


def display_figures(values: dict) -> dict[str, float | None]:
    """``values`` (metrics.json keys → numbers) as {label with unit: scaled value}, in :data:`DISPLAY` order."""
    out: dict[str, float | None] = {}
    for key, (label, scale) in DISPLAY.items():
        if key in values:
            v = values[key]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            out[label] = float(v) * scale if ok else None
    return out


@dataclass
class CollarCut:
    """Per-frame collar rule results, (B,) each: ``collar_row`` (head region = rows < it), ``neck_row``,
    ``by_shoulders`` (True: the shoulder width was reached; False: capped by the neck length or the image)."""

    collar_row: torch.Tensor
    neck_row: torch.Tensor
    by_shoulders: torch.Tensor


def collar_rows(matte: torch.Tensor, landmarks_px: torch.Tensor) -> CollarCut:
    """The collar line of each frame (module docstring, rule 1-3).

    matte (B,H,W) in [0,1]; landmarks_px (B,68,2) detected iBUG-68 points in pixels (x right, y down).
    """
    B, H, W = matte.shape
    dev = matte.device
    width = (matte > 0.5).sum(-1).float()  # (B,H)
    lmk = landmarks_px.float()
    chin = lmk[:, 8, 1]
    face_h = (chin - lmk[:, 17:27, 1].mean(1)).clamp(min=1.0)
    jaw_w = (lmk[:, 16, 0] - lmk[:, 0, 0]).abs().clamp(min=1.0)
    rows = torch.arange(H, device=dev, dtype=torch.float32)[None]  # (1,H)
    in_neck = (rows >= chin[:, None]) & (rows <= (chin + NECK_SEARCH * face_h)[:, None])
    big = float(W + 1)
    neck_row = torch.where(in_neck, width, torch.full_like(width, big)).argmin(1)  # (B,)
    # no row of the search window inside the image (chin below the frame): the neck row is the last row
    neck_row = torch.where(in_neck.any(1), neck_row, torch.full_like(neck_row, H - 1))
    cap = torch.nan_to_num(chin + MAX_NECK * face_h, nan=H).clamp(min=1, max=H).ceil().long()
    wide = (width >= (SHOULDER_RATIO * jaw_w)[:, None]) & (rows >= neck_row[:, None].float())
    first_wide = torch.where(wide, rows.long().expand(B, H), torch.full((B, H), H, device=dev)).min(1).values
    collar = torch.minimum(first_wide, cap).clamp(max=H)
    # landmarks missing (no detection): no cut, the whole matte is the head region
    ok = torch.isfinite(lmk[:, [0, 8, 16], :]).all(-1).all(-1) & torch.isfinite(lmk[:, 17:27, 1]).all(-1)
    full = torch.full_like(collar, H)
    return CollarCut(
        collar_row=torch.where(ok, collar, full),
        neck_row=torch.where(ok, neck_row, full - 1),
        by_shoulders=ok & (first_wide < cap),
    )


def beside_jaw(shape: tuple[int, int], landmarks_px: torch.Tensor) -> torch.Tensor:
    """(B,H,W) bool: the pixels rule 4 (module docstring) leaves out of the head region, for frames of ``shape``
    (H, W) and detected iBUG-68 points ``landmarks_px`` (B,68,2) in pixels; all False where points are missing."""
    H, W = shape
    lmk = landmarks_px.float()
    dev = lmk.device
    brow = lmk[:, 17:27].mean(1)
    axis = lmk[:, 8] - brow  # brow → chin
    face_h = axis.norm(dim=-1).clamp(min=1.0)
    down = axis / face_h[:, None]
    side = torch.stack([-down[:, 1], down[:, 0]], -1)
    jaw_w = (lmk[:, 16] - lmk[:, 0]).norm(dim=-1)
    reach = SIDE_REACH * torch.maximum(jaw_w, face_h)
    centre = 0.5 * (lmk[:, 0] + lmk[:, 16])
    mouth = 0.5 * (lmk[:, 48] + lmk[:, 54])
    yy, xx = torch.meshgrid(torch.arange(H, device=dev), torch.arange(W, device=dev), indexing="ij")
    pix = torch.stack([xx, yy], -1).float()[None]  # (1,H,W,2) x, y
    below = ((pix - mouth[:, None, None]) * down[:, None, None]).sum(-1) > 0
    lateral = ((pix - centre[:, None, None]) * side[:, None, None]).sum(-1).abs()
    used = lmk[:, [0, 8, 16, 48, 54]].reshape(lmk.shape[0], -1)
    ok = torch.isfinite(used).all(-1) & torch.isfinite(lmk[:, 17:27]).all(-1).all(-1)
    return below & (lateral > reach[:, None, None]) & ok[:, None, None]


def head_region(
    matte: torch.Tensor, collar_row: torch.Tensor, landmarks_px: torch.Tensor | None = None
) -> torch.Tensor:
    """(B,H,W) bool: matte > 0.5 on rows above ``collar_row`` (B,) (rules 1-3), without the pixels beside the
    jaw below the mouth (rule 4) when the detected iBUG-68 points ``landmarks_px`` (B,68,2) are given."""
    H = matte.shape[1]
    rows = torch.arange(H, device=matte.device)[None, :, None]
    head = (matte > 0.5) & (rows < collar_row[:, None, None])
    if landmarks_px is not None:
        head = head & ~beside_jaw(tuple(matte.shape[1:]), landmarks_px)
    return head


def above_brows(shape: tuple[int, int], landmarks_px: torch.Tensor) -> torch.Tensor:
    """(B,H,W) bool: pixels above the brows — on the brow side of the line through the mean brow point (17-26)
    across the face's own up-down axis (brow → chin) — of frames of ``shape`` (H, W) with detected iBUG-68
    points ``landmarks_px`` (B,68,2); all False where points are missing."""
    H, W = shape
    lmk = landmarks_px.float()
    brow = lmk[:, 17:27].mean(1)
    down = lmk[:, 8] - brow
    down = down / down.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    yy, xx = torch.meshgrid(torch.arange(H, device=lmk.device), torch.arange(W, device=lmk.device), indexing="ij")
    pix = torch.stack([xx, yy], -1).float()[None]
    ok = torch.isfinite(lmk[:, 17:27]).all(-1).all(-1) & torch.isfinite(lmk[:, 8]).all(-1)
    return (((pix - brow[:, None, None]) * down[:, None, None]).sum(-1) < 0) & ok[:, None, None]


def head_region_of_frames(matte: torch.Tensor, landmarks: torch.Tensor, part: str = "head") -> torch.Tensor:
    """(N,H,W) bool head regions (rules 1-4) of frames ``matte`` (N,H,W) in [0,1] with detected iBUG-68 points
    ``landmarks`` (N,68,3): x/W, y/H normalised and the detector's confidence (≤ 0 = no point); ``part``
    ``cranium``: only its part above the brows (:func:`above_brows`). The tracker's head-coverage term uses
    the same regions as the benchmark."""
    N, H, W = matte.shape
    lmk = landmarks.float()
    px = lmk[..., :2] * lmk.new_tensor([W, H])
    px = torch.where(lmk[..., 2:3] > 0, px, px.new_tensor(float("nan")))
    cut = collar_rows(matte, px)
    head = head_region(matte, cut.collar_row, px)
    return head & above_brows((H, W), px) if part == "cranium" else head


def _psnr(render: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR (peak 1) over ``mask`` (B,H,W) of (B,H,W,3) images; NaN where the mask is empty."""
    m = mask.unsqueeze(-1).float()
    sse = ((render - target).square() * m).flatten(1).sum(1)
    n = m.flatten(1).sum(1) * render.shape[-1]
    mse = sse / n.clamp(min=1)
    out = 10 * torch.log10(1.0 / mse.clamp(min=1e-10))
    return torch.where(n > 0, out, torch.full_like(out, float("nan")))


def _nme(pred: torch.Tensor, det: torch.Tensor, iod: torch.Tensor, part: slice) -> torch.Tensor:
    err = (pred[:, part] - det[:, part, :2]).norm(dim=-1)
    used = det[:, part, 2] > 0
    mean = torch.where(used, err, torch.zeros_like(err)).sum(1) / used.sum(1).clamp(min=1)
    ok = used.any(1) & (iod > 0)
    return torch.where(ok, mean / iod.clamp(min=1e-6), torch.full_like(mean, float("nan")))


def frame_figures(
    render_rgb: torch.Tensor,
    render_alpha: torch.Tensor,
    face_pixels: torch.Tensor,
    target_rgb: torch.Tensor,
    matte: torch.Tensor,
    model_landmarks_px: torch.Tensor,
    detected_landmarks_px: torch.Tensor,
    background: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Per-frame whole-head figures (module docstring), each (B,) float (NaN where undefined).

    render_rgb (B,H,W,3) in [0,1] (un-premultiplied colour where covered); render_alpha (B,H,W) coverage;
    face_pixels (B,H,W) bool (covered pixels of the model's face region); target_rgb (B,H,W,3) in [0,1] (the frame
    as tracked, i.e. composited on ``background`` where the tracker does); matte (B,H,W) in [0,1];
    model_landmarks_px (B,68,2) and detected_landmarks_px (B,68,3) (x, y pixels, confidence; ≤ 0 = unusable).
    """
    det = detected_landmarks_px.float()
    usable = det[..., 2] > 0
    det_px = torch.where(usable[..., None], det[..., :2], det[..., :2].new_tensor(float("nan")))
    cut = collar_rows(matte, det_px)
    head = head_region(matte, cut.collar_row, det_px)
    covered = render_alpha > 0.5
    inside = matte > 0.5
    n_head = head.flatten(1).sum(1).float()
    n_cov = covered.flatten(1).sum(1).float()
    nan = torch.full_like(n_head, float("nan"))
    cov = torch.where(n_head > 0, (covered & head).flatten(1).sum(1) / n_head.clamp(min=1), nan)
    spill = torch.where(n_cov > 0, (covered & ~inside).flatten(1).sum(1) / n_cov.clamp(min=1), nan)
    a = covered.unsqueeze(-1).float()
    composite = render_rgb * a + background * (1 - a)
    iod = (det[:, EYE_CORNERS[0], :2] - det[:, EYE_CORNERS[1], :2]).norm(dim=-1)
    iod = torch.where(usable[:, EYE_CORNERS[0]] & usable[:, EYE_CORNERS[1]], iod, torch.zeros_like(iod))
    pred = model_landmarks_px.float()

    def gap(p: torch.Tensor) -> torch.Tensor:
        g = (p[:, INNER_LIPS[0], :2] - p[:, INNER_LIPS[1], :2]).norm(dim=-1)
        return torch.where(iod > 0, g / iod.clamp(min=1e-6), nan)

    det_gap = torch.where(usable[:, INNER_LIPS[0]] & usable[:, INNER_LIPS[1]], gap(det), nan)
    return {
        "head_coverage": cov,
        "spill": spill,
        "head_psnr_db": _psnr(render_rgb, target_rgb, covered & head),
        "head_region_psnr_db": _psnr(composite, target_rgb, head),
        "face_psnr_db": _psnr(render_rgb, target_rgb, face_pixels & covered),
        "nme": _nme(pred, det, iod, slice(0, 68)),
        "mouth_nme": _nme(pred, det, iod, MOUTH),
        "nme_without_mouth": _nme(pred, det, iod, NOT_MOUTH),
        "mouth_gap_model": gap(pred),
        "mouth_gap_detected": det_gap,
        "collar_row": cut.collar_row.float(),
    }


def run_means(per_frame: dict[str, np.ndarray | torch.Tensor]) -> dict[str, float | None]:
    """Means over frames (NaNs ignored; None where no frame has a value) of the :data:`FRAME_FIGURES`."""
    out: dict[str, float | None] = {}
    for k in FRAME_FIGURES:
        if k not in per_frame:
            continue
        v = np.asarray(per_frame[k].cpu() if torch.is_tensor(per_frame[k]) else per_frame[k], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else None
    return out


# ------------------------------------------------------------------------------------------------ smoothness


@dataclass
class Smoothness:
    """Surface smoothness of one region (see the module docstring)."""

    surface_laplacian_mm: float
    offset_laplacian_mm: float | None
    max_dihedral_deg: float
    p99_dihedral_deg: float
    num_verts: int

    def as_dict(self) -> dict:
        return asdict(self)


def uniform_laplacian(x: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V,C) → (V,C): x_i − mean of x over the mesh neighbours of i (isolated vertices give 0)."""
    f = faces.long()
    V = x.shape[0]
    i = torch.cat([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    j = torch.cat([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    key = torch.unique(i * V + j)  # each directed edge once
    i, j = key // V, key % V
    s = torch.zeros_like(x).index_add_(0, i, x[j])
    n = torch.zeros(V, dtype=x.dtype, device=x.device).index_add_(0, i, torch.ones_like(i, dtype=x.dtype))
    return torch.where(n[:, None] > 0, x - s / n.clamp(min=1)[:, None], torch.zeros_like(x))


def dihedral_angles(verts: torch.Tensor, faces: torch.Tensor, face_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Angles (degrees, (E,)) between the normals of the two faces sharing each interior edge; with ``face_mask``
    (F,) bool only edges whose two faces are both in the mask."""
    f = faces.long()
    if face_mask is not None:
        f = f[face_mask]
    if f.shape[0] == 0:
        return verts.new_zeros(0)
    v = verts[f]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n = n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    fid = torch.arange(f.shape[0], device=f.device).repeat(3)
    e_sorted = e.sort(1).values
    V = int(verts.shape[0])
    key = e_sorted[:, 0] * V + e_sorted[:, 1]
    order = key.argsort()
    key, fid = key[order], fid[order]
    pair = key[1:] == key[:-1]  # manifold edges appear exactly twice
    a, b = fid[:-1][pair], fid[1:][pair]
    cos = (n[a] * n[b]).sum(-1).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cos))


def mesh_smoothness(
    verts: torch.Tensor,
    faces: torch.Tensor,
    vertex_mask: torch.Tensor,
    offsets: torch.Tensor | None = None,
    unit_to_mm: float = 1000.0,
) -> Smoothness:
    """Smoothness of the region ``vertex_mask`` (V,) bool of the mesh ``verts`` (V,3) (metres → mm by
    ``unit_to_mm``); ``offsets`` (V,3): also the mean |Laplacian| of the offset field alone. Faces count when all
    three vertices are in the region."""
    m = vertex_mask.bool()
    lap = uniform_laplacian(verts.double(), faces).norm(dim=-1)[m]
    off = None
    if offsets is not None:
        off = float(uniform_laplacian(offsets.double(), faces).norm(dim=-1)[m].mean() * unit_to_mm)
    fm = m[faces.long()].all(-1)
    ang = dihedral_angles(verts.double(), faces, fm)
    return Smoothness(
        surface_laplacian_mm=float(lap.mean() * unit_to_mm) if lap.numel() else math.nan,
        offset_laplacian_mm=off,
        max_dihedral_deg=float(ang.max()) if ang.numel() else math.nan,
        p99_dihedral_deg=float(torch.quantile(ang, 0.99)) if ang.numel() else math.nan,
        num_verts=int(m.sum()),
    )


# ------------------------------------------------------------------------------------------------ pictures


def draw_head_region(image: np.ndarray, head: np.ndarray, collar_row: int, neck_row: int | None = None) -> np.ndarray:
    """(H,W,3) uint8 frame with the head region tinted blue, the collar line red and the neck row yellow."""
    out = image.astype(np.float32).copy()
    tint = np.array([60, 140, 255], np.float32)
    out[head] = 0.6 * out[head] + 0.4 * tint
    H = image.shape[0]
    t = max(1, round(H / 256))
    if neck_row is not None and 0 <= neck_row < H:
        out[max(0, neck_row - t // 2 - 1) : neck_row + t // 2 + 1] = (255, 230, 0)
    if 0 <= collar_row < H:  # drawn last: stays visible where the collar is the neck row
        out[max(0, collar_row - t) : collar_row + t] = (255, 40, 40)
    return out.round().clip(0, 255).astype(np.uint8)


def picture_strip(rows: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str]) -> np.ndarray:
    """Grid of equally sized (h,w,3) uint8 tiles: a header band with the column labels, and above each row a band
    with its label."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = rows[0][0].shape[:2]
    band = max(18, h // 20)
    try:
        font = ImageFont.load_default(size=int(band * 0.7))
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * w, band + len(rows) * (h + band)), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    for ci, label in enumerate(col_labels[:cols]):
        d.text((ci * w + 4, 2), label, fill=(0, 0, 0), font=font)
    for ri, r in enumerate(rows):
        y = band + ri * (h + band)
        d.rectangle([0, y, cols * w, y + band - 1], fill=(235, 235, 235))
        d.text((4, y + 2), row_labels[ri], fill=(0, 0, 0), font=font)
        for ci, tile in enumerate(r):
            canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (ci * w, y + band))
    return np.asarray(canvas)
