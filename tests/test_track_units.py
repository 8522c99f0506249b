"""Tracker building blocks with known answers: config/presets, losses, regularisers, parameters, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vhap.config import parse_config
from vhap.errors import VhapError
from vhap.track.config import LossWeights, TrackConfig, resolve_occluded, stage_plan
from vhap.track.losses import landmark_confidence, landmark_loss, landmark_weights, photometric_loss, silhouette_loss
from vhap.track.params import TrackParams
from vhap.track.regularizers import (
    Regularizers,
    axis_angle_to_matrix,
    joint_prior,
    neighbour_table,
    tv_loss,
    uniform_laplacian_apply,
)


def cfg_of(*args) -> TrackConfig:
    return parse_config(TrackConfig, list(args), preset_group="track")


# ---------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("preset", ["monocular", "nersemble", "few_views", "demo", "landmark_only"])
def test_presets_parse(preset):
    cfg = cfg_of("--preset", preset)
    plan = stage_plan(cfg)
    assert plan and all(st.params for st in plan.values())
    if preset == "landmark_only":
        assert "rgb_init_texture" not in plan and not any(st.photometric for st in plan.values())


def test_nersemble_overrides_and_few_views_tv():
    ner = cfg_of("--preset", "nersemble")
    assert ner.w.landmark == 3.0 and ner.w.reg_tex_tv == 1e5 and ner.exp.batch_size == 1
    assert "texture" not in ner.pipeline.rgb_sequential_tracking.params
    few = cfg_of("--preset", "few_views")
    assert 1e4 <= few.w.reg_tex_tv <= 3e4 and few.w.landmark == 3.0  # inherits nersemble through _base_


def test_occluded_user_setting_wins_over_subject_table():
    table = cfg_of("--preset", "nersemble", "--data.subject", "251")
    assert resolve_occluded(table) == ("neck_lower", "boundary")
    user = cfg_of("--preset", "nersemble", "--data.subject", "251", "--model.occluded", "hair")
    assert resolve_occluded(user) == ("hair",)
    empty = cfg_of("--preset", "nersemble", "--data.subject", "251", "--model.occluded")
    assert resolve_occluded(empty) == ()
    plan = stage_plan(user)
    for st in plan.values():
        if st.photometric:  # appended to both region lists of every photometric stage
            assert "hair" in st.align_texture_except and "hair" in st.align_boundary_except


def test_hair_occluded_without_offsets_and_begin_stage():
    cfg = cfg_of("--model.no-use-static-offset", "--pipeline.begin-stage", "rgb_init_all")
    assert "hair" in resolve_occluded(cfg)
    plan = stage_plan(cfg)
    assert "rgb_init_offset" not in plan
    assert plan["lmk_init_rigid"].num_steps == 0 and plan["rgb_init_texture"].num_steps == 0
    assert plan["rgb_init_all"].num_steps == 500
    assert all("static_offset" not in st.params for st in plan.values())
    with pytest.raises(VhapError, match="begin_stage"):
        stage_plan(cfg_of("--pipeline.begin-stage", "nope"))


# ---------------------------------------------------------------------------------------------- losses
def test_landmark_loss_known_answer():
    H, W = 100, 200
    target = torch.full((2, 68, 3), 0.5)
    target[..., 2] = 1
    pred = torch.stack([target[..., 0] * W + 4.0, target[..., 1] * H], -1)  # 4 px right = 0.04 NDC units
    conf = landmark_confidence(target)
    pw = landmark_weights(68, jawline=True, nose_weight=10.0)
    expected = 0.04 * (59 + 9 * 10) / 68
    assert landmark_loss(pred, target, conf, pw, (H, W)).item() == pytest.approx(expected, rel=1e-5)
    pw_nojaw = landmark_weights(68, jawline=False, nose_weight=10.0)
    assert landmark_loss(pred, target, conf, pw_nojaw, (H, W)).item() == pytest.approx(0.04, rel=1e-5)
    # a failed detection (-1 coordinates) of sample 1 zeroes its 68 weights (VHAP's binary confidence)
    target[1, 5, :2] = -1
    conf = landmark_confidence(target)
    assert conf[0].sum() == 68 and conf[1].sum() == 0
    assert landmark_loss(pred, target, conf, pw_nojaw, (H, W)).item() == pytest.approx(0.02, rel=1e-5)


def test_photometric_loss_normalises_by_covered_and_guards_empty_renders():
    target = torch.zeros(2, 4, 4, 3)
    render = torch.full((2, 4, 4, 3), 0.5, requires_grad=True)
    covered = torch.zeros(2, 4, 4, dtype=torch.bool)
    covered[0, :2] = True  # sample 0 covers 8 pixels, sample 1 nothing (off-screen head)
    loss, valid = photometric_loss(render, target, covered)
    # only sample 0 counts: 16 px · 3 ch · 0.5 / (3 · 8)
    assert loss.item() == pytest.approx(16 * 3 * 0.5 / (3 * 8))
    assert valid.tolist() == [True, False]
    render_nan = render.detach().clone()
    render_nan[0, 3, 3] = float("nan")
    none = torch.zeros_like(covered)
    loss0, valid0 = photometric_loss(render_nan.requires_grad_(True), target, none)
    loss0.backward()
    assert loss0.item() == 0.0 and not valid0.any() and torch.isfinite(render_nan.grad).all()


def test_silhouette_loss_penalises_coverage_outside_the_matte_only():
    alpha = torch.zeros(1, 4, 4)
    alpha[0, :, :2] = 1
    matte = torch.zeros(1, 4, 4)
    matte[0, :, :3] = 1  # the matte is wider than the render: no penalty
    covered = alpha > 0
    assert silhouette_loss(alpha, matte, covered).item() == 0.0
    matte[0, :, 1:] = 1
    matte[0, :, 0] = 0  # column 0 rendered but background in the matte: 4 of 8 covered pixels
    assert silhouette_loss(alpha, matte, covered).item() == pytest.approx(0.5)


def test_excess_silhouette_form_does_not_pull_a_render_that_matches_a_soft_matte_edge():
    # a soft edge column: the render covers half of each edge pixel, exactly as the matte says
    alpha = torch.tensor([[[1.0, 0.5, 0.0]]]).requires_grad_(True)
    matte = torch.tensor([[[1.0, 0.5, 0.0]]])
    covered = alpha.detach() > 0
    coverage = silhouette_loss(alpha, matte, covered)
    coverage.backward()
    # coverage form: 0.5 · (1 − 0.5) over 2 covered pixels, and a gradient that shrinks the edge pixel
    assert coverage.item() == pytest.approx(0.125) and alpha.grad[0, 0, 1].item() == pytest.approx(0.25)
    alpha.grad = None
    excess = silhouette_loss(alpha, matte, covered, excess=True)
    excess.backward()
    assert excess.item() == 0.0 and alpha.grad.abs().sum().item() == 0.0
    # beyond the matte both forms agree in value and gradient (matte 0 there)
    over = torch.tensor([[[1.0, 0.5, 0.25]]]).requires_grad_(True)
    ex = silhouette_loss(over, matte, over.detach() > 0, excess=True)
    ex.backward()
    assert ex.item() == pytest.approx(0.25 / 3) and over.grad[0, 0].tolist() == pytest.approx([0, 0, 1 / 3])


# ---------------------------------------------------------------------------------------------- regularisers
def _grid_mesh(n=5):
    ids = np.arange(n * n).reshape(n, n)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = ids[i, j], ids[i, j + 1], ids[i + 1, j], ids[i + 1, j + 1]
            faces += [[a, b, d], [a, d, c]]
    return np.array(faces), n * n


def test_sparse_laplacian_matches_dense_definition():
    faces, V = _grid_mesh()
    nbr, wgt = neighbour_table(faces, V)
    dense = -np.eye(V)
    for f in faces:
        for a, b in ((0, 1), (1, 2), (2, 0)):
            dense[f[a], f[b]] = dense[f[b], f[a]] = 1
    np.fill_diagonal(dense, 0)
    deg = dense.sum(1, keepdims=True)
    dense = dense / deg - np.eye(V)
    x = torch.randn(2, V, 3)
    got = uniform_laplacian_apply(x, torch.as_tensor(nbr), torch.as_tensor(wgt))
    want = torch.einsum("ij,bjc->bic", torch.as_tensor(dense, dtype=torch.float32), x)
    assert torch.allclose(got, want, atol=1e-5)
    const = torch.ones(1, V, 3) * 0.3
    assert uniform_laplacian_apply(const, torch.as_tensor(nbr), torch.as_tensor(wgt)).abs().max() < 1e-6


def test_tv_and_joint_prior_known_answers():
    ramp = torch.arange(4.0).view(1, 1, 4).expand(1, 3, 4)  # rows equal, columns step 1
    assert tv_loss(ramp).item() == pytest.approx(1.0)
    z = torch.zeros(2, 3)
    assert joint_prior(z, z, torch.zeros(2, 6), 1, 1, 1).item() == pytest.approx(0.0, abs=1e-10)
    jaw = torch.tensor([[-0.2, 0.0, 0.0]])
    rot_dev = (torch.eye(3) - axis_angle_to_matrix(jaw)).square().mean()
    expected = rot_dev + 10 * 0.2  # closing the jaw past rest is penalised by relu(-theta_x)
    assert joint_prior(torch.zeros(1, 3), jaw, torch.zeros(1, 6), 0, 1, 0).item() == pytest.approx(expected.item())
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, np.pi / 2]]))[0]
    assert torch.allclose(R @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6)


def test_regularizers_follow_the_stage_groups_and_detach_prev():
    faces, V = _grid_mesh()
    w = LossWeights()
    masks = {"hair": np.arange(V) < 5}
    regs = Regularizers(w, faces, V, masks, tex_res_mask=np.ones((8, 8), bool))
    p = TrackParams(4, V, n_shape=3, n_expr=2, tex_resolution=8, use_dynamic_offset=True)
    with torch.no_grad():
        p.expr.normal_()
        p.translation.normal_()
        p.static_offset.normal_(std=1e-3)
    idx = torch.tensor([1, 2])
    terms = regs(p, idx, {"expr", "pose"}, tracking=True)
    assert set(terms) == {"reg_expr", "smooth_expr", "smooth_pose"}
    sum(terms.values()).backward()
    # frame 0 is only a detached "previous frame": no gradient; frame 3 is not in the batch
    assert p.expr.grad[0].abs().sum() == 0 and p.expr.grad[3].abs().sum() == 0 and p.expr.grad[1].abs().sum() > 0
    terms = regs(p, idx, {"static_offset", "dynamic_offset"}, tracking=True)
    assert {"reg_offset_lap", "reg_offset", "reg_offset_dynamic"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())
    assert "reg_shape" not in regs(p, idx, {"pose"}, tracking=False)


# ---------------------------------------------------------------------------------------------- parameters
def test_warm_start_reaches_the_last_frame():
    p = TrackParams(5, 10, n_shape=3, n_expr=2, tex_resolution=4)
    with torch.no_grad():
        p.expr[2] = torch.tensor([1.0, 2.0])
        p.rotation[2] = 0.3
    p.warm_start(2, [3, 4])  # VHAP's off-by-one skipped the last frame (index 4)
    assert torch.equal(p.expr[4], torch.tensor([1.0, 2.0])) and torch.allclose(p.rotation[4], torch.full((3,), 0.3))
    assert p.expr[0].abs().sum() == 0


def test_npz_has_vhap_keys_and_round_trips(tmp_path):
    p = TrackParams(3, 10, n_shape=300, n_expr=100, tex_resolution=8, use_dynamic_offset=True)
    with torch.no_grad():
        p.expr.normal_()
        p.tex_extra.normal_()
    d = p.to_npz_dict(["a", "b", "c"], (64, 48), "open")
    shapes = {k: v.shape for k, v in d.items()}
    assert shapes["rotation"] == (3, 3) and shapes["eyes_pose"] == (3, 6) and shapes["shape"] == (300,)
    assert (
        shapes["expr"] == (3, 100) and shapes["static_offset"] == (1, 10, 3) and shapes["dynamic_offset"] == (3, 10, 3)
    )
    assert shapes["lights"] == (9, 3) and shapes["focal_length"] == (1,) and shapes["tex_extra"] == (3, 8, 8)
    assert d["image_size"].tolist() == [64, 48] and str(d["head_model"]) == "open"
    np.savez(tmp_path / "p.npz", **d)
    q = TrackParams(3, 10, n_shape=300, n_expr=100, tex_resolution=8, use_dynamic_offset=True)
    q.load_npz(tmp_path / "p.npz")
    assert torch.equal(q.expr, p.expr) and torch.equal(q.tex_extra, p.tex_extra)
    with pytest.raises(VhapError):
        q.load_npz(tmp_path / "missing.npz")


def test_rig_focus_point_finds_where_cameras_look():
    from vhap.render import look_at_w2c
    from vhap.track.problem import rig_focus_point

    target = torch.tensor([0.1, -0.3, 0.6])
    eyes = torch.tensor([[1.0, 0, 1.5], [-1.0, 0.2, 1.4], [0.0, 1.0, 1.6]])
    w2c = look_at_w2c(eyes, target.expand(3, 3))
    assert torch.allclose(rig_focus_point(w2c), target, atol=1e-4)


# ---------------------------------------------------------------------------------------------- user regions
def test_user_region_file_feeds_occluded_clusters_and_offset_relaxation(tmp_path):
    """A region saved by `vhap regions` (model.regions_file) can be named in model.occluded, tex_clusters and the
    reg_*_for lists; the tracker's masks then cover exactly its faces / vertices."""
    from vhap.model.regions import save_region_file
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.track.tracker import Tracker

    seq = generate_sequence(
        SynthConfig(
            output=tmp_path / "data", rig="monocular", head_model="open", albedo_resolution=16, supersample=1,
            background="white", num_frames=1, image_size=(32, 32),
        ),
        progress=False,
    )  # fmt: skip
    from vhap.model import HeadModel, load_head_assets

    model = HeadModel(load_head_assets("open"), n_shape=300, n_expr=100, add_teeth=True)
    # a patch: the faces of the nose region, under a new name
    patch = model.regions.vertex_ids("nose")
    save_region_file(tmp_path / "my.json", {"my_patch": patch})
    cfg = cfg_of(
        "--preset", "demo", "--data.root", str(seq.root), "--data.sequence", seq.sequence,
        "--data.landmark-detector", seq.landmark_detector, "--exp.output-folder", str(tmp_path / "run"),
        "--model.regions-file", str(tmp_path / "my.json"), "--model.occluded", "my_patch",
        "--model.tex-clusters", "skin", "my_patch", "--w.reg-offset-lap-relax-for", "my_patch",
        "--w.reg-offset-lap-relax-coef", "0.25",
    )  # fmt: skip
    tr = Tracker(cfg, model=model)
    face_in = model.regions.face_mask("my_patch")
    assert face_in.sum() > 10
    tex_off, bnd_off = tr.problem.alignment_masks(tr.plan["rgb_init_offset"])
    assert bool(tex_off.cpu().numpy()[face_in].all())  # occluded -> texture alignment off on its faces
    assert bool(bnd_off.cpu().numpy()[patch].all())  # ... and boundary alignment off on its vertices
    cluster = tr.problem.face_cluster.cpu().numpy()
    assert (cluster[face_in] == 3).all() and (cluster[~face_in] != 3).all()  # 2 + index in tex_clusters
    lap_w = tr.problem.regs.lap_weight.cpu().numpy()
    assert np.allclose(lap_w[patch], 0.25) and np.allclose(np.delete(lap_w, patch), 1.0)

    # the same names without the file: the tracker knows nothing of them
    bare = Tracker(cfg_of(*[a for a in _strip_regions_file(cfg)]), model=HeadModel(load_head_assets("open")))
    assert "my_patch" not in bare.model.regions and np.allclose(bare.problem.regs.lap_weight.cpu().numpy(), 1.0)


