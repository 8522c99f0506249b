"""Mesh operators, mesh files, albedo, region files, and `vhap assets check`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_model_toy import toy_assets

from vhap.errors import VhapError
from vhap.model.albedo import Albedo
from vhap.model.mesh_io import read_obj, write_obj, write_ply
from vhap.model.mesh_ops import uniform_laplacian, vertex_normals
from vhap.model.regions import RegionSet, load_region_file, save_region_file


def _tetra():
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # CCW from outside
    return verts, faces


def test_vertex_normals_area_weighted_and_outward():
    verts, faces = _tetra()
    n = vertex_normals(verts, faces)
    assert torch.allclose(n.norm(dim=-1), torch.ones(4))
    # vertex 0 sees three unit-area-ish faces with normals −x, −y, −z (each area 1/2) → −(1,1,1)/√3
    assert torch.allclose(n[0], -torch.ones(3) / 3**0.5, atol=1e-6)
    # vertex 1: faces with normals −z (area 1/2), −y (1/2), (1,1,1)/√3·(√3/2) → (1, 0, 0)·… normalised
    expected = torch.tensor([0.5, 0.0, 0.0])
    assert torch.allclose(n[1], expected / expected.norm(), atol=1e-6)
    batched = vertex_normals(verts[None].expand(3, -1, -1), faces)
    assert batched.shape == (3, 4, 3) and torch.allclose(batched[2], n)
    isolated = vertex_normals(torch.cat([verts, torch.ones(1, 3)]), faces)
    assert torch.equal(isolated[4], torch.tensor([0.0, 0.0, 1.0]))


def test_uniform_laplacian_definition():
    verts, faces = _tetra()
    lap = uniform_laplacian(faces, 5)
    assert lap.is_sparse
    dense = lap.to_dense()
    assert torch.allclose(dense.diagonal(), -torch.ones(5))
    assert torch.allclose(dense[0, 1:4], torch.full((3,), 1 / 3)) and dense[4].abs().sum() == 1
    x = torch.cat([verts, torch.zeros(1, 3)])
    assert torch.allclose(lap @ x, (dense[:, :4].clamp(min=0) @ verts) - x)  # mean of neighbours − x


def test_obj_round_trip_with_texture_and_ply(tmp_path):
    a = toy_assets()
    write_obj(tmp_path / "m.obj", a.v_template, a.faces, a.uvs, a.uv_faces, texture=np.full((8, 8, 3), 0.25))
    mesh = read_obj(tmp_path / "m.obj")
    assert np.allclose(mesh.verts, a.v_template, atol=1e-6) and np.array_equal(mesh.faces, a.faces)
    assert np.allclose(mesh.uvs, a.uvs, atol=1e-6) and np.array_equal(mesh.uv_faces, a.uv_faces)
    assert "map_Kd m.png" in (tmp_path / "m.mtl").read_text()
    from PIL import Image

    assert np.asarray(Image.open(tmp_path / "m.png"))[0, 0].tolist() == [64, 64, 64]
    write_ply(tmp_path / "m.ply", torch.as_tensor(a.v_template), a.faces, colors=np.zeros((12, 3)))
    raw = (tmp_path / "m.ply").read_bytes()
    header, body = raw.split(b"end_header\n")
    assert b"element vertex 12" in header and b"element face 6" in header
    assert len(body) == 12 * (12 + 3) + 6 * 13
    verts_back = np.frombuffer(body[: 12 * 15], dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])["xyz"]
    assert np.allclose(verts_back, a.v_template)
    (tmp_path / "bad.obj").write_text("v 0 0 0\n")
    with pytest.raises(VhapError):
        read_obj(tmp_path / "bad.obj")


def test_albedo_residual_and_resize():
    base = np.zeros((4, 4, 3), np.float32)
    base[:2] = 1.0  # top half white
    alb = Albedo(base, resolution=8)
    tex = alb()
    assert tex.shape == (1, 3, 8, 8) and tex[0, :, :4].eq(1).all() and tex[0, :, 4:].eq(0).all()
    with torch.no_grad():
        alb.tex_extra += 0.5
    assert torch.allclose(alb()[0, :, 7, 7], torch.full((3,), 0.5))
    assert [n for n, _ in alb.named_parameters()] == ["tex_extra"]
    assert torch.allclose(Albedo(base, resolution=4, residual=False)(), torch.zeros(1, 3, 4, 4))


def test_region_set_queries_and_user_file(tmp_path):
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    uvs = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]], np.float32)
    regions = RegionSet(
        {"scalp": [0, 1, 2, 3], "face": [3], "neck": [], "left_eyeball": [4], "right_eyeball": [3]},
        faces,
        faces,
        uvs,
        num_verts=5,
    )
    assert regions.vertex_ids("hair").tolist() == [0, 1, 2]  # scalp − face − neck
    assert regions.vertex_ids(["hair", "eyeballs"]).tolist() == [0, 1, 2, 3, 4]
    assert regions.face_mask("hair").tolist() == [True, False, False]
    assert regions.uv_vertex_ids("face").tolist() == [3]
    assert regions.vertex_ids("skin").tolist() == []  # everything is eyeball or hair
    with pytest.raises(VhapError, match="hair"):  # the message lists valid names
        regions.vertex_ids("no_such_region")
    with pytest.warns(UserWarning, match="teeth"):
        table = regions.face_cluster_table(["hair", "teeth", "scalp"])
    assert table.tolist() == [4, 4, 1]  # teeth skipped but keeps its id slot; scalp overwrites hair
    mask = regions.uv_mask("hair", 16)
    assert mask[15, 0] and not mask[0, 15]  # uv (0,0) is the bottom-left pixel, row 0 = top
    assert 0.4 < mask.mean() < 0.6
    save_region_file(tmp_path / "r.json", {"mine": [4, 2]})
    loaded = load_region_file(tmp_path / "r.json")
    regions.add("mine", loaded["mine"])
    assert regions.vertex_ids("mine").tolist() == [2, 4]
    (tmp_path / "bad.json").write_text('{"x": [1.5]}')
    with pytest.raises(VhapError):
        load_region_file(tmp_path / "bad.json")


def test_assets_check_cli(tmp_path, monkeypatch, flame_topology_dir):
    from vhap.cli import main

    monkeypatch.setenv("VHAP_FLAME_DIR", str(tmp_path))
    monkeypatch.setattr("vhap.model.io.REPO_ROOT", tmp_path / "nowhere")
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path / "home")
    assert main(["assets", "check", "--model", "flame2023"]) == 0
    assert main(["assets", "check", "--model", "flame2023", "--strict"]) == 1
    for src in (
        flame_topology_dir / "standin" / "flame2023.pkl",
        flame_topology_dir / "standin" / "FLAME_masks.pkl",
        flame_topology_dir / "head_template_mesh.obj",
        flame_topology_dir / "landmark_embedding_with_eyes.npy",
    ):
        (tmp_path / src.name).symlink_to(src)
    assert main(["assets", "check", "--model", "flame2023", "--strict"]) == 0
