"""The viewer and region-editor pages driven in headless Chromium (selenium + chromedriver): the page loads,
the picture is not empty, the frame slider, the camera menu and a region toggle change it, the brush paints,
and saving writes a region file that ``RegionSet`` loads back. Skipped when chromium / chromedriver / selenium
are absent."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_viewer_fixtures import make_viewer_run

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless browser tests need chromium and chromedriver (apt install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vhap-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,800",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _serve(app):
    from vhap.viewer.server import make_server

    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.url


def _wait(driver, cond, what: str, timeout: float = 90.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    status = driver.find_element("id", "status").text
    raise AssertionError(f"timed out waiting for {what} (page status: {status!r})")


def _frames(driver) -> int:
    return int(driver.execute_script("return document.body.dataset.frames || '0'"))


def _wait_shown(driver, after: int) -> None:
    """Wait until the page shows a picture newer than ``after`` and nothing is pending."""
    _wait(
        driver,
        lambda: _frames(driver) > after and driver.execute_script("return document.body.dataset.busy") == "0",
        "a new picture",
    )


def _picture(driver) -> np.ndarray:
    """What the browser shows in the picture element (a real screenshot of the element), (h,w,3) float."""
    from PIL import Image

    png = driver.find_element("id", "view").screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels that changed visibly."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return float((np.abs(a[:h, :w] - b[:h, :w]).sum(-1) > 30).mean())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_viewer_run(tmp_path_factory.mktemp("viewer_browser"), rig="nersemble", num_frames=3, num_cameras=2,
                           image_size=(120, 100))  # fmt: skip


def test_viewer_page(browser, run_dir):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from vhap.viewer.apps import viewer_app
    from vhap.viewer.scene import RunScene

    server, url = _serve(viewer_app(RunScene(run_dir, min_size=0)))
    try:
        browser.get(url)
        _wait_shown(browser, 0)
        first = _picture(browser)
        assert first.shape[0] >= 100 and first.shape[1] >= 80
        assert first.std() > 10.0  # not an empty / uniform picture
        assert "landmark NME (% eye distance)" in browser.find_element("id", "metrics").text
        assert "quality gates: pass" in browser.find_element("id", "runinfo").text
        # the frame slider: keyboard on the focused slider moves it by one step, like a user would
        n = _frames(browser)
        slider = browser.find_element("id", "frame")
        slider.send_keys(Keys.ARROW_RIGHT)
        slider.send_keys(Keys.ARROW_RIGHT)
        _wait_shown(browser, n)
        assert slider.get_attribute("value") == "2"
        _wait(browser, lambda: "3 / 3" in browser.find_element("id", "frameLabel").text, "the frame label")
        moved = _picture(browser)
        assert _changed(first, moved) > 0.01
        # NME of the third frame, in % (its request may answer after the picture's)
        _wait(browser, lambda: "3.00" in browser.find_element("id", "metrics").text, "the third frame's metrics")
        # camera switching
        n = _frames(browser)
        Select(browser.find_element("id", "camera")).select_by_index(1)
        _wait_shown(browser, n)
        assert _changed(moved, _picture(browser)) > 0.05
        # render mode
        n = _frames(browser)
        Select(browser.find_element("id", "mode")).select_by_visible_text("normals")
        _wait_shown(browser, n)
        normals = _picture(browser)
        assert _changed(moved, normals) > 0.05
        # playback advances the frame by itself
        browser.find_element("id", "play").click()
        _wait(browser, lambda: browser.find_element("id", "frame").get_attribute("value") == "1", "playback")
        browser.find_element("id", "play").click()
        # screenshot saved to the run folder
        browser.find_element("id", "save").click()
        saved = _wait(browser, lambda: browser.execute_script("return document.body.dataset.saved"), "the screenshot")
        assert Path(saved).parent == run_dir / "screenshots" and Path(saved).stat().st_size > 1000
    finally:
        server.shutdown()
        server.server_close()


def test_viewer_orbit_modes_and_turntable(browser, run_dir):
    """Issue 20: turn the head around by dragging the picture, normals / wireframe in that view, play the
    turntable and export it as a video."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    from vhap.preprocess.video import probe_video
    from vhap.viewer.apps import viewer_app
    from vhap.viewer.scene import RunScene

    server, url = _serve(viewer_app(RunScene(run_dir, min_size=256)))
    try:
        browser.get(url)
        _wait_shown(browser, 0)
        tracked = _picture(browser)
        # drag the picture to the left: the head turns (yaw grows) and the picture changes
        view = browser.find_element("id", "view")
        n = _frames(browser)
        ActionChains(browser).move_to_element(view).click_and_hold().move_by_offset(-150, 20).release().perform()
        _wait(browser, lambda: float(browser.execute_script("return document.body.dataset.yaw || '0'")) > 40,
              "the drag to turn the head")  # fmt: skip
        _wait_shown(browser, n)
        turned = _picture(browser)
        assert _changed(tracked, turned) > 0.05
        assert "yaw" in browser.find_element("id", "orbitLabel").text
        # render modes apply to the free view
        shown = {}
        for mode in ("normals", "wireframe"):
            n = _frames(browser)
            Select(browser.find_element("id", "mode")).select_by_visible_text(mode)
            _wait_shown(browser, n)
            shown[mode] = _picture(browser)
        assert _changed(turned, shown["normals"]) > 0.02 and _changed(shown["normals"], shown["wireframe"]) > 0.02
        # the wheel zooms in: more of the picture is covered by the head
        n = _frames(browser)
        browser.execute_script(
            "arguments[0].dispatchEvent(new WheelEvent('wheel', {deltaY: -400, bubbles: true}))", view
        )
        _wait(browser, lambda: float(browser.execute_script("return document.body.dataset.zoom")) > 1.5, "zoom")
        _wait_shown(browser, n)
        # the turntable plays by itself and stops on request
        browser.find_element("id", "spin").click()
        yaw0 = float(browser.execute_script("return document.body.dataset.yaw"))
        _wait(browser, lambda: abs(float(browser.execute_script("return document.body.dataset.yaw")) - yaw0) >= 30,
              "the turntable to turn")  # fmt: skip
        browser.find_element("id", "spin").click()
        # back to the tracked camera: the picture is the tracked view again
        n = _frames(browser)
        Select(browser.find_element("id", "mode")).select_by_visible_text("textured")
        _wait_shown(browser, n)
        n = _frames(browser)
        browser.find_element("id", "resetView").click()
        _wait_shown(browser, n)
        assert _changed(tracked, _picture(browser)) < 0.01
        # export a turntable video of this frame
        browser.execute_script("document.body.dataset.saved = ''")
        frames = browser.find_element("id", "ttFrames")
        frames.clear()
        frames.send_keys("12")
        browser.find_element("id", "exportTT").click()
        saved = _wait(browser, lambda: browser.execute_script("return document.body.dataset.saved"), "the video")
        info = probe_video(saved)
        assert Path(saved).parent == run_dir / "turntables" and info.num_frames == 12 and info.width >= 200
    finally:
        server.shutdown()
        server.server_close()


