"""Head-model specs for the synthetic sets: ``open`` (default) or the FLAME-topology stand-in of ``../shared``.

The stand-in folder keeps its FLAME pickles apart from the shared topology files one level up, which
:func:`vhap.model.load_head_assets` does not search; :func:`resolve_head_model` therefore converts it once into
a head-model ``.npz`` (research-licensed data: written under the caller's data folder, never into the repo)
and returns that file's path, which both the generator and ``vhap track --model.head-model`` accept.
"""

from __future__ import annotations

from pathlib import Path

from vhap.errors import VhapError

#: ``../shared/flame-topology/standin`` next to the repository (present on the development machines only).
STANDIN_DIR = Path(__file__).resolve().parents[3] / "shared" / "flame-topology" / "standin"


def resolve_head_model(spec: str, cache_dir: str | Path) -> str:
    """Turn ``standin`` (or the stand-in folder itself) into a loadable ``.npz`` path; other specs pass through."""
    path = Path(spec).expanduser()
    is_standin = spec == "standin" or (
        path.is_dir() and (path / "flame2023.pkl").is_file() and not (path / "head_template_mesh.obj").is_file()
    )
    if not is_standin:
        return spec
    folder = STANDIN_DIR if spec == "standin" else path
    if not (folder / "flame2023.pkl").is_file():
        raise VhapError(
            "the FLAME-topology stand-in is not available", path=folder, fix="use --head-model open (the default)"
        )
    out = Path(cache_dir) / "head_models" / "flame_standin.npz"
    if not out.is_file():
        from vhap.model.io import load_flame_assets
        from vhap.utils.atomic import atomic_path

        assets = load_flame_assets(folder / "flame2023.pkl", dirs=[folder, folder.parent], name="flame_standin")
        with atomic_path(out) as tmp:
            assets.save_npz(tmp)
    return str(out)
