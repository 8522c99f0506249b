"""``vhap view RUN_DIR`` and ``vhap regions``: thin CLIs over :mod:`vhap.viewer.apps`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from vhap.config import AT_LEAST_ONE, Range, parse_config
from vhap.errors import VhapError

#: TCP ports (0: any free port)
PORT = Range(ge=0, le=65535)


@dataclass
class ViewConfig:
    """Web viewer of a tracking run: the tracked head over the input images, per frame and camera."""

    run_dir: Annotated[Path, tyro.conf.Positional] = Path("")
    """the run folder written by `vhap track` (or a folder of runs: the newest is shown)"""
    port: Annotated[int, PORT] = 8080
    """port to listen on (0 = any free port)"""
    host: str = "127.0.0.1"
    """interface to listen on; keep 127.0.0.1 and use an SSH tunnel from other machines (0.0.0.0 = everyone)"""
    epoch: Annotated[int, Range(ge=-1)] = -1
    """which tracked_flame_params_<epoch>.npz to show (-1 = the final parameters)"""
    head_model: str | None = None
    """override the head model the run records (open | flame2023 | flame2023_open | flame2020 | DIR)"""
    max_size: Annotated[int, AT_LEAST_ONE] = 768
    """longest side of the rendered pictures (larger tracking images are scaled down to it)"""
    min_size: int = 512
    """smaller tracking images are rendered larger, at this longest side (0 = at tracking resolution)"""
    device: str = "cpu"
    """torch device of the renderer (cpu works everywhere; cuda uses nvdiffrast when installed)"""
    turntable: Path | None = None
    """write a turntable video (one turn around the head) to this .mp4 and exit, without serving"""
    turntable_frame: int = 0
    """timestep index of the turntable"""
    turntable_camera: int = 0
    """camera index the turn starts from"""
    turntable_mode: Literal["textured", "shaded", "normals", "wireframe"] = "textured"
    """render mode of the turntable"""
    turntable_frames: int = 36
    """pictures per turn (2..720)"""


@dataclass
class RegionsConfig:
    """Web inspector / editor of the head model's region masks; saves user region files (JSON)."""

    head_model: str = "open"
    """open | flame2023 | flame2023_open | flame2020 | a folder with FLAME files | a head-model .npz"""
    regions_file: Path | None = None
    """region file to start from and save to (JSON {name: [vertex ids]}); created on save if absent"""
    port: Annotated[int, PORT] = 8081
    """port to listen on (0 = any free port)"""
    host: str = "127.0.0.1"
    """interface to listen on; keep 127.0.0.1 and use an SSH tunnel from other machines (0.0.0.0 = everyone)"""
    image_size: Annotated[int, AT_LEAST_ONE] = 640
    """side of the rendered view in pixels"""
    device: str = "cpu"


def _serve(app, host: str, port: int, what: str) -> int:
    from vhap.viewer.server import access_hint, make_server, serve_forever

    server = make_server(app, host, port, quiet=True)
    bound_port = server.server_address[1]
    print(access_hint(host, bound_port, what, server.token), flush=True)
    serve_forever(server)
    return 0


def view_main(argv: list[str]) -> int:
    cfg = parse_config(ViewConfig, argv, prog="vhap view")
    if not str(cfg.run_dir) or str(cfg.run_dir) == ".":
        if not (Path(".") / "tracked_flame_params.npz").is_file():
            raise VhapError("no run folder given", fix="vhap view RUN_DIR (the output folder of `vhap track`)")
    from vhap.viewer.apps import viewer_app
    from vhap.viewer.scene import RunScene

    print(f"vhap view: loading {cfg.run_dir} …", flush=True)
    scene = RunScene(
        cfg.run_dir,
        epoch=cfg.epoch,
        head_model=cfg.head_model,
        max_size=cfg.max_size,
        min_size=cfg.min_size,
        device=cfg.device,
    )
    print(f"  {scene.T} timesteps x {scene.C} camera(s), head model {scene.run.head_model}", flush=True)
    if cfg.turntable is not None:
        from vhap.viewer.apps import write_turntable
        from vhap.viewer.scene import ViewOptions

        if cfg.turntable.suffix.lower() != ".mp4":
            raise VhapError("the turntable is written as H.264 mp4", path=cfg.turntable, fix="name it *.mp4")
        t, c = cfg.turntable_frame, cfg.turntable_camera
        if not (0 <= t < scene.T and 0 <= c < scene.C):
            raise VhapError(f"frame ({t}, {c}) outside the run's {scene.T} timesteps x {scene.C} cameras")
        opt = ViewOptions(mode=cfg.turntable_mode, background="black")
        write_turntable(scene, t, c, opt, cfg.turntable, cfg.turntable_frames)
        print(f"turntable: {cfg.turntable}", flush=True)
        return 0
    return _serve(viewer_app(scene), cfg.host, cfg.port, "view")


def regions_main(argv: list[str]) -> int:
    cfg = parse_config(RegionsConfig, argv, prog="vhap regions")
    from vhap.viewer.apps import regions_app
    from vhap.viewer.regions import RegionEditor

    editor = RegionEditor(
        cfg.head_model, cfg.regions_file, image_size=(cfg.image_size, cfg.image_size), device=cfg.device
    )
    print(f"vhap regions: head model {cfg.head_model} ({editor.num_verts} vertices)", flush=True)
    return _serve(regions_app(editor), cfg.host, cfg.port, "regions")