def test_regions_page(browser, run_dir, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from vhap.model.regions import RegionSet, load_region_file
    from vhap.viewer.apps import regions_app
    from vhap.viewer.regions import RegionEditor
    from vhap.viewer.scene import RunScene

    head = RunScene(run_dir).run.head_model
    target = tmp_path / "my_regions.json"
    editor = RegionEditor(head, target, image_size=(256, 256))
    server, url = _serve(regions_app(editor))
    try:
        browser.get(url)
        _wait_shown(browser, 0)
        plain = _picture(browser)
        assert plain.std() > 10.0
        # toggling a region overlay changes the picture
        n = _frames(browser)
        browser.find_element("id", "region-face").click()
        _wait_shown(browser, n)
        assert _changed(plain, _picture(browser)) > 0.05
        assert editor.shown == ["face"]
        # brush: pick "add" and click the middle of the face
        browser.find_element("css selector", "input[name=tool][value=add]").click()
        n = _frames(browser)
        view = browser.find_element("id", "view")
        ActionChains(browser).move_to_element(view).click_and_hold().move_by_offset(6, 0).release().perform()
        _wait(browser, lambda: int(browser.execute_script("return document.body.dataset.editCount")) > 0, "brush")
        _wait_shown(browser, n)
        count = int(browser.execute_script("return document.body.dataset.editCount"))
        assert count == int(editor.edit.sum()) > 0
        # orbit by dragging changes the camera
        browser.find_element("css selector", "input[name=tool][value=orbit]").click()
        ActionChains(browser).move_to_element(view).click_and_hold().move_by_offset(60, 0).release().perform()
        _wait(browser, lambda: abs(editor.yaw) > 1.0, "orbit")
        # the pose sliders open the jaw
        jaw = browser.find_element("id", "jaw")
        for _ in range(3):
            jaw.send_keys(Keys.ARROW_RIGHT)
        _wait(browser, lambda: editor.jaw_open > 0.05, "the jaw slider")
        # name the set and save
        name = browser.find_element("id", "editName")
        name.clear()
        name.send_keys("chin_patch")
        browser.find_element("id", "save").click()
        saved = _wait(browser, lambda: browser.execute_script("return document.body.dataset.saved"), "saving")
        assert Path(saved) == target
        data = json.loads(target.read_text())
        assert list(data) == ["chin_patch"] and len(data["chin_patch"]) == count
        rs = RegionSet({**editor.model.regions.as_dict(), **load_region_file(target)}, editor.model.faces.numpy(),
                       num_verts=editor.num_verts)  # fmt: skip
        assert np.array_equal(rs.vertex_ids("chin_patch"), np.flatnonzero(editor.edit))
    finally:
        server.shutdown()
        server.server_close()
