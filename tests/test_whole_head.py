"""vhap.eval.whole_head: the collar rule and the per-frame / per-run figures on hand-made inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import torch

from vhap.eval import whole_head as wh


def _person(H=200, W=200):
    """A matte: head disc (centre (100, 70), r 40), neck 40 px wide from row 105 to 150, shoulders 180 px wide
    below row 150; iBUG-68 landmarks with the chin at row 110, brows at row 50, jaw 0/16 at x 65/135."""
    yy, xx = np.mgrid[:H, :W]
    m = ((xx - 100) ** 2 + (yy - 70) ** 2 <= 40**2).astype(np.float32)
    m[105:150, 80:120] = 1
    m[150:, 10:190] = 1
    lmk = np.zeros((68, 2), np.float32)
    lmk[:, 0], lmk[:, 1] = 100, 80
    lmk[0] = (65, 80)
    lmk[16] = (135, 80)
    lmk[8] = (100, 110)
    lmk[17:27, 1] = 50
    lmk[36], lmk[45] = (80, 60), (120, 60)  # eye distance 40 px
    return torch.from_numpy(m)[None], torch.from_numpy(lmk)[None]


def test_collar_row_is_where_the_shoulders_start():
    matte, lmk = _person()
    cut = wh.collar_rows(matte, lmk)
    # neck: narrowest row in [110, 110 + 0.6·60]; shoulders (180 px ≥ 1.5·70) start at row 150
    assert 110 <= int(cut.neck_row[0]) < 146
    assert int(cut.collar_row[0]) == 150 and bool(cut.by_shoulders[0])
    head = wh.head_region(matte, cut.collar_row)
    assert head[0, 149].any() and not head[0, 150:].any()


def test_collar_row_capped_by_neck_length_and_without_landmarks():
    matte, lmk = _person()
    matte[0, 150:] = 0
    matte[0, 150:, 80:120] = 1  # a neck that never widens (cropped frame)
    cut = wh.collar_rows(matte, lmk)
    assert int(cut.collar_row[0]) == math.ceil(110 + wh.MAX_NECK * 60) and not bool(cut.by_shoulders[0])
    cut = wh.collar_rows(matte, torch.full_like(lmk, float("nan")))
    assert int(cut.collar_row[0]) == 200  # no landmarks: the whole matte


def test_head_region_leaves_out_what_lies_beside_the_jaw_below_the_mouth():
    matte, lmk = _person()
    lmk[0, 48], lmk[0, 54] = torch.tensor([85.0, 95.0]), torch.tensor([115.0, 95.0])  # mouth corners: row 95
    matte[0, 100:140, 130:180] = 1  # a car seat / raised shoulder beside the jaw, joined to the neck
    matte[0, 60:90, 138:150] = 1  # hair beside the face above the mouth, as far out
    cut = wh.collar_rows(matte, lmk)
    plain = wh.head_region(matte, cut.collar_row)
    head = wh.head_region(matte, cut.collar_row, lmk)
    reach = wh.SIDE_REACH * 70  # 0.6 · max(jaw width 70, face height 60) = 42 px from the centre line x = 100
    assert plain[0, 100:140, 150:180].all() and not head[0, 100:140, 143:180].any()
    assert head[0, 100:140, 130:142].all() and head[0, 105:140, 80:120].all()  # within reach: kept; the neck
    assert head[0, 60:90, 138:150].all() and head[0, 35:100, 85:115].all()  # hair above the mouth, face, chin
    # the head rolled by 90° (x' = 200 − y, y' = x: the chin points to −x, mouth at x' = 105, centre line
    # y' = 100): the cut follows the face's own axis
    rolled = torch.stack([200 - lmk[..., 1], lmk[..., 0]], -1)
    out = wh.beside_jaw((200, 200), rolled)[0]
    assert out[10, 50] and out[190, 50]  # beyond the mouth, far from the centre line
    assert not out[10, 120] and not out[100, 50]  # above the mouth; on the centre line
    assert not wh.beside_jaw((200, 200), torch.full_like(lmk, float("nan"))).any()
    assert abs(reach - 42.0) < 1e-9


def test_cranium_part_is_the_head_region_above_the_brows():
    matte, lmk = _person()
    conf = torch.ones(1, 68, 1)
    norm = torch.cat([lmk / 200.0, conf], -1)  # normalised x/W, y/H as the tracker holds them
    head = wh.head_region_of_frames(matte, norm)
    cranium = wh.head_region_of_frames(matte, norm, "cranium")
    cut = wh.collar_rows(matte, lmk)
    assert torch.equal(head, wh.head_region(matte, cut.collar_row, lmk))
    assert torch.equal(cranium[0, :50], head[0, :50]) and not cranium[0, 50:].any()  # brows at row 50
    norm[0, 20, 2] = 0  # a brow point without confidence: no cranium part (nothing to place the line by)
    assert not wh.head_region_of_frames(matte, norm, "cranium").any()


def test_frame_figures_known_answers():
    matte, lmk = _person()
    H, W = matte.shape[1:]
    head = wh.head_region(matte, wh.collar_rows(matte, lmk).collar_row)[0]
    # render: exactly the upper half of the head region, plus a 10×10 block outside the matte
    alpha = torch.zeros(1, H, W)
    rows = torch.arange(H)[:, None].expand(H, W)
    alpha[0][head & (rows < 70)] = 1
    alpha[0, 0:10, 0:10] = 1
    n_half = int((head & (rows < 70)).sum())
    target = torch.full((1, H, W, 3), 0.5)
    render = target.clone()
    render[0, :, :, 0] += 0.1  # error 0.1 on one channel: MSE 0.01/3
    det = torch.cat([lmk, torch.ones(1, 68, 1)], -1)
    pred = lmk.clone()
    pred[0, 48:68, 1] += 4.0  # mouth off by 4 px = 0.1 of the eye distance; the rest exact
    f = wh.frame_figures(render, alpha, alpha > 0.5, target, matte, pred, det)
    assert abs(float(f["head_coverage"][0]) - n_half / int(head.sum())) < 1e-6
    assert abs(float(f["spill"][0]) - 100 / (n_half + 100)) < 1e-6
    psnr = 10 * math.log10(3 / 0.01)
    assert abs(float(f["head_psnr_db"][0]) - psnr) < 1e-3 and abs(float(f["face_psnr_db"][0]) - psnr) < 1e-3
    assert abs(float(f["mouth_nme"][0]) - 0.1) < 1e-6 and float(f["nme_without_mouth"][0]) == 0.0
    assert abs(float(f["nme"][0]) - 0.1 * 20 / 68) < 1e-6
    means = wh.run_means({k: v.numpy() for k, v in f.items()})
    assert set(means) == set(wh.FRAME_FIGURES)


def _grid(n=6, bump=0.0):
    """(n×n) vertex grid in the z=0 plane, 1 cm spacing, optionally with the centre vertex lifted by ``bump``."""
    ys, xs = np.mgrid[:n, :n]
    v = np.stack([xs.ravel() * 0.01, ys.ravel() * 0.01, np.zeros(n * n)], 1)
    c = (n // 2) * n + n // 2
    v[c, 2] = bump
    f = []
    for y in range(n - 1):
        for x in range(n - 1):
            a = y * n + x
            f += [[a, a + 1, a + n], [a + 1, a + n + 1, a + n]]
    return torch.tensor(v), torch.tensor(f), c


def test_smoothness_flat_and_bumped():
    v, f, c = _grid()
    interior = torch.zeros(v.shape[0], dtype=torch.bool)
    interior[[i for i in range(36) if 0 < i % 6 < 5 and 0 < i // 6 < 5]] = True
    flat = wh.mesh_smoothness(v, f, interior)
    assert flat.surface_laplacian_mm < 1e-9 and flat.max_dihedral_deg < 1e-6
    vb, _, _ = _grid(bump=0.01)  # 1 cm bump
    off = vb - v
    s = wh.mesh_smoothness(vb, f, interior, offsets=off)
    lap = wh.uniform_laplacian(vb, f)
    assert abs(float(lap[c, 2]) - 0.01) < 1e-12  # the bump's neighbours are all flat
    assert s.surface_laplacian_mm > 0 and abs(s.offset_laplacian_mm - s.surface_laplacian_mm) < 1e-9
    # the steepest fold: a 1 cm rise over a 1 cm edge next to a flat face = 45° between their normals
    assert 44.0 < s.max_dihedral_deg <= 90.0
