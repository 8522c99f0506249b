"""Failed-landmark detection (vhap.preprocess.landmarks.quality) and the robust landmark penalty, on hand-made
frames with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.preprocess.landmarks import quality as q
from vhap.track.losses import landmark_loss, robust_penalty


def _face(lower_lip_y: float):
    """A 256² skin-coloured frame with a dark mouth interior on rows 100-160 (x 100-156) and iBUG-68 points:
    eyes 100 px apart, nose box rows 40-80, upper inner lip (62) at row 100, inner lower lip (66) at
    ``lower_lip_y``, outer lower lip 8 px below it, chin at row 200."""
    img = np.full((256, 256, 3), (200, 160, 140), np.uint8)
    img[100:160, 100:156] = (30, 20, 20)
    lmk = np.zeros((68, 2), np.float32)
    lmk[:, 0], lmk[:, 1] = 128, 60
    lmk[36], lmk[45] = (78, 30), (178, 30)
    lmk[27:36, 1] = np.linspace(40, 80, 9)
    lmk[27:36, 0] = np.linspace(118, 138, 9)
    lmk[48], lmk[54] = (98, 110), (158, 110)
    lmk[51], lmk[62] = (128, 95), (128, 100)
    lmk[66], lmk[57] = (128, lower_lip_y), (128, lower_lip_y + 8)
    lmk[8] = (128, 200)
    return img, lmk


def test_lower_lip_inside_the_open_mouth_is_flagged():
    img, lmk = _face(lower_lip_y=110)  # the detector stopped 50 px (0.5 eye distances) above the real lip
    assert q.mouth_interior_rows(img, lmk) == (100.0, 160.0)
    conf, flags, excess = q.frame_confidence(img, lmk)
    assert excess == pytest.approx(0.5 - q.SLACK_IOD)
    w = 1 / (1 + (excess / q.SCALE_IOD) ** 2)
    assert conf[66] == pytest.approx(w) and conf[8] == pytest.approx(w) and conf[36] == 1.0 and conf[62] == 1.0
    assert flags[57] == q.FLAG_IN_OPEN_MOUTH and flags[30] == 0
    # the lower lip where the image has it: nothing to flag; a closed mouth neither
    conf, flags, excess = q.frame_confidence(*_face(lower_lip_y=158))
    assert excess == 0.0 and conf.min() == 1.0 and not flags.any()
    img, lmk = _face(lower_lip_y=102)
    img[100:160, 100:156] = (200, 160, 140)
    assert q.mouth_interior_rows(img, lmk) is None and q.frame_confidence(img, lmk)[0].min() == 1.0


def test_matte_and_second_detector_checks():
    img, lmk = _face(lower_lip_y=158)
    matte = np.ones((256, 256), np.float32)
    matte[:, :60] = 0
    lmk[0] = (20, 100)  # a jaw point far off the matte
    lmk[1] = (58, 100)  # 2 px off: within the tolerance
    conf, flags, _ = q.frame_confidence(img, lmk, matte)
    assert conf[0] == pytest.approx(q.OUTSIDE_MATTE) and flags[0] == q.FLAG_OUTSIDE_MATTE and conf[1] == 1.0
    other = lmk.copy()
    other[8, 1] += 10  # 0.1 eye distances: Cauchy weight 1/2
    conf, flags, _ = q.frame_confidence(img, lmk, matte, other)
    assert conf[8] == pytest.approx(0.5) and conf[30] == 1.0 and flags[8] == 0


def test_robust_penalties_known_values():
    c = 0.05
    r = torch.tensor([0.0, c, 10 * c], requires_grad=True)
    gm = robust_penalty(r, "geman_mcclure", c)
    assert gm.tolist() == pytest.approx([0.0, c, 2 * c * 100 / 101])
    (g,) = torch.autograd.grad(gm[1], r)
    assert g[1].item() == pytest.approx(1.0)  # slope 1 at r = c, like L1
    ca = robust_penalty(r, "cauchy", c)
    assert ca.tolist() == pytest.approx([0.0, c * np.log(2), c * np.log(101)])
    # one point 0.5 NDC off: L1 pulls with 0.5 / K, Geman-McClure with at most 2c / K
    target = torch.full((1, 2, 3), 0.5)
    target[0, 1, 0] = 0.5 + 0.25  # x 0.25 of the width off = 0.5 NDC
    conf, pw = torch.ones(1, 2), torch.ones(2)
    px = torch.full((1, 2, 2), 50.0)  # image centre of a 100² image
    assert landmark_loss(px, target, conf, pw, (100, 100)).item() == pytest.approx(0.25)
    robust = landmark_loss(px, target, conf, pw, (100, 100), "geman_mcclure", c).item()
    assert robust == pytest.approx(c * 0.25 / (0.25 + c * c))