def _strip_regions_file(cfg: TrackConfig) -> list[str]:
    return [
        "--preset", "demo", "--data.root", str(cfg.data.root), "--data.sequence", cfg.data.sequence,
        "--data.landmark-detector", cfg.data.landmark_detector, "--exp.output-folder", str(cfg.exp.output_folder),
        "--w.reg-offset-lap-relax-for", "my_patch",
    ]  # fmt: skip


def test_user_region_file_errors_name_the_file(tmp_path):
    from vhap.model.regions import RegionSet
    from vhap.track.config import add_user_regions

    faces, V = _grid_mesh()
    regions = RegionSet({"a": [0, 1]}, faces, num_verts=V)
    assert add_user_regions(regions, None) == []
    good = tmp_path / "good.json"
    good.write_text('{"b": [2, 3, 4]}')
    assert add_user_regions(regions, good) == ["b"] and list(regions.vertex_ids("b")) == [2, 3, 4]
    bad = tmp_path / "other_model.json"
    bad.write_text('{"c": [1, 999]}')
    with pytest.raises(VhapError, match="other_model.json.*outside"):
        add_user_regions(regions, bad)
    with pytest.raises(VhapError, match="missing.json"):
        add_user_regions(regions, tmp_path / "missing.json")


def test_misspelled_region_name_is_reported():
    """A typo in model.occluded must not pass silently (unknown names are skipped with a warning)."""
    import warnings

    from vhap.model import HeadModel, load_head_assets
    from vhap.track.config import TrackConfig, stage_plan
    from vhap.track.problem import warn_unknown_regions

    model = HeadModel(load_head_assets("open"))
    cfg = TrackConfig()
    cfg.model.occluded = ("hiar",)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unknown_regions(cfg, stage_plan(cfg), model.regions)
    messages = [str(w.message) for w in caught]
    assert any("model.occluded: ['hiar']" in m and "'hair'" in m for m in messages), messages
    cfg.model.occluded = ("hair",)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unknown_regions(cfg, stage_plan(cfg), model.regions)
    assert not [w for w in caught if "model.occluded" in str(w.message)]


