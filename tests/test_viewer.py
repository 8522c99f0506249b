"""Viewer and region editor without a browser: pictures of a synthetic run (modes, frames, cameras, landmarks,
metrics), the wireframe and picking geometry on known answers, brush edits, region-file round trips, and the
HTTP API over a real socket."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
import torch
from test_viewer_fixtures import make_viewer_run

from vhap.errors import VhapError
from vhap.model.regions import RegionSet, load_region_file
from vhap.viewer import RegionEditor, RunScene, ViewOptions
from vhap.viewer.regions import ray_triangle
from vhap.viewer.scene import wireframe_mask


@pytest.fixture(scope="module")
def multiview_run(tmp_path_factory):
    return make_viewer_run(tmp_path_factory.mktemp("viewer"), rig="nersemble", num_frames=3, num_cameras=3,
                           image_size=(96, 80))  # fmt: skip


@pytest.fixture(scope="module")
def scene(multiview_run):
    return RunScene(multiview_run, min_size=0)


@pytest.fixture(scope="module")
def editor(scene):
    return RegionEditor(scene.run.head_model, image_size=(96, 96))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_wireframe_mask_known_answer():
    tri = torch.full((1, 4, 5), -1)
    tri[0, 1:3, 1:3] = 7
    tri[0, 1:3, 3] = 8
    edge = wireframe_mask(tri)[0].int().tolist()
    # changes to the left neighbour or the row above mark the pixel; empty-to-empty never does
    assert edge == [[0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 1, 0, 1, 1], [0, 1, 1, 1, 0]]


def test_ray_triangle_known_answer():
    a, b, c = np.array([0.0, 0, 0]), np.array([1.0, 0, 0]), np.array([0.0, 1, 0])
    hit = ray_triangle(np.array([0.25, 0.25, 2.0]), np.array([0.0, 0, -1]), a, b, c)
    assert np.allclose(hit, [0.25, 0.25, 0.0])
    assert ray_triangle(np.array([0.9, 0.9, 2.0]), np.array([0.0, 0, -1]), a, b, c) is None  # outside
    assert ray_triangle(np.array([0.25, 0.25, 2.0]), np.array([0.0, 0, 1]), a, b, c) is None  # behind


def test_scene_pictures(scene, multiview_run):
    assert (scene.T, scene.C, scene.render_size) == (3, 3, (96, 80))
    opt = ViewOptions(mode="shaded", opacity=1.0, landmarks=False)
    img = scene.render(0, 0, opt)
    bg = scene.input_image(0, 0)
    covered = np.abs(img.astype(int) - bg.astype(int)).sum(-1) > 30
    # the head covers a sensible part of the picture where the synthetic images show it
    assert 0.05 < covered.mean() < 0.8
    # every mode gives a different picture; frames and cameras change it
    pics = {m: scene.render(1, 0, ViewOptions(mode=m, landmarks=False)) for m in ("textured", "shaded", "normals",
                                                                                  "wireframe")}  # fmt: skip
    for m1 in pics:
        for m2 in pics:
            if m1 < m2:
                assert _diff(pics[m1], pics[m2]) > 1.0, (m1, m2)
    assert _diff(scene.render(0, 0, opt), scene.render(2, 0, opt)) > 0.5
    assert _diff(scene.render(0, 0, opt), scene.render(0, 2, opt)) > 2.0
    # opacity 0 without landmarks = the input image itself
    assert np.array_equal(scene.render(0, 1, ViewOptions(opacity=0.0, landmarks=False)), scene.input_image(0, 1))
    # landmarks are drawn in the detector / model colours
    with_lmk = scene.render(0, 0, ViewOptions(mode="shaded", background="black", opacity=0.0))
    assert ((with_lmk[..., 1] > 200) & (with_lmk[..., 0] < 30)).sum() > 5  # green detected points
    assert ((with_lmk[..., 0] > 200) & (with_lmk[..., 1] < 60)).sum() > 5  # red model points
    assert scene.frame_metrics(1) == {"nme": pytest.approx(0.02), "psnr_face": pytest.approx(29.0)}
    # as shown: labelled with units, NME in percent; the run's totals likewise, and the quality gates
    assert scene.frame_figures(1) == {"landmark NME (% eye distance)": pytest.approx(2.0), "face PSNR (dB)": 29.0}
    info = scene.info()
    assert info["totals"]["landmark NME (% eye distance)"] == pytest.approx(2.5) and info["gate_failures"] == []
    with pytest.raises(VhapError):
        scene.render(3, 0)
    with pytest.raises(VhapError):
        ViewOptions(mode="xray").check()


def test_layers_for_scoring(scene):
    lay = scene.layers(1, 0)
    h, w = scene.render_size
    assert lay.rgb.shape == (h, w, 3) and lay.alpha.shape == (h, w) and lay.landmarks_px.shape[-1] == 2
    covered = lay.alpha > 0.5
    # coverage and triangle ids agree, and the shaded picture differs from the input where the head is
    assert 0.05 < covered.float().mean() < 0.8 and ((lay.tri_id >= 0) == covered).float().mean() > 0.97
    shaded = scene.render(1, 0, ViewOptions(mode="shaded", opacity=1.0, landmarks=False))
    diff = np.abs(shaded.astype(int) - scene.input_image(1, 0).astype(int)).sum(-1) > 30
    assert (diff == covered.numpy()).mean() > 0.9
    # the canonical mesh with and without the static offsets (the fixture's run has none, or zeros)
    assert scene.canonical_verts().shape == scene.canonical_verts(offsets=False).shape


def test_model_landmarks_match_detections(scene):
    """The synthetic detections are the ground-truth projections (+1 px noise), and the run holds the ground
    truth, so the model landmarks the viewer draws must sit on them: checks cameras, scaling and posing."""
    for c in range(scene.C):
        _, lmk3d = scene.posed(1)
        px = scene.cameras(c).project(lmk3d)[0].numpy()
        det = scene.detected[(1, c)]
        h, w = scene.render_size
        err = np.linalg.norm(px - det[:, :2] * [w, h], axis=1)
        assert np.median(err) < 2.5, (c, np.median(err))


def test_editor_brush_and_save(editor, tmp_path):
    editor.reset_camera()
    editor.clear_edit()
    H, W = editor.image_size
    editor.render()
    assert editor.pick(2.0, 2.0) is None  # a corner is background
    hit = editor.pick(W / 2, H / 2)
    assert hit is not None and hit[2] > editor.target[2]  # the front of the head faces +z (the camera)
    n = editor.brush(W / 2, H / 2, radius=0.01)
    ids = np.flatnonzero(editor.edit)
    assert n == len(ids) > 0
    dist = np.linalg.norm(editor.verts_np[ids] - hit, axis=1)
    assert dist.max() <= 0.01
    all_dist = np.linalg.norm(editor.verts_np - hit, axis=1)
    assert len(ids) == int((all_dist <= 0.01).sum())  # exactly the vertices within the radius
    assert editor.brush(W / 2, H / 2, radius=0.005, add=False) > 0
    assert editor.edit.sum() == int(((all_dist <= 0.01) & (all_dist > 0.005)).sum())
    # overlays change the picture
    before = editor.render()
    editor.set_shown(["face"])
    changed = np.abs(before.astype(int) - editor.render().astype(int)).sum(-1) > 30
    assert changed.mean() > 0.05
    editor.set_shown([])
    with pytest.raises(VhapError):
        editor.set_shown(["no_such_region"])
    # save and load back through the model's RegionSet, twice into one file
    path = tmp_path / "regions.json"
    editor.save(path, name="ring")
    editor.load_into_edit("lips_tight")
    editor.save(path, name="lips_copy")
    data = json.loads(path.read_text())
    assert sorted(data) == ["lips_copy", "ring"]
    rs = RegionSet({**editor.model.regions.as_dict(), **load_region_file(path)}, editor.model.faces.numpy(),
                   num_verts=editor.num_verts)  # fmt: skip
    assert np.array_equal(rs.vertex_ids("lips_copy"), editor.model.regions.vertex_ids("lips_tight"))
    assert len(rs.vertex_ids("ring")) == int(((all_dist <= 0.01) & (all_dist > 0.005)).sum())
    with pytest.raises(VhapError, match="JSON"):
        editor.save(tmp_path / "regions.txt")
    # a file of another model is refused with the file named
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": [editor.num_verts + 5]}))
    with pytest.raises(VhapError, match="outside"):
        RegionEditor(editor.head_model, bad, image_size=(32, 32))


def test_http_api(scene, editor, tmp_path):
    import threading

    from vhap.viewer.apps import regions_app, viewer_app
    from vhap.viewer.server import make_server

    for app, checks in ((viewer_app(scene), "viewer"), (regions_app(editor), "regions")):
        server = make_server(app, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        opener = urllib.request.build_opener()
        opener.addheaders = [("X-Vhap-Token", server.token)]
        urllib.request.install_opener(opener)
        try:
            page = urllib.request.urlopen(server.url).read().decode()
            assert "<script>" in page
            if checks == "viewer":
                info = json.load(urllib.request.urlopen(base + "/api/info"))
                assert info["num_cameras"] == 3 and info["has_detected_landmarks"]
                png = urllib.request.urlopen(base + "/api/frame.png?t=1&c=2&mode=normals").read()
                assert png[:8] == b"\x89PNG\r\n\x1a\n"
                with pytest.raises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(base + "/api/frame.png?t=9")
                assert e.value.code == 400 and "outside" in json.load(e.value)["error"]
                req = urllib.request.Request(base + "/api/screenshot", data=json.dumps({"t": 0, "c": 1}).encode(),
                                             headers={"Content-Type": "application/json"})  # fmt: skip
                saved = json.load(urllib.request.urlopen(req))["path"]
                from PIL import Image

                assert Image.open(saved).size == (80, 96)
            else:
                st = json.load(urllib.request.urlopen(base + "/api/state"))
                assert "hair" in st["regions"]
                assert urllib.request.urlopen(base + "/api/view.png").read()[:4] == b"\x89PNG"
        finally:
            urllib.request.install_opener(None)
            server.shutdown()
            server.server_close()


def test_cli_starts_without_gpu_or_display(multiview_run):
    """``vhap view`` as a user starts it: a separate process with no GPU and no display prints the URL and the
    SSH tunnel hint and then serves the run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "vhap.cli", "view", str(multiview_run), "--port", "0", "--min-size", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "stop with Ctrl+C" in line:
                break
        text = "".join(lines)
        assert "ssh -N -L" in text, text
        port = int(text.split("http://localhost:")[1].split("/")[0])
        token = text.split("?token=")[1].split()[0]
        info = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info?token={token}", timeout=60))
        assert info["num_timesteps"] == 3 and info["render_size"] == [96, 80]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_editor_pose(editor):
    editor.reset_camera()
    editor.set_shown([])
    closed = editor.render()
    lower_teeth = editor.model.regions.vertex_ids("teeth_lower")
    before = editor.verts_np[lower_teeth].copy()
    editor.set_pose(jaw_open=0.3, expr=[1.0] * 10)
    try:
        assert editor.jaw_open == pytest.approx(0.3) and editor.expr.tolist() == [1.0] * editor.num_expr_sliders
        # opening the jaw moves the lower teeth down (-y) and changes the picture
        assert (editor.verts_np[lower_teeth][:, 1] - before[:, 1]).mean() < -0.005
        assert _diff(closed, editor.render()) > 0.5
        editor.set_pose(jaw_open=5.0)
        assert editor.jaw_open == pytest.approx(0.8)  # clipped
    finally:
        editor.set_pose(jaw_open=0.0, expr=[])
    assert np.allclose(editor.verts_np[lower_teeth], before, atol=1e-6)


