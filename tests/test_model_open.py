"""The project's open head model through the model core (skipped until open_head.npz has been generated)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.model import HeadModel, load_head_assets
from vhap.model.io import OPEN_HEAD_NPZ

FLAME_MASK_NAMES = [
    "face", "neck", "scalp", "boundary", "right_eyeball", "left_eyeball", "right_ear", "left_ear", "forehead",
    "eye_region", "nose", "lips", "right_eye_region", "left_eye_region",
]  # fmt: skip
CUSTOM_NAMES = [
    "neck_left_point", "neck_right_point", "front_middle_bottom_point_boundary", "back_middle_bottom_point_boundary",
    "neck_top", "lip_inside_ring_upper", "lip_inside_ring_lower", "lip_outside_ring_upper", "lip_outside_ring_lower",
    "lip_inside_upper", "lip_inside_lower", "lip_inside", "neck_upper", "neck_lower", "bottomline", "left_iris",
    "right_iris", "left_eyelid", "right_eyelid", "lips_tight", "left_half", "right_half",
]  # fmt: skip
DERIVED_NAMES = [
    "hair", "ears", "eyeballs", "irises", "left_eye", "right_eye", "eyelids", "lip_inside_ring", "sclerae", "skin",
    "teeth_upper", "teeth_lower", "teeth",
]  # fmt: skip


@pytest.fixture(scope="module")
def open_model():
    if not OPEN_HEAD_NPZ.is_file():
        pytest.skip(f"{OPEN_HEAD_NPZ} has not been generated yet")
    assets = load_head_assets("open")
    return assets, HeadModel(assets, add_teeth=True)


def test_every_region_is_non_empty(open_model):
    _, model = open_model
    for name in FLAME_MASK_NAMES + CUSTOM_NAMES + DERIVED_NAMES:
        assert len(model.regions.vertex_ids(name)) > 0, name


def test_no_degenerate_faces(open_model):
    _, model = open_model
    faces = model.faces
    assert (
        (faces[:, 0] != faces[:, 1]).all() and (faces[:, 1] != faces[:, 2]).all() and (faces[:, 0] != faces[:, 2]).all()
    )
    corners = model.v_template[faces]
    area = 0.5 * torch.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1).norm(dim=-1)
    assert float(area.min()) > 1e-10


def test_landmarks_sit_on_the_right_features(open_model):
    assets, model = open_model
    assert model.num_verts == assets.num_verts + 120
    out = model()
    lmk = out.landmarks[0]
    assert lmk.shape == (70, 3)
    assert int(torch.argmax(lmk[:68, 2])) == 30  # iBUG 30: nose tip is the most forward point
    for a, b in ((36, 45), (39, 42), (48, 54), (31, 35)):  # mirror pairs
        assert abs(float(lmk[a, 0] + lmk[b, 0])) < 2e-3, (a, b)
        assert abs(float(lmk[a, 1] - lmk[b, 1])) < 2e-3, (a, b)
    assert lmk[36, 0] < 0 < lmk[45, 0]  # subject's right eye on −x
    assert lmk[48, 1] < lmk[33, 1] and lmk[54, 1] < lmk[33, 1]  # mouth corners below the nose
    if out.landmarks_mp is not None:
        assert out.landmarks_mp.shape[1] == len(model.mp_landmark_ids) and torch.isfinite(out.landmarks_mp).all()


def test_open_model_jaw_and_expression_move_the_mesh(open_model):
    _, model = open_model
    rest = model()
    opened = model(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]]))
    lower = model.regions.vertex_ids("teeth_lower")
    assert (opened.verts[0, lower, 1] < rest.verts[0, lower, 1]).all()
    expr = torch.zeros(1, 100)
    expr[0, 0] = 1.0
    moved = model(expr=expr)
    assert float((moved.verts - rest.verts).norm(dim=-1).max()) > 1e-4
    assert np.isfinite(moved.verts.numpy()).all()


def test_open_v1_stays_loadable_and_v2_is_the_whole_head():
    """`open-v1` reproduces old results; `open` (v2) reaches a mean head's cranium and a neck down to the collar."""
    v1, v2 = load_head_assets("open-v1"), load_head_assets("open")
    assert (v1.name, v2.name) == ("open-v1", "open")
    assert v1.num_verts == 6645 and v2.num_verts != v1.num_verts
    lo1, hi1 = v1.v_template.min(0), v1.v_template.max(0)
    lo2, hi2 = v2.v_template.min(0), v2.v_template.max(0)
    assert hi2[1] > hi1[1] + 0.008 and lo2[2] < lo1[2] - 0.008  # taller and deeper cranium
    assert lo2[1] < lo1[1] - 0.015  # the neck reaches the collar
    neck = v2.v_template[v2.regions["neck"]]
    low = neck[neck[:, 1] < -0.14]
    assert np.abs(low[:, 0]).max() > 1.6 * np.abs(neck[(neck[:, 1] > -0.1) & (neck[:, 1] < -0.08), 0]).max()  # flare
