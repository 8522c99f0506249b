"""Evaluation of a tracking problem: landmark and photometric energy and the quality metrics of every frame."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from vhap.eval import whole_head
from vhap.track.config import LogConfig
from vhap.track.losses import landmark_confidence
from vhap.track.metrics import landmark_nme, masked_sse, psnr_from_sse, silhouette_iou
from vhap.track.problem import Energy, TrackingProblem, frames_to_float


@dataclass
class Evaluation:
    per_frame: dict[str, np.ndarray]
    """Metric name → (T,C) values (``nme``, ``psnr_face``, ``psnr_matte``, ``iou``, the whole-head figures of
    :data:`vhap.eval.whole_head.FRAME_FIGURES` when there is a matte) or (T,) (``landmark``,
    ``photo``: the evaluation energy of the frame's batch)."""
    images: list[list[tuple[int, int, np.ndarray]]] = field(default_factory=list)
    """Per batch: (frame, camera, overlay image (H,W,3) uint8) of the logged views (``collect_images``)."""


def log_views(log: LogConfig, num_cameras: int) -> list[int]:
    """Cameras shown in overlays: ``log.view_indices``, or up to ``log.max_num_views`` evenly spaced."""
    if log.view_indices:
        return [v for v in log.view_indices if 0 <= v < num_cameras]
    n = min(num_cameras, max(1, log.max_num_views))
    return sorted({int(round(x)) for x in np.linspace(0, num_cameras - 1, n)})


@torch.no_grad()
def evaluate(problem: TrackingProblem, collect_images: bool = False) -> Evaluation:
    """Landmark + photometric energy and quality metrics of every frame (no perturbation), in batches of
    ``exp.batch_size`` frames. Overlays (``collect_images``) are drawn on host threads while the device
    evaluates the next batches."""
    if not collect_images:
        return _evaluate(problem, None)
    # drawing is CPU work (resizes, mesh edges; cv2 releases the GIL): done inline it would leave the GPU idle
    with ThreadPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 2) - 1))) as pool:
        return _evaluate(problem, pool)


def _evaluate(problem: TrackingProblem, pool: ThreadPoolExecutor | None) -> Evaluation:
    p = problem
    per_frame = []
    pending: list[list[tuple[int, int, Future[np.ndarray]]]] = []
    bs = max(1, p.cfg.exp.batch_size)
    for start in range(0, p.T, bs):
        frames = list(range(start, min(p.T, start + bs)))
        idx = torch.as_tensor(frames, device=p.device)
        res = p.energy(idx, None, train=False)
        B, C = len(frames), p.C
        size = torch.tensor([p.W, p.H], device=p.device, dtype=torch.float32)
        lm = res.landmarks
        if p.landmarks68 is not None:  # MediaPipe drives the fit; NME is always measured on the iBUG-68 points
            ibug_px = res.cameras.project(res.head.landmarks[:, :68].repeat_interleave(C, 0))
            ibug_t = p.landmarks68[idx].flatten(0, 1)
            conf68 = landmark_confidence(ibug_t, p.cfg.model.landmark_confidence)
        else:
            ibug_px, ibug_t, conf68 = lm.pred_px[:, :68], lm.target[:, :68], lm.conf[:, :68]
        nme = landmark_nme(ibug_px, ibug_t[..., :2] * size, conf68)
        rec = {"nme": nme.view(B, C)}
        rend = res.render
        if rend is not None:
            target = res.target
            tri = rend.tri_id
            face_mask = tri >= 0
            if p.face_region_faces is not None:
                face_mask = face_mask & p.face_region_faces[tri.clamp(min=0)]
            sse, cnt = masked_sse(rend.rgb, target, face_mask)
            rec["psnr_face"] = psnr_from_sse(sse, cnt).view(B, C)
            if p.alphas is not None:
                matte = frames_to_float(p.alphas, idx)
                bg = p.background_value()
                comp = torch.where((rend.tri_id >= 0)[..., None], rend.rgb, bg)
                sse_m, cnt_m = masked_sse(comp, target, matte > 0.5)
                rec["psnr_matte"] = psnr_from_sse(sse_m, cnt_m).view(B, C)
                rec["iou"] = silhouette_iou(rend.alpha, matte).view(B, C)
                det_px = torch.cat([ibug_t[..., :2] * size, conf68[..., None]], -1)
                figs = whole_head.frame_figures(rend.rgb, rend.alpha, face_mask, target, matte, ibug_px, det_px, bg)
                rec.update({k: figs[k].view(B, C) for k in whole_head.FRAME_FIGURES})
            if pool is not None:
                pending.append(overlay_batch(problem, res, frames, pool))
        rec["landmark"] = res.terms["landmark"].expand(B)
        if "photo" in res.terms:
            rec["photo"] = res.terms["photo"].expand(B)
        per_frame.append({k: v.float().cpu().numpy() for k, v in rec.items()})
    merged = {k: np.concatenate([f[k] for f in per_frame]) for k in per_frame[0]}
    images = [[(t, c, job.result()) for t, c, job in batch] for batch in pending]
    return Evaluation(merged, images)


def overlay_batch(
    problem: TrackingProblem, res: Energy, frames: list[int], pool: ThreadPoolExecutor
) -> list[tuple[int, int, Future[np.ndarray]]]:
    """(frame, camera, overlay image uint8 being drawn on ``pool``) for the logged views of an evaluated batch
    of ``frames``. The device tensors are copied to the host here, before the next batch overwrites them."""
    from vhap.track.outputs import draw_overlay

    p = problem
    C = p.C
    lm = res.landmarks
    rgb = res.render.rgb
    alpha = (res.render.tri_id >= 0).float()
    out = []
    for bi, t in enumerate(frames):
        for c in log_views(p.cfg.log, C):
            k = bi * C + c
            job = pool.submit(
                draw_overlay,
                res.target[k].cpu().numpy(),
                rgb[k].cpu().numpy(),
                alpha[k].cpu().numpy(),
                lm.pred_px[k].cpu().numpy(),
                (lm.target[k, :, :2].cpu().numpy() * np.array([p.W, p.H])),
                lm.conf[k].cpu().numpy(),
                tri_id=res.render.tri_id[k].cpu().numpy(),  # mesh edges in the overlay's render panel
            )
            out.append((t, c, job))
    return out
