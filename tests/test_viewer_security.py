"""Issue 17 item 15: the web servers of `vhap regions` / `vhap view` against cross-site and DNS-rebinding requests,
driven with plain HTTP (http.client) against a server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from test_viewer_fixtures import make_viewer_run

from vhap.errors import VhapError
from vhap.viewer.apps import regions_app, save_target, viewer_app
from vhap.viewer.regions import RegionEditor
from vhap.viewer.scene import RunScene
from vhap.viewer.server import host_allowed, make_server


@pytest.fixture(scope="module")
def head_model(tmp_path_factory):
    run = make_viewer_run(tmp_path_factory.mktemp("sec"), num_frames=2, num_cameras=1, image_size=(48, 40))
    return run, RunScene(run, min_size=0).run.head_model


def _start(app):
    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _request(server, method, path, body=None, headers=None, token=True):
    """(status, parsed JSON or raw bytes) of one request; the Host header is the real one unless given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    h = {"Host": f"127.0.0.1:{server.server_address[1]}"}
    if token:
        h["X-Vhap-Token"] = server.token
    h.update(headers or {})
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    for k, v in h.items():
        conn.putheader(k, v)
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        return r.status, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return r.status, raw


@pytest.fixture
def regions_server(head_model, tmp_path):
    _, head = head_model
    target = tmp_path / "given" / "mine.json"
    editor = RegionEditor(head, target, image_size=(64, 64))
    editor.edit[:10] = True
    server = _start(regions_app(editor))
    yield server, target, tmp_path
    server.shutdown()
    server.server_close()


def test_token_is_required_and_per_launch(regions_server, head_model):
    server, _, _ = regions_server
    assert len(server.token) >= 24 and server.url.endswith(f"/?token={server.token}")
    assert _request(server, "GET", "/", token=False)[0] == 403
    assert _request(server, "GET", "/api/state", token=False)[0] == 403
    assert _request(server, "GET", "/api/state", headers={"X-Vhap-Token": "guess"}, token=False)[0] == 403
    status, page = _request(server, "GET", f"/?token={server.token}", token=False)
    assert status == 200 and b"X-Vhap-Token" in page  # the page sends the token on its API calls
    assert _request(server, "GET", f"/api/state?token={server.token}", token=False)[0] == 200
    status, st = _request(server, "GET", "/api/state")
    assert status == 200 and st["num_verts"] > 0
    other = make_server(regions_app(RegionEditor(head_model[1], None, image_size=(32, 32))), "127.0.0.1", 0)
    assert other.token != server.token
    other.server_close()


def test_cross_site_save_is_refused(regions_server):
    """The issue's reproduction: a text/plain POST from a foreign origin asking to create …/dir/created.json."""
    server, target, tmp = regions_server
    evil = tmp / "dir" / "created.json"
    body = json.dumps({"path": str(evil), "name": "x"}).encode()
    # what any web page can send (no token known to it, text/plain, foreign Origin)
    status, _ = _request(server, "POST", "/api/save", body, {"Content-Type": "text/plain",
                         "Origin": "http://evil.example"}, token=False)  # fmt: skip
    assert status == 403
    # each protection on its own, the others satisfied
    status, j = _request(server, "POST", "/api/save", body, {"Content-Type": "application/json",
                         "Origin": "http://evil.example"})  # fmt: skip
    assert status == 403 and "cross-origin" in j["error"]
    status, j = _request(server, "POST", "/api/save", body, {"Content-Type": "text/plain"})
    assert status == 415
    status, j = _request(server, "POST", "/api/save", body, {"Content-Type": "application/json"})
    assert status == 400 and "may save only" in j["error"]
    assert not evil.exists() and not evil.parent.exists()
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header still names it
    status, _ = _request(server, "GET", "/api/state", headers={"Host": f"evil.example:{server.server_address[1]}"})
    assert status == 403
    # the page's own save (same origin, JSON, the token) writes the file given on the command line
    port = server.server_address[1]
    status, st = _request(server, "POST", "/api/save", {"name": "ten"}, {"Content-Type": "application/json",
                          "Origin": f"http://127.0.0.1:{port}"})  # fmt: skip
    assert status == 200 and st["saved"] == str(target.resolve())
    assert len(json.loads(target.read_text())["ten"]) == 10
    status, _ = _request(server, "POST", "/api/save", {"path": str(target), "name": "again"},
                         {"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
    assert status == 200 and set(json.loads(target.read_text())) == {"ten", "again"}


def test_save_into_a_folder_given_on_the_command_line(tmp_path):
    folder = tmp_path / "regions"
    folder.mkdir()
    assert save_target(folder, None, "lips") == (folder / "lips.json").resolve()
    assert save_target(folder, str(folder), "lips") == (folder / "lips.json").resolve()
    assert save_target(folder, "chin.json", "x") == (folder / "chin.json").resolve()
    assert save_target(folder, str(folder / "chin.json"), "x") == (folder / "chin.json").resolve()
    for bad in ("../out.json", "sub/x.json", str(tmp_path / "x.json"), "x.txt", "/etc/x.json"):
        with pytest.raises(VhapError, match="may save only"):
            save_target(folder, bad, "x")
    with pytest.raises(VhapError, match="may save only"):
        save_target(folder, None, "../escape")
    with pytest.raises(VhapError, match="no region file was given"):
        save_target(None, str(tmp_path / "x.json"), "x")


def test_viewer_server_is_guarded_too(head_model):
    run, _ = head_model
    server = _start(viewer_app(RunScene(run, min_size=0)))
    try:
        assert _request(server, "GET", "/api/info", token=False)[0] == 403
        assert _request(server, "GET", "/api/info")[0] == 200
        shot = {"t": 0, "c": 0}
        assert _request(server, "POST", "/api/screenshot", json.dumps(shot).encode(),
                        {"Content-Type": "text/plain"})[0] == 415  # fmt: skip
        assert _request(server, "POST", "/api/screenshot", shot, {"Content-Type": "application/json",
                        "Origin": "null"})[0] == 403  # fmt: skip
        assert not (run / "screenshots").exists()
        assert _request(server, "POST", "/api/screenshot", shot, {"Content-Type": "application/json"})[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_host_rule():
    for ok in ("127.0.0.1:8080", "localhost:1", "[::1]:80", "10.1.2.3", "LOCALHOST"):
        assert host_allowed(ok, "127.0.0.1"), ok
    for bad in ("evil.example:8080", "localhost.evil.example", "", None, "127.0.0.1.nip.io:80"):
        assert not host_allowed(bad, "127.0.0.1"), bad
    assert host_allowed("mybox:8080", "mybox")
