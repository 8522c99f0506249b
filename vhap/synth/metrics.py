"""Accuracy metrics of the benchmark suite (numpy only, no model or renderer needed).

Every function takes plain arrays so the metrics can be checked against known answers and reused by the
tracker's own reporting. Conventions: vertices in metres (errors are reported in millimetres by the
summaries), 2D landmarks in pixels, images as float arrays in [0, 1] or uint8 (then the peak is 255).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vhap.errors import VhapError

#: iBUG-68 indices of the outer eye corners (subject's right eye outer corner, left eye outer corner).
IBUG_OUTER_EYE_CORNERS = (36, 45)


@dataclass(frozen=True)
class Similarity:
    """``x ↦ scale · R x + t`` (R proper rotation, det = +1)."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Apply to ``points`` (..., 3)."""
        return self.scale * points @ self.rotation.T + self.translation


def umeyama(
    src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True, weights: np.ndarray | None = None
) -> Similarity:
    """Least-squares similarity (Umeyama 1991) mapping ``src`` (N,3) onto ``dst`` (N,3).

    Minimises Σ w_i ‖dst_i − (s R src_i + t)‖² over rotations R (det +1, reflections excluded), scale s > 0
    (fixed to 1 when ``with_scale`` is False) and translation t.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 3:
        raise VhapError(f"umeyama needs two (N>=3, 3) point sets of equal shape, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs  # (3,3) = Σ w (dst-μd)(src-μs)^T
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # the best orthogonal map is a reflection: flip the weakest axis
    rot = u @ np.diag(d) @ vt
    var_s = float(w @ (xs**2).sum(axis=1))
    scale = float((sing * d).sum() / var_s) if with_scale and var_s > 0 else 1.0
    trans = mu_d - scale * rot @ mu_s
    return Similarity(scale=scale, rotation=rot, translation=trans)


def summarize(values: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """mean / median / 95th percentile / max of a flat array (multiplied by ``scale``)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1) * scale
    if v.size == 0 or not np.all(np.isfinite(v)):
        return {"mean": float("nan"), "median": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p95": float(np.percentile(v, 95)),
        "max": float(v.max()),
    }


def vertex_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-vertex Euclidean distances of (..., V, 3) meshes with the same topology → (..., V)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise VhapError(f"vertex error needs meshes of the same shape, got {pred.shape} and {gt.shape}")
    return np.linalg.norm(pred - gt, axis=-1)


def vertex_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    regions: dict[str, np.ndarray | None],
    *,
    align: str = "none",
    align_ids: np.ndarray | None = None,
) -> dict:
    """Vertex error (mm) of a tracked sequence against ground truth.

    pred, gt: (T, V, 3) metres, same topology. ``regions`` maps a report name to vertex ids (None = all).
    ``align``: ``"none"`` (same world, e.g. calibrated multi-view), ``"similarity_frame"`` (one Umeyama
    similarity per frame, fitted on ``align_ids``), ``"similarity_sequence"`` (one for the whole sequence),
    ``"rigid_frame"`` (per frame, scale fixed to 1). Returns {region: {mean, median, p95, max}} in mm plus
    ``per_frame_mean`` {region: [T floats]} and the fitted ``scales``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape != gt.shape:
        raise VhapError(f"expected two (T, V, 3) vertex arrays of equal shape, got {pred.shape} and {gt.shape}")
    ids = np.arange(pred.shape[1]) if align_ids is None else np.asarray(align_ids)
    scales: list[float] = []
    if align == "none":
        aligned = pred
    elif align in ("similarity_frame", "rigid_frame"):
        aligned = np.empty_like(pred)
        for t in range(len(pred)):
            sim = umeyama(pred[t, ids], gt[t, ids], with_scale=align == "similarity_frame")
            aligned[t] = sim.apply(pred[t])
            scales.append(sim.scale)
    elif align == "similarity_sequence":
        sim = umeyama(pred[:, ids].reshape(-1, 3), gt[:, ids].reshape(-1, 3))
        aligned = sim.apply(pred)
        scales.append(sim.scale)
    else:
        raise VhapError(
            f"unknown alignment {align!r}", fix="use none | similarity_frame | similarity_sequence | rigid_frame"
        )
    dist = vertex_distances(aligned, gt)
    out: dict = {"align": align, "scales": scales}
    per_frame: dict[str, list[float]] = {}
    for name, vid in regions.items():
        d = dist if vid is None else dist[:, np.asarray(vid)]
        out[name] = summarize(d, 1000.0)
        per_frame[name] = [float(x) for x in d.mean(axis=1) * 1000.0]
    out["per_frame_mean"] = per_frame
    return out


def landmark_nme(pred: np.ndarray, gt: np.ndarray, *, valid: np.ndarray | None = None) -> dict:
    """Normalised mean error of 2D landmarks (iBUG-68), in % of the ground-truth outer inter-ocular distance.

    pred, gt: (N, 68, 2) pixels (N = frames × views). ``valid`` (N,) bool skips entries. Per entry the NME is
    the mean landmark distance divided by ‖gt[36] − gt[45]‖; returns mean / median / p95 over entries and
    the per-entry values.
    """
    pred = np.asarray(pred, dtype=np.float64)[..., :2]
    gt = np.asarray(gt, dtype=np.float64)[..., :2]
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1] != 68:
        raise VhapError(f"landmark NME needs two (N, 68, 2) arrays, got {pred.shape} and {gt.shape}")
    a, b = IBUG_OUTER_EYE_CORNERS
    iod = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    nme = np.linalg.norm(pred - gt, axis=-1).mean(axis=1) / np.maximum(iod, 1e-9) * 100.0
    keep = np.ones(len(nme), bool) if valid is None else np.asarray(valid, bool)
    keep &= iod > 1e-6
    out = summarize(nme[keep])
    out["per_entry"] = [float(x) for x in nme]
    return out


def _as_float01(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    return img.astype(np.float64)


def masked_psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR (dB, peak 1) of ``pred`` vs ``target`` (..., H, W, C) over the pixels where ``mask`` (..., H, W) > 0.5.

    uint8 images are divided by 255; a float mask is thresholded at 0.5. Returns +inf for identical images.
    """
    p = _as_float01(pred)
    t = _as_float01(target)
    if p.shape != t.shape:
        raise VhapError(f"PSNR needs images of equal shape, got {p.shape} and {t.shape}")
    sq = (p - t) ** 2
    if mask is None:
        mse = sq.mean()
    else:
        m = _as_float01(mask) > 0.5
        if m.shape != sq.shape[:-1]:
            raise VhapError(f"mask shape {m.shape} does not match image shape {sq.shape[:-1]}")
        if not m.any():
            return float("nan")
        mse = sq[m].mean()
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def silhouette_iou(a: np.ndarray, b: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of two (…, H, W) mattes (uint8 → /255) thresholded at ``threshold``."""
    ma = _as_float01(a) > threshold
    mb = _as_float01(b) > threshold
    if ma.shape != mb.shape:
        raise VhapError(f"IoU needs masks of equal shape, got {ma.shape} and {mb.shape}")
    union = np.logical_or(ma, mb).sum()
    if union == 0:
        return float("nan")
    return float(np.logical_and(ma, mb).sum() / union)
