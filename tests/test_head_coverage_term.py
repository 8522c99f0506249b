"""The head-coverage term (``w.silhouette_head``): on a synthetic frame whose matte is the model's own silhouette,
a head shrunk inside it leaves head-region pixels uncovered; the term counts them and its gradient moves the hair
outwards, back to the outline — with the open model and with real FLAME topology (the stand-in in ../shared,
skipped without it; issue 15 item 5)."""

from __future__ import annotations

import pytest
import torch

from vhap.config import parse_config
from vhap.track.config import TrackConfig


@pytest.fixture(scope="module", params=["open", "flame2023"])
def tracker(request, tmp_path_factory):
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.track.tracker import Tracker

    tmp = tmp_path_factory.mktemp("cover")
    head_model = "open" if request.param == "open" else str(request.getfixturevalue("standin_dir"))
    seq = generate_sequence(
        SynthConfig(
            output=tmp / "data", rig="monocular", head_model=head_model, albedo_resolution=16, supersample=1,
            background="white", num_frames=1, image_size=(96, 96),
        ),
        progress=False,
    )  # fmt: skip
    cfg = parse_config(
        TrackConfig,
        [
            "--preset", "demo", "--data.root", str(seq.root), "--data.sequence", seq.sequence,
            "--data.landmark-detector", seq.landmark_detector, "--exp.output-folder", str(tmp / "run"),
            "--model.head-model", head_model, "--w.silhouette-head", "10", "--w.silhouette-head-part", "head",
            "--pipeline.lmk-init-rigid.num-steps", "150",
            "--pipeline.lmk-init-all.num-steps", "100",
        ],
        preset_group="track",
    )  # fmt: skip
    tr = Tracker(cfg)
    tr.run_fixed_stage("lmk_init_rigid", 0)  # the head onto the frame (landmarks only: cheap)
    tr.run_fixed_stage("lmk_init_all", 0)
    return tr


def test_head_coverage_term_counts_uncovered_head_pixels_and_pulls_the_hair_out(tracker):
    prob = tracker.problem
    assert prob.head_masks is not None and prob.head_masks.shape == prob.alphas.shape
    head = prob.head_masks[0, 0]
    matte = prob.alphas[0, 0] > 127
    assert head.sum() > 0.5 * matte.sum() and not (head & ~matte).any()
    stage, idx = tracker.plan["rgb_init_offset"], prob.sample_idx[0]
    p = prob.params
    e = prob.energy(idx, stage, train=True)
    alpha = e.render.rgba[0, ..., 3].detach()
    want = 10 * float(((1 - alpha) * head).sum()) / float(e.render.covered.sum())
    assert abs(float(e.terms["silhouette_head"].detach()) - want) < 1e-4 * max(1.0, want)
    fitted = float(e.terms["silhouette_head"].detach())
    # shrink the hair 6 mm inwards (through the offset field): more of the head region is uncovered, and the
    # term pushes it back out
    model, field = prob.model, p.offset_field
    v = model.v_template.double()
    f = model.faces.long()
    fn = torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = torch.zeros_like(v)
    for j in range(3):
        vn.index_add_(0, f[:, j], fn)
    B = field.basis.double()
    n_ctrl = B.T @ vn[: B.shape[0]]
    n_ctrl = n_ctrl / n_ctrl.norm(dim=-1, keepdim=True)
    hair = torch.as_tensor(model.regions.vertex_mask("hair"))
    hair_ctrl = (B[: hair.shape[0]][hair].sum(0) > 0.5 * B.sum(0)).float()[:, None]
    with torch.no_grad():
        p.static_offset_field.copy_((-0.006 * n_ctrl * hair_ctrl).float()[None])
    e = prob.energy(idx, stage, train=True)
    assert float(e.terms["silhouette_head"].detach()) > fitted + 0.01
    (g,) = torch.autograd.grad(e.terms["silhouette_head"], p.static_offset_field)
    outward = -(g[0].double() * n_ctrl).sum(-1)
    assert outward.sum() > 0 and (outward > 0).sum() > 2 * (outward < 0).sum()
