"""Overlays at a readable size (issue 20 item 3): the tracker's overlay panels and the landmark inspection image
of a 176×144 carphone frame are upscaled to a longest side ≥ 512, with landmarks, mesh edges and the error map
where they belong."""

from __future__ import annotations

import numpy as np
import pytest

from vhap.preprocess.landmarks.overlay import error_panel, upscale_factor, wire_edges
from vhap.track.outputs import draw_overlay, write_video


@pytest.fixture(scope="module")
def frame(carphone_path):
    from tests.fixtures_nersemble import read_video_frames

    return read_video_frames(carphone_path, 1)[0]


def test_upscale_factor():
    assert upscale_factor(144, 176) == 3  # 528×432
    assert upscale_factor(48, 40) == 11
    assert upscale_factor(512, 300) == 1 and upscale_factor(1080, 1920) == 1
    assert upscale_factor(100, 100, 250) == 3


def test_wire_edges_and_error_panel():
    tri = np.full((6, 6), -1)
    tri[1:5, 1:3] = 7
    tri[1:5, 3:5] = 8
    e = wire_edges(tri)
    assert e[2, 2] and not e[2, 1] and e[0, 2] and e[2, 0] and not e[5, 5]  # shared edge, silhouette, background
    err = np.array([[0.0, 0.25], [0.5, 0.1]])
    p = error_panel(err, np.array([[True, True], [False, True]]))
    assert p.dtype == np.uint8 and (p[1, 0] == 48).all()  # outside the head
    assert p[0, 1].sum() > p[1, 1].sum() > p[0, 0].sum()  # brighter = larger error


def test_tracker_overlay_is_readable(frame, tmp_path):
    h, w = frame.shape[:2]
    target = frame.astype(np.float32) / 255
    render = np.zeros_like(target)
    render[40:110, 60:120] = [0.8, 0.6, 0.5]
    mask = np.zeros((h, w), np.float32)
    mask[40:110, 60:120] = 1
    tri = np.full((h, w), -1)
    tri[40:110, 60:90] = 3
    tri[40:110, 90:120] = 4
    pred = np.array([[70.0, 60.0], [100.0, 90.0]])
    tgt = np.array([[72.0, 62.0], [np.nan, np.nan]])
    img = draw_overlay(target, render, mask, pred, tgt, np.array([1.0, 0.0]), tri_id=tri)
    s = 3
    assert img.shape == (h * s, 3 * w * s + 12, 3) and img.dtype == np.uint8  # 432 × (3·528 + gaps)
    left, mid, right = img[:, : w * s], img[:, w * s + 6 : 2 * w * s + 6], img[:, 2 * w * s + 12 :]
    assert tuple(left[62 * s, 72 * s]) == (0, 255, 0)  # detected landmark, green, at the upscaled place
    assert tuple(left[60 * s, 70 * s]) == (255, 0, 0) and tuple(mid[90 * s, 100 * s]) == (255, 0, 0)  # model: red
    # the mesh edge between triangles 3 and 4 is drawn in the render panel, not elsewhere
    col = 90 * s - 1
    assert mid[80 * s, col].astype(int).sum() > mid[80 * s, col - 9].astype(int).sum() + 60
    # the error panel is lit where the render differs from the frame, dark grey off the head
    assert (right[20 * s, 20 * s] == 48).all() and right[75 * s, 75 * s].astype(int).sum() > 150
    # overlay.mp4 has the panels' size
    write_video([img, img], tmp_path / "overlay.mp4", 10)
    from vhap.preprocess.video import probe_video

    info = probe_video(tmp_path / "overlay.mp4")
    assert (info.width, info.height) == (img.shape[1], img.shape[0]) and max(info.width, info.height) >= 512


def test_landmark_inspection_image_is_readable(frame):
    from vhap.preprocess.landmarks.overlay import draw_landmarks

    pts = np.tile([[88.0, 72.0]], (68, 1))
    img = draw_landmarks(frame, pts, None)
    assert img.shape == (432, 528, 3)
    assert tuple(img[72 * 3, 88 * 3]) == (255, 0, 200)  # the last drawn group (mouth) colour at the point