def test_flame_topology_run(tmp_path, flame_topology_dir):
    """A run tracked with a FLAME-topology model (the stand-in of ../shared): 5023 + 120 teeth vertices, the
    npz head-model path recorded in the run, landmarks on the detections."""
    run = make_viewer_run(tmp_path, num_frames=2, image_size=(64, 56), head_model="standin")
    scene = RunScene(run, min_size=0)
    assert scene.model.num_verts == 5143
    img = scene.render(1, 0, ViewOptions(mode="shaded", opacity=1.0, landmarks=False))
    assert _diff(img, scene.input_image(1, 0)) > 5.0
    _, lmk3d = scene.posed(1)
    px = scene.cameras(0).project(lmk3d)[0].numpy()
    err = np.linalg.norm(px - scene.detected[(1, 0)][:, :2] * [56, 64], axis=1)
    assert np.median(err) < 2.5


def test_free_orbit_and_turntable(scene, tmp_path):
    """Issue 20: a free view around the head — continuous from the tracked camera, rigid about the head centre —,
    normals/wireframe in it, and a turntable video of one frame."""
    tracked = scene.cameras(1)
    assert torch.allclose(scene.orbit_cameras(0, 1, 1e-6, 0.0, 1.0).w2c, tracked.w2c, atol=1e-5)
    centre = scene.posed(0)[0][0].mean(0)
    up = -scene.w2c[1][1, :3]

    def eye(cams):
        rot, trans = cams.w2c[0, :3, :3], cams.w2c[0, :3, 3]
        return -rot.T @ trans

    r0 = float((eye(tracked) - centre).norm())
    for yaw, pitch, zoom in ((90, 0, 1), (180, 0, 1), (0, 40, 1), (30, -20, 2)):
        cams = scene.orbit_cameras(0, 1, yaw, pitch, zoom)
        rot = cams.w2c[0, :3, :3]
        assert torch.allclose(rot @ rot.T, torch.eye(3), atol=1e-5) and float(torch.det(rot)) > 0
        d = eye(cams) - centre
        assert float(d.norm()) == pytest.approx(r0 / zoom, rel=1e-4)  # on the sphere around the head
        # the head centre stays where it was in the picture (the camera turns about it)
        assert torch.allclose(cams.project(centre[None, None]), tracked.project(centre[None, None]), atol=0.5)
    high = scene.orbit_cameras(0, 1, 0, 40, 1)
    assert float((eye(high) - centre) @ up) > float((eye(tracked) - centre) @ up) + 0.1 * r0  # pitch: from above
    back = scene.orbit_cameras(0, 1, 180, 0, 1)
    assert float((eye(back) - centre) @ (eye(tracked) - centre)) < -0.8 * r0**2  # behind the head
    # pictures: away from the camera the input image is not used; the modes differ; landmarks behind are hidden
    opts = {m: ViewOptions(mode=m, yaw=150.0) for m in ("shaded", "normals", "wireframe")}
    pics = {m: scene.render(0, 1, o) for m, o in opts.items()}
    assert _diff(pics["shaded"], pics["normals"]) > 5 and _diff(pics["shaded"], pics["wireframe"]) > 5
    corner = pics["shaded"][0, 0]
    assert (np.abs(corner.astype(int) - 46) <= 1).all()  # dark grey, not the input frame
    with pytest.raises(VhapError, match="finite"):
        ViewOptions(yaw=float("nan")).check()
    frames = scene.turntable(0, 1, ViewOptions(mode="normals", landmarks=False), 6)
    assert len(frames) == 6 and all(f.shape == (96, 80, 3) for f in frames)
    assert min(_diff(a, b) for a, b in zip(frames, frames[1:], strict=False)) > 1  # it turns
    with pytest.raises(VhapError, match="2…720"):
        scene.turntable(0, 1, None, 1)


