"""STAR and 2D-FAN networks built here load checkpoints in their published formats (issue 20 item 2).

No published weights are available offline, so each test saves a randomly initialised network in the
checkpoint's format (same wrapper keys and prefixes), loads it through the adapter, checks the weights arrived
unchanged and runs it on a real face crop (a carphone frame)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from vhap.errors import VhapError
from vhap.preprocess.landmarks.fan_net import FANNet
from vhap.preprocess.landmarks.heatmap_adapters import CropHeatmapDetector, load_landmark_network
from vhap.preprocess.landmarks.star_net import (
    IBUG68_EDGES,
    WFLW98_EDGES,
    WFLW98_TO_IBUG68,
    STARNet,
    coordinate_channels,
    soft_argmax,
)


def _randomise_bn(net: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def frame(carphone_path):
    from tests.fixtures_nersemble import read_video_frames

    return read_video_frames(carphone_path, 1)[0]


def _crop(frame: np.ndarray) -> torch.Tensor:
    """A 256×256 crop around the carphone face (rows 20-120, cols 50-150) as STAR's BGR input in [-1,1]."""
    import cv2

    c = cv2.resize(np.ascontiguousarray(frame[20:120, 50:150]), (256, 256), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(c[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_star_parts_known_answers():
    grid = coordinate_channels(3, 5)
    assert grid.shape == (1, 3, 3, 5)
    assert grid[0, 0, :, 0].tolist() == [-1.0, 0.0, 1.0] and grid[0, 1, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert grid[0, 2].max() == pytest.approx(1.0) and grid[0, 2, 1, 2] == 0.0
    hm = torch.zeros(1, 2, 64, 64)
    hm[0, 0, 0, 63] = 1.0  # top-right pixel centre
    hm[0, 1, 10, 20] = hm[0, 1, 10, 22] = 1.0  # two peaks: their mean
    xy = soft_argmax(hm)[0]
    assert xy[0].tolist() == [1.0, -1.0]
    assert xy[1].tolist() == pytest.approx([21 / 63 * 2 - 1, 10 / 63 * 2 - 1])
    # WFLW → iBUG: outer eye corners, nose tip, chin, mouth corners
    m = WFLW98_TO_IBUG68
    assert (m[36], m[45], m[30], m[8], m[48], m[54]) == (60, 72, 54, 16, 76, 82)
    assert all(0 <= i < 98 for i in m) and m[16] == 32


def test_star_300w_checkpoint_round_trip(frame, tmp_path):
    torch.manual_seed(0)
    net = STARNet(68, IBUG68_EDGES).eval()
    _randomise_bn(net, 1)
    sd = net.state_dict()
    # key layout of the published 300W model (facts read off its state dict)
    shapes = {
        "pre.0.conv.weight": (64, 6, 7, 7),
        "pre.0.bn.running_var": (64,),
        "pre.1.skip_layer.conv.weight": (128, 64, 1, 1),
        "pre.4.conv3.conv.weight": (256, 128, 1, 1),
        "hgs.0.coordconv.conv.weight": (256, 259, 1, 1),
        "hgs.1.coordconv.conv.weight": (256, 261, 1, 1),
        "hgs.3.low2.low2.low2.low2.conv2.conv.weight": (128, 128, 3, 3),
        "features.2.1.bn.weight": (256,),
        "out_heatmaps.3.conv.weight": (68, 256, 1, 1),
        "out_edgemaps.0.conv.weight": (9, 256, 1, 1),
        "out_pointmaps.1.conv.bias": (68,),
        "merge_edgemaps.2.conv.weight": (256, 9, 1, 1),
        "merge_pointmaps.0.conv.weight": (256, 68, 1, 1),
        "e2h_transform.weight": (68, 9, 1, 1),
        "e2h_transform.bias": (68,),
    }
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape, k
    assert "merge_features.3.conv.weight" not in sd and "hgs.0.low2.low2.low2.low2.low2.up1.bn1.weight" not in sd
    assert sd["e2h_transform.bias"].sum() == 0  # every 300W point lies on an edge
    path = tmp_path / "300W_STARLoss_NME_2_87.pkl"
    torch.save(
        {"net": sd, "net_ema": sd, "epoch": 450, "best_nme": np.float64(0.0287),
         "optimizer": {"state": {}, "param_groups": []},
         "scheduler": {"milestones": collections.Counter({200: 1, 350: 1, 450: 1}), "last_epoch": 450}},
        path,
    )  # fmt: skip
    loaded = load_landmark_network(path, "star")
    assert isinstance(loaded, STARNet) and not loaded.training
    got = loaded.state_dict()
    assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)
    with torch.no_grad():
        a = loaded(_crop(frame))
    assert a.shape == (1, 68, 2) and torch.isfinite(a).all() and a.abs().max() <= 1.0
    assert a.std() > 1e-3  # the points are not all in one place
    # through the detector: MediaPipe box → crop → network → 68 points in the image, inside the crop
    det = CropHeatmapDetector("star", path)
    try:
        d = det(frame)
    finally:
        det.close()
    assert d.ibug68.shape == (68, 2) and np.isfinite(d.ibug68).all()
    x1, y1, x2, y2 = d.box
    side = 1.05 * min(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert np.all(np.abs(d.ibug68 - [cx, cy]) <= side / 2 + 1e-3)


def test_star_wflw_checkpoint_with_module_prefix(tmp_path):
    torch.manual_seed(2)
    net = STARNet(98, WFLW98_EDGES, nstack=2, channels=64).eval()  # narrow: the prefix and the 98 points matter here
    _randomise_bn(net, 3)
    sd = net.state_dict()
    assert sd["e2h_transform.bias"][96:].tolist() == [1.0, 1.0]  # the pupils lie on no edge
    path = tmp_path / "WFLW_STARLoss_NME_4_02_FR_2_32_AUC_0_605.pkl"
    torch.save({"net": {f"module.{k}": v for k, v in sd.items()}, "epoch": 1}, path)
    loaded = load_landmark_network(path, "star")
    assert loaded.nstack == 2 and all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items())
    det = CropHeatmapDetector("star", path)
    try:
        pts = det.run_network(np.zeros((256, 256, 3), np.uint8))
    finally:
        det.close()
    with torch.no_grad():
        ref = loaded(torch.full((1, 3, 256, 256), -1.0))[0].numpy()
    assert ref.shape == (98, 2)
    np.testing.assert_allclose(pts, (ref[WFLW98_TO_IBUG68] + 1) * 128, rtol=1e-5, atol=1e-4)


def test_fan_checkpoint_round_trip(frame, tmp_path):
    torch.manual_seed(4)
    net = FANNet().eval()
    _randomise_bn(net, 5)
    sd = net.state_dict()
    for k, shape in {
        "conv1.weight": (64, 3, 7, 7),
        "conv2.downsample.2.weight": (128, 64, 1, 1),
        "conv2.conv1.weight": (64, 64, 3, 3),
        "conv4.conv3.weight": (64, 64, 3, 3),
        "m0.b1_4.bn1.weight": (256,),
        "m3.b2_plus_1.conv2.weight": (64, 128, 3, 3),
        "l3.weight": (68, 256, 1, 1),
        "al2.weight": (256, 68, 1, 1),
        "bn_end1.running_mean": (256,),
    }.items():
        assert tuple(sd[k].shape) == shape, k
    assert "bl3.weight" not in sd and "m0.b1_5.bn1.weight" not in sd and "conv3.downsample.0.weight" not in sd
    path = tmp_path / "2DFAN4-11f355bf06.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    loaded = load_landmark_network(path, "face-alignment")
    assert isinstance(loaded, FANNet) and all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items())
    x = torch.from_numpy(np.ascontiguousarray(frame[20:120, 50:150])).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(128, 128), mode="bilinear")  # fully convolutional: 1/4 scale maps
    with torch.no_grad():
        hm = loaded(x)
    assert hm.shape == (1, 68, 32, 32) and torch.isfinite(hm).all() and hm.std() > 1e-3
    det = CropHeatmapDetector("face-alignment", path)
    try:
        d = det(frame)
    finally:
        det.close()
    assert d.ibug68.shape == (68, 2) and np.isfinite(d.ibug68).all()


def test_bad_checkpoints_fail_clearly(tmp_path):
    torch.save({"net": {"encoder.weight": torch.zeros(2)}}, tmp_path / "other.pkl")
    with pytest.raises(VhapError, match="neither STAR's nor 2D-FAN's"):
        load_landmark_network(tmp_path / "other.pkl", "star")
    net = STARNet(68, IBUG68_EDGES, nstack=2, depth=2, channels=32)  # small: only the key layout matters here
    sd = net.state_dict()
    torch.save({"net": sd}, tmp_path / "star.pkl")
    with pytest.raises(VhapError, match="is a star network, not face-alignment"):
        load_landmark_network(tmp_path / "star.pkl", "face-alignment")
    assert isinstance(load_landmark_network(tmp_path / "star.pkl", "star"), STARNet)  # sizes read from the file
    del sd["out_pointmaps.1.conv.weight"]
    torch.save({"net": sd}, tmp_path / "broken.pkl")
    with pytest.raises(VhapError, match="does not match the published star layout"):
        load_landmark_network(tmp_path / "broken.pkl", "star")
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "star.pkl").read_bytes()[:1000])
    with pytest.raises(VhapError, match="cannot read as a checkpoint"):
        load_landmark_network(tmp_path / "cut.pkl", "star")