def test_image_loss_sums_reference_agrees_with_the_loss_functions():
    from vhap.render.kernels import image_loss_sums_reference
    from vhap.track.losses import photometric_from_sums, silhouette_from_sums

    g = torch.Generator().manual_seed(3)
    rgba = torch.rand(2, 6, 5, 4, generator=g)
    rgba[0, 1, 1, 0] = float("nan")
    target = torch.rand(2, 6, 5, 3, generator=g)
    covered = torch.rand(2, 6, 5, generator=g) > 0.5
    matte = torch.rand(2, 6, 5, generator=g)
    sums = image_loss_sums_reference(rgba, target, covered, matte)
    assert sums.shape == (2, 3) and torch.isfinite(sums).all()
    photo, valid = photometric_from_sums(sums[:, 0], sums[:, 1])
    ref_photo, ref_valid = photometric_loss(rgba[..., :3], target, covered)
    assert photo.item() == pytest.approx(ref_photo.item(), rel=1e-6) and torch.equal(valid, ref_valid)
    sil = silhouette_from_sums(sums[:, 2], sums[:, 1])
    assert sil.item() == pytest.approx(silhouette_loss(rgba[..., 3], matte, covered).item(), rel=1e-6)
    ex = silhouette_from_sums(image_loss_sums_reference(rgba, target, covered, matte, excess=True)[:, 2], sums[:, 1])
    assert ex.item() == pytest.approx(silhouette_loss(rgba[..., 3], matte, covered, excess=True).item(), rel=1e-6)
    assert 0 < ex.item() < sil.item()
    assert sums[:, 1].tolist() == covered.flatten(1).sum(1).float().tolist()
    assert image_loss_sums_reference(rgba, target, covered)[:, 2].abs().sum() == 0  # no matte, no silhouette


