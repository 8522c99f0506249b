"""FLAME topology end to end: the stand-in FLAME 2023 files of ../shared/flame-topology load as a directory and
run forward with teeth (VHAP_SPEC §2.3, §2.4, §2.6). Skipped when ../shared is absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.model import HeadModel, load_head_assets
from vhap.model.mesh_ops import uniform_laplacian
from vhap.model.teeth import teeth_faces_local

DEFAULT_CLUSTERS = ["skin", "hair", "boundary", "lips_tight", "teeth", "sclerae", "irises"]


@pytest.fixture(scope="module")
def assets(standin_dir):
    return load_head_assets(standin_dir)


@pytest.fixture(scope="module")
def model(assets):
    return HeadModel(assets, n_shape=300, n_expr=100, add_teeth=True)


def test_counts_and_teeth_layout(assets, model):
    assert (assets.num_verts, assets.num_faces, assets.uvs.shape[0]) == (5023, 9976, 5118)
    assert model.num_verts == 5143 and tuple(model.faces.shape) == (10144, 3) and tuple(model.uvs.shape) == (5238, 2)
    teeth_faces = model.faces[9976:].numpy()
    assert np.array_equal(teeth_faces - 5023, teeth_faces_local())
    assert np.array_equal(model.uv_faces[9976:].numpy() - 5118, teeth_faces_local())
    assert np.array_equal(model.faces[:9976].numpy(), assets.faces)
    # spot checks written out from the §2.3 rules: first upper face P(UR,UE) c=0, first lower face Q(LE,LR) c=0,
    # last upper face T(UEB,UE) c=13 (second triangle), and the mirrored diagonal of P at c=7
    assert teeth_faces[0].tolist() == [5023 + 0, 5023 + 31, 5023 + 30]
    assert teeth_faces[84].tolist() == [5023 + 45, 5023 + 46, 5023 + 15]
    assert teeth_faces[83].tolist() == [5023 + 75 + 13, 5023 + 30 + 14, 5023 + 75 + 14]
    assert teeth_faces[14].tolist() == [5023 + 7, 5023 + 8, 5023 + 37]
    uv = model.uvs[5118:].numpy()
    assert np.allclose(uv[:15, 0], np.linspace(0.62, 0.38, 15))
    levels = np.linspace(1 - 0.0083, 1 - 0.0425, 7)
    assert np.allclose(uv[::15, 1], levels[[3, 2, 0, 1, 3, 4, 6, 5]])


def test_teeth_bases_weights_and_regions(assets, model):
    upper_ring = assets.regions["lip_outside_ring_upper"]
    lower_ring = assets.regions["lip_outside_ring_lower"]
    basis = model.blend_basis.T.reshape(model.num_verts, 3, 400).numpy()
    expected = 0.5 * (assets.shapedirs[upper_ring] + assets.shapedirs[lower_ring])
    for row in range(8):
        assert np.allclose(basis[5023 + 15 * row : 5023 + 15 * (row + 1), :, :300], expected, atol=1e-7)
    assert np.count_nonzero(basis[5023:, :, 300:]) == 0
    assert torch.count_nonzero(model.J_regressor[:, 5023:]) == 0
    assert torch.count_nonzero(model.posedirs.reshape(36, -1, 3)[:, 5023:]) == 0
    w = model.lbs_weights[5023:].numpy()
    upper, lower = model.regions.vertex_ids("teeth_upper"), model.regions.vertex_ids("teeth_lower")
    assert len(upper) == len(lower) == 60 and len(model.regions.vertex_ids("teeth")) == 120
    assert np.all(w[upper - 5023, 1] == 1) and np.all(w[lower - 5023, 2] == 1) and np.all(w.sum(1) == 1)
    # upper: UR, UE, URB, UEB rows; halves: columns 0–7 left, 7–14 right (no missing 5096)
    assert set(upper - 5023) == set(range(0, 15)) | set(range(30, 45)) | set(range(60, 90))
    left = set(model.regions.vertex_ids("left_half")) - set(range(5023))
    right = set(model.regions.vertex_ids("right_half")) - set(range(5023))
    assert len(left) == 64 and len(right) == 64 and 5096 in right
    quirk = HeadModel(assets, add_teeth=True, reproduce_half_quirk=True)
    assert 5096 not in quirk.regions.vertex_ids("right_half")


def test_teeth_geometry_sits_behind_the_lips(assets, model):
    v = model.v_template.numpy()
    lips_z = np.minimum(v[assets.regions["lip_outside_ring_upper"], 2], v[assets.regions["lip_outside_ring_lower"], 2])
    teeth = v[5023:]
    assert np.all(teeth[:, 2].reshape(8, 15) < lips_z[None])  # every column behind its lip column
    assert np.all(teeth[0:15, 1] > teeth[30:45, 1])  # upper root above upper edge
    assert np.all(teeth[15:30, 1] < teeth[45:60, 1])  # lower root below lower edge
    assert np.all(teeth[0:15, 0][:-1] > teeth[0:15, 0][1:])  # column 0 on the subject's left (+x)


def test_forward_with_teeth_and_landmarks_on_the_face(model):
    g = torch.Generator().manual_seed(0)
    expr = 0.5 * torch.randn(2, 100, generator=g)
    out = model(shape=torch.zeros(300), expr=expr, jaw_pose=torch.tensor([[0.0, 0, 0], [0.25, 0, 0]]))
    assert out.verts.shape == (2, 5143, 3) and out.landmarks.shape == (2, 70, 3) and out.landmarks_mp is None
    lmk = out.landmarks[0]
    face = out.verts[0, model.regions.vertex_ids("face")]
    assert torch.all(lmk[:68].min(0).values >= face.min(0).values - 1e-3)
    assert torch.all(lmk[:68].max(0).values <= face.max(0).values + 1e-3)
    assert int(torch.argmax(lmk[:68, 2])) in (30, 31, 32, 33, 34)  # the nose tip region is the most forward
    assert lmk[36, 0] < 0 < lmk[45, 0]  # iBUG 36 = subject's right eye outer corner (−x), 45 = left
    assert lmk[48, 1] < lmk[33, 1] and lmk[54, 1] < lmk[33, 1]  # mouth corners below the nose
    # opening the jaw lowers the chin landmark and the lower teeth; the upper teeth stay
    lower = model.regions.vertex_ids("teeth_lower")
    upper = model.regions.vertex_ids("teeth_upper")
    closed = model(expr=expr[1:], jaw_pose=torch.zeros(1, 3))
    assert out.landmarks[1, 8, 1] < closed.landmarks[0, 8, 1] - 0.005
    assert (out.verts[1, lower, 1] < closed.verts[0, lower, 1]).all()
    assert torch.allclose(out.verts[1, upper], closed.verts[0, upper], atol=1e-6)


def test_regions_clusters_and_laplacian(model):
    regions = model.regions
    for name in regions.names:
        assert len(regions.vertex_ids(name)) > 0, name
    for name in ("hair", "skin", "sclerae", "irises", "eyelids", "lips_tight", "lip_inside", "neck_lower"):
        assert regions.face_mask(name).any(), name
    table = regions.face_cluster_table(DEFAULT_CLUSTERS)
    assert table.shape == (10144,) and set(np.unique(table)) <= set(range(1, 9))
    assert np.all(table[9976:] == 2 + DEFAULT_CLUSTERS.index("teeth"))
    assert (table == 2 + DEFAULT_CLUSTERS.index("skin")).sum() > 3000
    lap = uniform_laplacian(model.faces_no_teeth, model.num_verts).to_dense()
    assert torch.allclose(lap.sum(1), torch.cat([torch.zeros(5023), -torch.ones(120)]), atol=1e-5)
    assert torch.all(lap[5023:].diagonal(5023) == -1) and torch.count_nonzero(lap[5023:]) == 120


def test_uv_masks_match_vhap_footprints(model, flame_topology_dir):
    """Our UV rasterisation of FLAME_masks regions matches VHAP's shipped uv_masks.npz (same region sets), and
    our re-derived / derived regions overlap VHAP's hand-made ones (eyelids and the neck split do not: see
    vhap/model/flame_regions.py)."""
    size = 256
    with np.load(flame_topology_dir / "uv_masks.npz") as ref:
        names = ("face", "nose", "lips", "left_ear", "scalp", "left_eyeball")
        derived = ("hair", "skin", "sclerae", "irises", "lip_inside", "lips_tight", "left_half", "teeth_upper")
        for name in names + derived:
            theirs = ref[name][:: 2048 // size, :: 2048 // size] if name in ref.files else None
            if theirs is None:
                continue
            ours = model.regions.uv_mask(name, size)
            iou = (ours & theirs).sum() / max((ours | theirs).sum(), 1)
            assert iou > 0.6, (name, iou)
