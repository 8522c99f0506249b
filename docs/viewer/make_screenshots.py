"""Regenerate docs/viewer/viewer.png, viewer_orbit.png and regions.png in headless Chromium.

    python docs/viewer/make_screenshots.py --run RUN_DIR --head-model HEAD [--frame 2] [--mode textured]

Serves the two apps on free local ports, drives the pages with selenium like a user (frame slider, region
toggles, a brush stroke) and saves full-window screenshots.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--window-size={width},{height}", f"--user-data-dir={tempfile.mkdtemp()}"):  # fmt: skip
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _serve(app):
    from vhap.viewer.server import make_server

    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.url  # carries the launch's token


def _settle(driver, after: int = 0, timeout: float = 120.0) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        n = int(driver.execute_script("return document.body.dataset.frames || '0'"))
        if n > after and driver.execute_script("return document.body.dataset.busy") == "0":
            return n
        time.sleep(0.1)
    raise TimeoutError("the page did not show a picture")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--head-model", required=True)
    ap.add_argument("--frame", type=int, default=2)
    ap.add_argument("--mode", default="textured")
    ap.add_argument("--orbit-mode", default="shaded")
    args = ap.parse_args()

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    from vhap.viewer.apps import regions_app, viewer_app
    from vhap.viewer.regions import RegionEditor
    from vhap.viewer.scene import RunScene

    driver = _driver(1280, 820)
    try:
        server, url = _serve(viewer_app(RunScene(args.run, max_size=768)))
        driver.get(url)
        n = _settle(driver)
        driver.execute_script(
            "const f = document.getElementById('frame'); f.value = arguments[0];f.dispatchEvent(new Event('input'));",
            args.frame,
        )
        n = _settle(driver, n)
        if args.mode != driver.find_element("id", "mode").get_attribute("value"):
            Select(driver.find_element("id", "mode")).select_by_visible_text(args.mode)
            _settle(driver, n)
        time.sleep(0.5)
        driver.save_screenshot(str(HERE / "viewer.png"))
        # the free orbit: drag the picture to turn the head, then the wireframe mode in that view
        n = int(driver.execute_script("return document.body.dataset.frames"))
        view = driver.find_element("id", "view")
        ActionChains(driver).move_to_element(view).click_and_hold().move_by_offset(-100, -25).release().perform()
        time.sleep(1.0)
        n = _settle(driver, n)
        Select(driver.find_element("id", "mode")).select_by_visible_text(args.orbit_mode)
        _settle(driver, n)
        time.sleep(0.5)
        driver.save_screenshot(str(HERE / "viewer_orbit.png"))
        server.shutdown()

        editor = RegionEditor(args.head_model, image_size=(720, 720))
        editor.orbit(d_yaw=25, d_pitch=5)
        server, url = _serve(regions_app(editor))
        driver.get(url)
        n = _settle(driver)
        for name in ("hair", "lips_tight", "left_eye", "right_eye", "nose"):
            driver.find_element("id", f"region-{name}").click()
            n = _settle(driver, n)
        driver.find_element("css selector", "input[name=tool][value=add]").click()
        view = driver.find_element("id", "view")
        ActionChains(driver).move_to_element_with_offset(view, 20, 60).click_and_hold().move_by_offset(
            40, 10
        ).move_by_offset(30, 5).release().perform()
        time.sleep(1.0)
        _settle(driver, n)
        driver.save_screenshot(str(HERE / "regions.png"))
        server.shutdown()
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