def test_batched_joint_prior_and_region_variance_match_their_per_item_forms():
    from vhap.track.regularizers import region_variance

    g = torch.Generator().manual_seed(5)
    neck, jaw = torch.randn(4, 3, generator=g) * 0.3, torch.randn(4, 3, generator=g) * 0.3
    eyes = torch.randn(4, 6, generator=g) * 0.2

    def per_joint(neck, jaw, eyes, wn, wj, we):  # the prior with one rotation call per joint
        eye = torch.eye(3)
        dev = lambda aa: (eye - axis_angle_to_matrix(aa)).square().mean()  # noqa: E731
        left, right = eyes[:, :3], eyes[:, 3:]
        sym = (left - right).square().mean()
        jaw_extra = 10 * torch.relu(-jaw[:, 0]).mean() + 3 * jaw[:, 1:].square().mean()
        return wn * dev(neck) + wj * (dev(jaw) + jaw_extra) + we * (dev(left) + sym) + we * (dev(right) + sym)

    got = joint_prior(neck, jaw, eyes, 100.0, 10.0, 1000.0)
    assert got.item() == pytest.approx(per_joint(neck, jaw, eyes, 100.0, 10.0, 1000.0).item(), rel=1e-6)

    x = torch.randn(3, 50, 3, generator=g)
    regions = [torch.tensor([1, 4, 9, 16]), torch.tensor([0, 2]), torch.arange(20, 50, 3)]
    ids = torch.cat(regions)
    segment = torch.cat([torch.full((len(r),), k) for k, r in enumerate(regions)])
    counts = torch.tensor([len(r) for r in regions])
    var = region_variance(x, ids, segment, counts)  # (B,K,C)
    for k, r in enumerate(regions):
        torch.testing.assert_close(var[:, k], x[:, r].var(dim=1), rtol=1e-5, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    region_variance(xg, ids, segment, counts).sum().backward()
    xr = x.clone().requires_grad_(True)
    sum(xr[:, r].var(dim=1).sum() for r in regions).backward()
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-5, atol=1e-6)
