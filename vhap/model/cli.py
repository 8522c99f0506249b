"""``vhap assets check``: which head models are usable offline, what is found / missing, where to get it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vhap.errors import VhapError

FLAME_SITE = "https://flame.is.tue.mpg.de"
VHAP_ASSETS = "VHAP's repository, folder asset/flame (github.com/ShenhanQian/VHAP; CC-BY-NC-SA-4.0)"

#: file → (required?, where to get it)
FILE_SOURCES: dict[str, tuple[bool, str]] = {
    "flame2023.pkl": (True, f"FLAME 2023 from {FLAME_SITE} (free registration; FLAME non-commercial licence)"),
    "flame2023_Open.pkl": (True, f"FLAME 2023 Open from {FLAME_SITE} (CC-BY-4.0, no registration, still a download)"),
    "generic_model.pkl": (True, f"FLAME 2020 from {FLAME_SITE} (free registration; FLAME non-commercial licence)"),
    "FLAME_masks.pkl": (True, f"'FLAME vertex masks' from {FLAME_SITE} downloads"),
    "head_template_mesh.obj": (True, f"FLAME template with UVs, from {VHAP_ASSETS}"),
    "landmark_embedding_with_eyes.npy": (True, f"68+2 landmark embedding, from {VHAP_ASSETS}"),
    "mediapipe_landmark_embedding.npz": (False, f"'FLAME Mediapipe landmark embedding' from {FLAME_SITE} downloads"),
    "tex_mean_painted.png": (False, f"painted albedo, from {VHAP_ASSETS}; without it a uniform skin colour is used"),
}


@dataclass
class AssetsCheckConfig:
    """Report which head models can be loaded on this machine (offline) and what is missing."""

    model: str = "open"
    """head model to check in detail: open | flame2023 | flame2023_open | flame2020 | a directory"""
    strict: bool = False
    """exit with status 1 if the selected model cannot be loaded"""
    load: bool = True
    """actually load the selected model (slower, but proves it works)"""


def _model_files(spec: str) -> list[tuple[str, ...]]:
    from vhap.model.io import FLAME_MODEL_FILES, IBUG_EMBEDDING_FILE, MASKS_FILE, TEMPLATE_OBJ

    companions = [(MASKS_FILE,), (TEMPLATE_OBJ,), (IBUG_EMBEDDING_FILE,)]
    optional = [("mediapipe_landmark_embedding.npz",), ("tex_mean_painted.png",)]
    return [FLAME_MODEL_FILES[spec], *companions, *optional]


def check_assets(cfg: AssetsCheckConfig, out=print) -> bool:
    """Print the report; return whether the selected model is usable."""
    from vhap.model.io import FLAME_MODEL_FILES, OPEN_HEAD_FILES, find_file, flame_search_dirs, load_head_assets

    dirs = flame_search_dirs()
    out("FLAME files are searched in (first match wins):")
    for d in dirs:
        out(f"  {d}{'' if d.is_dir() else '   (does not exist)'}")
    out("")
    usable: dict[str, bool] = {}
    out("head models:")
    for spec, path in OPEN_HEAD_FILES.items():
        ok_open = path.is_file()
        usable[spec] = ok_open
        state = "found" if ok_open else "MISSING (regenerate it with tools/open_head)"
        out(f"  {spec:<15} {'usable ' if ok_open else 'missing'}  {path}  [{state}]")
    for spec in FLAME_MODEL_FILES:
        rows, ok = [], True
        for names in _model_files(spec):
            path = find_file(names, dirs)
            required, source = FILE_SOURCES.get(names[0], (True, ""))
            if path is not None:
                rows.append(f"      found    {path}")
            else:
                ok &= not required
                tag = "MISSING " if required else "optional"
                rows.append(f"      {tag} {' or '.join(names)} — get: {source}")
        usable[spec] = ok
        out(f"  {spec:<15} {'usable ' if ok else 'missing'}")
        for row in rows:
            out(row)
    out("")

    selected = cfg.model
    if selected not in usable and not Path(selected).expanduser().exists():
        out(f"selected model '{selected}': unknown (use one of {list(usable)} or a directory)")
        return False
    ok = usable.get(selected, True)
    if ok and cfg.load:
        try:
            assets = load_head_assets(selected)
            mp = assets.landmarks_mediapipe
            out(
                f"selected model '{selected}': loads — {assets.num_verts} vertices, {assets.num_faces} faces, "
                f"{assets.num_shape} shape / {assets.num_expr} expression bases, {len(assets.regions)} regions, "
                f"MediaPipe embedding: {'yes (' + str(mp.num_landmarks) + ' points)' if mp else 'no'}"
            )
        except VhapError as e:
            out(f"selected model '{selected}': cannot be loaded: {e}")
            ok = False
    elif not ok:
        out(f"selected model '{selected}': missing files (see above); `open` works without any download once generated")
    return ok


def assets_main(argv: list[str]) -> int:
    from vhap.config import parse_config

    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: vhap assets check [--model NAME|DIR] [--strict] [--no-load]\n")
        print("  check   report which head models are usable offline, what is found / missing, where to get it")
        return 0
    action: Literal["check"] | str = argv[0]
    if action != "check":
        raise VhapError(f"unknown action '{action}'", fix="use `vhap assets check`")
    cfg = parse_config(AssetsCheckConfig, argv[1:], prog="vhap assets check")
    ok = check_assets(cfg)
    return 1 if cfg.strict and not ok else 0
