"""Low-frequency static offsets (model.offset_lowpass_for) and the mirror-symmetry prior on static offsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.model import HeadModel, load_head_assets
from vhap.track.config import LossWeights
from vhap.track.params import OffsetField, TrackParams
from vhap.track.regularizers import Regularizers, mirror_pairs, neighbour_table, uniform_laplacian_apply


@pytest.fixture(scope="module")
def open_head():
    model = HeadModel(load_head_assets("open"), n_shape=10, n_expr=10, add_teeth=True)
    faces = model.faces.numpy()
    nbr, wgt = neighbour_table(faces, model.num_verts)
    hair = model.regions.vertex_mask(["hair", "ears", "neck"])
    return model, nbr, wgt, hair


def test_field_is_low_frequency_and_faded_in(open_head):
    model, nbr, wgt, hair = open_head
    verts, faces = model.v_template.numpy(), model.faces.numpy()
    field = OffsetField(verts, faces, hair, iters=40)
    V, K = model.num_verts, field.num_controls
    assert 50 < K < 600  # controls ~2 cm apart over hair, ears and neck
    zero = torch.zeros(1, V, 3)
    # a constant field is reproduced exactly deep inside the regions and is zero far inside the face
    out = field(zero, torch.full((1, K, 3), 0.01))
    fade = field.fade.reshape(-1).numpy()
    assert np.allclose(out[0, fade > 0.999].numpy(), 0.01, atol=1e-5)
    face = model.regions.vertex_mask("face")
    assert (fade[face] < 0.5).mean() > 0.95
    # fully in on every vertex of the regions: no per-vertex offsets left on their border rows (they folded the
    # scalp beside the ear by 85-94° on carphone)
    assert (fade[: len(hair)][hair] == 1.0).all()
    # one coefficient of 10 mm comes out as a broad bump, 100x smoother than a one-vertex spike of the same height
    one = torch.zeros(1, K, 3)
    one[0, K // 2, 1] = 0.01
    bump = field(zero, one)
    spike = torch.zeros(1, V, 3)
    spike[0, int(bump[0, :, 1].argmax()), 1] = float(bump[0, :, 1].max())
    nbr_t, wgt_t = torch.as_tensor(nbr), torch.as_tensor(wgt)
    lap = lambda x: uniform_laplacian_apply(x, nbr_t, wgt_t).norm(dim=-1).max()  # noqa: E731
    assert bump[0, :, 1].max() > 1e-3 and int((bump[0, :, 1] > 0.5 * bump[0, :, 1].max()).sum()) >= 10
    assert lap(bump) < 0.1 * lap(spike)
    # per-vertex offsets pass unchanged where the field is faded out and vanish where it is fully in
    vert = torch.randn(1, V, 3) * 1e-3
    out = field(vert, torch.zeros(1, K, 3))
    assert torch.allclose(out[0, fade == 0], vert[0, fade == 0]) and out[0, fade > 0.999].abs().max() < 1e-5


def test_params_with_field_optimise_and_save_the_total(open_head):
    model, nbr, wgt, hair = open_head
    p = TrackParams(2, model.num_verts, n_shape=10, n_expr=10, tex_resolution=4)
    assert p.static_offset is p.static_offset_vertex  # without a field: VHAP's per-vertex parameter
    p.enable_offset_field(OffsetField(model.v_template.numpy(), model.faces.numpy(), hair, iters=20))
    names = [n for n, _ in p.tensors_of(["static_offset"])]
    assert names == ["static_offset_vertex", "static_offset_field"]
    with torch.no_grad():
        p.static_offset_field.fill_(0.005)
    saved = p.to_npz_dict(["a", "b"], (8, 8), "open")["static_offset"]
    assert saved.shape == (1, model.num_verts, 3) and np.isclose(saved[0, hair, 0].max(), 0.005, atol=1e-5)
    assert np.allclose(saved, p.static_offset.detach().numpy())


def test_symmetry_prior(open_head):
    model, nbr, wgt, hair = open_head
    w = LossWeights(reg_offset_symmetry=1e3, reg_offset_lap=0.0, reg_offset=0.0, reg_offset_rigid=0.0)
    verts = model.v_template.numpy()
    ids, mids = mirror_pairs(verts, hair)
    assert len(ids) > 0.9 * hair.sum() and np.abs(verts[ids] * [-1, 1, 1] - verts[mids]).max() < 2e-3
    regs = Regularizers(w, model.faces.numpy(), model.num_verts, {}, None, mirror=(ids, mids))
    p = TrackParams(1, model.num_verts, n_shape=10, n_expr=10, tex_resolution=4)
    idx = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        p.static_offset_vertex[0] = torch.as_tensor(verts) * 0.1  # radial growth: mirror-symmetric
    sym = regs(p, idx, {"static_offset"}, tracking=False)["reg_offset_symmetry"]
    with torch.no_grad():
        p.static_offset_vertex[0, verts[:, 0] < 0] = 0.0  # one side only: a flap
    flap = regs(p, idx, {"static_offset"}, tracking=False)["reg_offset_symmetry"]
    assert float(sym.detach()) < 1e-9 and float(flap.detach()) > 1e-3
