"""The per-step maths of the head model and the cameras builds no tensor from host data (on CUDA that is a
host→device copy per call, and it makes CUDA-graph capture of a tracker step fail)."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from vhap.model.lbs import lbs
from vhap.render.camera import Cameras, c2w_opencv_to_opengl, w2c_opencv_to_opengl

HOST_DATA = {"tensor", "new_tensor", "from_numpy", "as_tensor", "item", "tolist", "cpu", "numpy"}


def _has_list(index) -> bool:
    if isinstance(index, list):
        return True
    return isinstance(index, tuple) and any(_has_list(i) for i in index)


class _HostDataCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name in ("as_tensor", "asarray") and args and isinstance(args[0], torch.Tensor):
            pass  # an existing tensor (same device): no data comes from the host
        elif name in HOST_DATA:
            self.calls.append(name)
        elif name in ("__getitem__", "__setitem__") and len(args) > 1 and _has_list(args[1]):
            self.calls.append(f"{name}[list]")  # advanced indexing with a python list: copied to the device
        return func(*args, **(kwargs or {}))


def _random_w2c(n: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3))
    q = q * torch.sign(torch.linalg.det(q))[:, None, None]
    w2c = torch.eye(4).repeat(n, 1, 1)
    w2c[:, :3, :3] = q
    w2c[:, :3, 3] = torch.randn(n, 3)
    return w2c


def test_lbs_and_camera_projection_use_no_host_data():
    torch.manual_seed(0)
    B, V, J = 2, 30, 5
    v = torch.randn(B, V, 3, requires_grad=True)
    pose = (0.2 * torch.randn(B, 3 * J)).requires_grad_(True)
    jreg = torch.softmax(torch.randn(J, V), -1)
    parents = [-1, 0, 1, 1, 1]
    posedirs = 0.01 * torch.randn(9 * (J - 1), 3 * V)
    weights = torch.softmax(torch.randn(V, J), -1)
    K = torch.tensor([[[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]]).repeat(B, 1, 1)
    cams = Cameras(K=K, w2c=_random_w2c(B), image_size=(480, 640))
    mode = _HostDataCalls()
    with mode:
        verts, _ = lbs(v, pose, jreg, parents, posedirs, weights)
        loss = cams.project_ndc(verts).square().mean() + cams.to_clip(verts).square().mean()
        loss.backward()
    assert mode.calls == []
    assert torch.isfinite(v.grad).all() and pose.grad.abs().sum() > 0


def test_axis_flips_equal_the_diag_product():
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    m = _random_w2c(3)
    assert torch.equal(w2c_opencv_to_opengl(m), flip @ m)
    assert torch.equal(c2w_opencv_to_opengl(m), m @ flip)


def test_project_ndc_known_answer():
    cams = Cameras(K=torch.tensor([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]]), w2c=torch.eye(4), image_size=(80, 100))
    # a point on the optical axis lands on the principal point (50, 40) → NDC (0, 0); x = +0.1 m at z = 1 → u = 60
    ndc = cams.project_ndc(torch.tensor([[[0.0, 0.0, 1.0], [0.1, 0.2, 1.0]]]))
    assert torch.allclose(ndc, torch.tensor([[[0.0, 0.0], [0.2, 0.5]]]), atol=1e-6)


def test_landmark_and_regulariser_steps_use_no_host_data(tmp_path):
    """A whole landmark step of the tracker (landmark-only head model, landmark loss, every regulariser incl. the
    offset terms, backward, Adam) after its warm-up: nothing is built from host data, so it can be recorded as a
    CUDA graph. (Photometric steps add the rasteriser, whose CUDA backends are tested on the GPU.)"""
    from vhap.config import parse_config
    from vhap.synth.generate import SynthConfig, generate_sequence
    from vhap.track.config import TrackConfig
    from vhap.track.tracker import Tracker

    seq = generate_sequence(
        SynthConfig(output=tmp_path, rig="monocular", head_model="open", num_frames=4, image_size=(32, 32)),
        progress=False,
    )
    args = [
        "--preset", "monocular", "--data.root", str(seq.root), "--data.sequence", seq.sequence,
        "--data.landmark-detector", seq.landmark_detector, "--model.head-model", "open",
        "--exp.output-folder", str(tmp_path / "run"), "--exp.device", "cpu", "--exp.batch-size", "4",
        "--model.use-dynamic-offset", "--log.no-progress",
    ]  # fmt: skip
    tracker = Tracker(parse_config(TrackConfig, args, preset_group="track"))
    stage = tracker.plan["lmk_prepass"]
    groups = ("pose", "joints", "expr", "shape", "static_offset", "dynamic_offset")
    stage.params = groups  # every regulariser on, the offset terms included
    assert not tracker.problem.calibrated  # the step builds the uncalibrated camera (Cameras.uncalibrated)
    opt = tracker.steps.optimizer(stage)
    idx = tracker.problem.sample_idx[0]
    for _ in range(2):  # warm-up: caches (landmark weights, the landmark subset) are filled here
        tracker.steps.step_terms(stage, opt, idx)
    mode = _HostDataCalls()
    with mode:
        terms = tracker.steps.step_terms(stage, opt, idx)
    assert mode.calls == []
    assert {"reg_offset_lap", "reg_offset_rigid", "reg_joint", "smooth_expr"} <= set(terms)
