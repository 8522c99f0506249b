"""The two web apps: the run viewer (:func:`viewer_app`) and the region editor (:func:`regions_app`).

Viewer API: ``GET /api/info``, ``GET /api/frame.png?t=&c=&mode=&bg=&opacity=&landmarks=&yaw=&pitch=&zoom=``
(yaw/pitch/zoom: free orbit around the head from camera ``c``), ``GET /api/metrics?t=``,
``POST /api/screenshot {t, c, mode, bg, opacity, landmarks, yaw, pitch, zoom}`` (saved under
``<run>/screenshots/``), ``POST /api/turntable {…, frames, fps}`` (one turn around timestep ``t`` as mp4 under
``<run>/turntables/``).

Region-editor API: ``GET /api/state``, ``GET /api/view.png``, ``POST /api/show {names}``,
``POST /api/orbit {d_yaw, d_pitch, zoom} | {reset: true}``,
``POST /api/pose {jaw_open?, expr?}``, ``POST /api/brush {points: [[x, y], …], radius, add}``,
``POST /api/edit {load: name} | {clear: true} | {name: new_name}``, ``POST /api/save {path?, name?}`` (only
to the file or into the folder given as ``--regions-file``).

Both servers require the launch's token and JSON bodies (:mod:`vhap.viewer.server`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

from vhap.errors import VhapError
from vhap.viewer.pages import REGIONS_PAGE, VIEWER_PAGE
from vhap.viewer.regions import RegionEditor
from vhap.viewer.scene import RunScene, ViewOptions
from vhap.viewer.server import App, Response, json_response, png_response


def _options(q: dict) -> ViewOptions:
    return ViewOptions(
        mode=str(q.get("mode", "textured")),
        background=str(q.get("bg", "image")),
        opacity=float(q.get("opacity", 0.7)),
        landmarks=str(q.get("landmarks", "1")).lower() in ("1", "true", "yes", "on"),
        yaw=float(q.get("yaw", 0.0)),
        pitch=float(q.get("pitch", 0.0)),
        zoom=float(q.get("zoom", 1.0)),
    ).check()


def _index(q: dict, key: str) -> int:
    try:
        return int(q.get(key, 0))
    except (TypeError, ValueError) as e:
        raise VhapError(f"query parameter {key}={q.get(key)!r} is not an integer") from e


def write_turntable(
    scene: RunScene, t: int, c: int, options: ViewOptions, path: Path, num_frames: int = 36, fps: float = 12.0
) -> Path:
    """Render a turntable of timestep ``t`` (one turn around the head) and write it as an H.264 mp4 at ``path``."""
    import importlib.util

    from vhap.track.outputs import write_video

    if importlib.util.find_spec("av") is None:
        raise VhapError("writing a turntable video needs PyAV", fix="pip install av")
    frames = scene.turntable(t, c, options, num_frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(frames, path, fps)
    return path


def viewer_app(scene: RunScene, cache_size: int = 256) -> App:
    # encoded pictures by request: playback loops and slider scrubbing revisit the same frames
    cache: OrderedDict[tuple, Response] = OrderedDict()

    def info(q, b):
        return json_response(scene.info())

    def frame(q, b):
        t, c, opt = _index(q, "t"), _index(q, "c"), _options(q)
        key = (t, c, opt.mode, opt.background, round(opt.opacity, 3), opt.landmarks,
               round(opt.yaw, 2), round(opt.pitch, 2), round(opt.zoom, 3))  # fmt: skip
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        resp = png_response(scene.render(t, c, opt))
        cache[key] = resp
        while len(cache) > cache_size:
            cache.popitem(last=False)
        return resp

    def metrics(q, b):
        t = _index(q, "t")
        if not 0 <= t < scene.T:
            raise VhapError(f"timestep index {t} outside [0, {scene.T})")
        return json_response({"timestep_id": scene.timestep_ids[t], "metrics": scene.frame_figures(t)})

    def screenshot(q, b):
        t, c = _index(b, "t"), _index(b, "c")
        opt = _options(b)
        img = scene.render(t, c, opt)
        from PIL import Image

        from vhap.utils.atomic import atomic_path

        folder = scene.root / "screenshots"
        folder.mkdir(exist_ok=True)
        cam = scene.camera_ids[c] or str(c)
        path = folder / f"{scene.timestep_ids[t]}_cam{cam}_{opt.mode}_{time.strftime('%H%M%S')}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
        return json_response({"path": str(path)})

    def turntable(q, b):
        t, c = _index(b, "t"), _index(b, "c")
        opt = _options(b)
        n = int(b.get("frames", 36))
        fps = float(b.get("fps", 12))
        if not 1 <= fps <= 60:
            raise VhapError(f"turntable fps must be within 1..60, got {fps}")
        if not (0 <= t < scene.T and 0 <= c < scene.C):
            raise VhapError(f"frame ({t}, {c}) outside the run's {scene.T} timesteps x {scene.C} cameras")
        name = f"{scene.timestep_ids[t]}_cam{scene.camera_ids[c] or c}_{opt.mode}_{time.strftime('%H%M%S')}.mp4"
        path = scene.root / "turntables" / name
        write_turntable(scene, t, c, opt, path, n, fps)
        return json_response({"path": str(path), "frames": n})

    routes = {"/api/info": info, "/api/frame.png": frame, "/api/metrics": metrics, "/api/screenshot": screenshot,
              "/api/turntable": turntable}  # fmt: skip
    return App(VIEWER_PAGE, routes, title="vhap view")


def save_target(scope: Path | None, requested: str | None, name: str) -> Path:
    """Where ``/api/save`` may write: only the region file given on the command line, or a ``<file>.json``
    directly inside the folder given there (``requested`` a bare file name; default ``<name>.json``).

    A web page must not pick arbitrary paths on the user's disk, so ``requested`` is checked, not trusted.
    """
    if scope is None:
        raise VhapError(
            "no region file was given on the command line, so the page may not save",
            fix="restart with `vhap regions --regions-file FILE.json` (or a folder)",
        )
    scope = scope.resolve()
    if not scope.is_dir():
        if requested and Path(requested).expanduser().resolve() != scope:
            raise VhapError(f"the page may save only to {scope} (--regions-file)", path=requested)
        return scope
    target = (scope / Path(requested).expanduser()).resolve() if requested else scope
    if target == scope:  # the folder itself (the page shows it at start): one file per region name
        target = (scope / f"{name}.json").resolve()
    if target.parent != scope or target.suffix.lower() != ".json":
        raise VhapError(f"the page may save only <name>.json files directly inside {scope}", path=requested or name)
    return target


def regions_app(editor: RegionEditor, save_scope: Path | None = None) -> App:
    """``save_scope``: the region file or folder the page may write (default: the editor's file at start)."""
    scope = save_scope if save_scope is not None else editor.regions_file

    def state(q, b):
        return json_response(editor.state())

    def view(q, b):
        return png_response(editor.render())

    def show(q, b):
        names = b.get("names", [])
        if not isinstance(names, list):
            raise VhapError("'names' must be a list of region names")
        editor.set_shown([str(n) for n in names])
        return json_response(editor.state())

    def orbit(q, b):
        if b.get("reset"):
            editor.reset_camera()
        else:
            editor.orbit(float(b.get("d_yaw", 0.0)), float(b.get("d_pitch", 0.0)), float(b.get("zoom", 1.0)))
        return json_response(editor.state())

    def pose(q, b):
        expr = b.get("expr")
        editor.set_pose(
            None if b.get("jaw_open") is None else float(b["jaw_open"]),
            None if expr is None else [float(e) for e in expr],
        )
        return json_response(editor.state())

    def brush(q, b):
        radius = float(b.get("radius", 0.01))
        add = bool(b.get("add", True))
        changed = 0
        for x, y in b.get("points", []):
            changed += editor.brush(float(x), float(y), radius, add=add)
        out = editor.state()
        out["changed"] = changed
        return json_response(out)

    def edit(q, b):
        if "load" in b:
            editor.load_into_edit(str(b["load"]))
        if b.get("clear"):
            editor.clear_edit()
        if "name" in b:
            editor.edit_name = str(b["name"]).strip() or editor.edit_name
        return json_response(editor.state())

    def save(q, b):
        name = str(b.get("name") or editor.edit_name).strip()
        out = editor.save(save_target(scope, str(b.get("path") or "").strip() or None, name), name=name)
        st = editor.state()
        st["saved"] = str(out)
        return json_response(st)

    routes = {
        "/api/state": state,
        "/api/view.png": view,
        "/api/show": show,
        "/api/orbit": orbit,
        "/api/pose": pose,
        "/api/brush": brush,
        "/api/edit": edit,
        "/api/save": save,
    }
    return App(REGIONS_PAGE, routes, title="vhap regions")