def test_turntable_http(multiview_run):
    import threading

    from vhap.preprocess.video import probe_video
    from vhap.viewer.apps import viewer_app
    from vhap.viewer.server import make_server

    pytest.importorskip("av")
    server = make_server(viewer_app(RunScene(multiview_run, min_size=0)), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def post(body):
        req = urllib.request.Request(
            base + "/api/turntable",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Vhap-Token": server.token},
        )
        return json.load(urllib.request.urlopen(req))  # fmt: skip

    try:
        r = post({"t": 2, "c": 0, "mode": "wireframe", "frames": 8, "fps": 8, "pitch": 15})
        info = probe_video(r["path"])
        assert r["frames"] == 8 and info.num_frames == 8 and (info.height, info.width) == (96, 80)
        png = urllib.request.urlopen(
            urllib.request.Request(
                base + "/api/frame.png?t=1&c=0&mode=normals&yaw=45&zoom=1.5", headers={"X-Vhap-Token": server.token}
            )
        )
        assert png.read()[:4] == b"\x89PNG"  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as e:
            post({"t": 9, "c": 0})
        assert e.value.code == 400 and "outside" in json.load(e.value)["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_turntable_cli(multiview_run, tmp_path):
    from vhap.cli import main
    from vhap.preprocess.video import probe_video

    pytest.importorskip("av")
    out = tmp_path / "turn.mp4"
    argv = ["view", str(multiview_run), "--min-size", "0", "--turntable", str(out), "--turntable-frames", "5",
            "--turntable-frame", "1", "--turntable-camera", "2", "--turntable-mode", "shaded"]  # fmt: skip
    assert main(argv) == 0 and probe_video(out).num_frames == 5
    assert main(["view", str(multiview_run), "--turntable", str(tmp_path / "t.mp4"), "--turntable-frame", "7"]) == 2
    assert not (tmp_path / "t.mp4").exists()
