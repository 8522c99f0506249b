"""Reading head-model files: real FLAME pickles (without chumpy), masks, landmark embeddings, textures.

FLAME's pickles were written by Python 2 with chumpy arrays and scipy sparse matrices inside. We never import
chumpy: :class:`FlameUnpickler` maps every ``chumpy.*`` class to a placeholder that only records its pickled
state, and every ``scipy.sparse`` class to a placeholder that records the raw CSR/CSC/COO arrays; after
unpickling, placeholders are turned into numpy arrays / modern scipy matrices (:func:`to_numpy`).

Search order for FLAME files: ``$VHAP_FLAME_DIR``, ``<repo>/assets/flame/``, ``~/.cache/vhap/flame``.
"""

from __future__ import annotations

import io as _io
import os
import pickle
from pathlib import Path

import numpy as np

from vhap.errors import VhapError
from vhap.model.assets import HeadAssets, LandmarkEmbedding
from vhap.model.open_head import OPEN_HEAD_FILES
from vhap.model.open_head import OPEN_HEAD_NPZ as OPEN_HEAD_NPZ  # re-exported for callers of this module

REPO_ROOT = Path(__file__).resolve().parents[2]

#: model spec → candidate pickle names (first found wins)
FLAME_MODEL_FILES: dict[str, tuple[str, ...]] = {
    "flame2023": ("flame2023.pkl",),
    "flame2023_open": ("flame2023_Open.pkl", "flame2023_open.pkl"),
    "flame2020": ("generic_model.pkl", "flame2020.pkl"),
}
MASKS_FILE = "FLAME_masks.pkl"
TEMPLATE_OBJ = "head_template_mesh.obj"
IBUG_EMBEDDING_FILE = "landmark_embedding_with_eyes.npy"
MEDIAPIPE_EMBEDDING_FILE = "mediapipe_landmark_embedding.npz"
TEXTURE_FILE = "tex_mean_painted.png"
#: fallback albedo when no painted texture is found (a neutral light skin tone)
FALLBACK_SKIN_RGB = (0.80, 0.62, 0.53)
HEAD_MODEL_SPECS = (*OPEN_HEAD_FILES, *FLAME_MODEL_FILES)


# ----------------------------------------------------------------------------------------- unpickling
class ChumpyStub:
    """Stands in for any chumpy class; keeps the pickled state (chumpy keeps its value under ``'x'``)."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __reduce__(self):  # pragma: no cover - never re-pickled
        raise TypeError("chumpy placeholders cannot be pickled")


class SparseStub:
    """Stands in for a (possibly very old) scipy.sparse matrix; rebuilt with the current scipy afterwards."""

    sparse_class = "csc_matrix"

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state


def _stub_class(base: type, attr: str, value: str) -> type:
    return type(base.__name__, (base,), {attr: value})


class FlameUnpickler(pickle.Unpickler):
    """latin1-capable unpickler that never imports chumpy and tolerates old scipy / numpy module paths."""

    def __init__(self, file, **kwargs):
        kwargs.setdefault("encoding", "latin1")
        super().__init__(file, **kwargs)

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _stub_class(ChumpyStub, "chumpy_class", f"{module}.{name}")
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            return _stub_class(SparseStub, "sparse_class", name)
        if module.startswith("numpy.core"):  # numpy ≥ 2 moved numpy.core → numpy._core
            module = "numpy._core" + module[len("numpy.core") :]
        return super().find_class(module, name)


def load_pickle(path: str | Path):
    """Unpickle a FLAME-style file (latin1, chumpy, old scipy) and convert placeholders to numpy/scipy."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = FlameUnpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError) as e:
        raise VhapError(f"cannot unpickle ({type(e).__name__}: {e})", path=path, fix="re-download the file") from e
    return to_numpy(raw, path)


def _state_dict(state) -> dict:
    if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
        merged = dict(state[0] or {})
        merged.update(state[1] or {})
        return merged
    return state if isinstance(state, dict) else {}


def to_numpy(obj, path: str | Path | None = None):
    """Recursively replace chumpy / sparse placeholders by numpy arrays / scipy sparse matrices."""
    if isinstance(obj, ChumpyStub):
        state = _state_dict(obj.state)
        for key in ("x", "r", "_r"):
            if key in state:
                return np.asarray(to_numpy(state[key], path))
        raise VhapError(
            f"a chumpy object of class {obj.chumpy_class} holds no plain array (keys {sorted(state)[:8]})",
            path=path,
            fix="use an original FLAME pickle; if it was re-saved, convert its arrays to numpy first",
        )
    if isinstance(obj, SparseStub):
        return _rebuild_sparse(obj, path)
    if isinstance(obj, dict):
        return {k: to_numpy(v, path) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy(v, path) for v in obj)
    return obj


def _rebuild_sparse(obj: SparseStub, path):
    import scipy.sparse as sp

    state = _state_dict(obj.state)
    shape = tuple(int(s) for s in state.get("_shape", state.get("shape", ())))
    kind = obj.sparse_class
    try:
        if kind in ("csc_matrix", "csr_matrix"):
            cls = sp.csc_matrix if kind == "csc_matrix" else sp.csr_matrix
            return cls((state["data"], state["indices"], state["indptr"]), shape=shape)
        if kind == "coo_matrix":
            row = state.get("row", state.get("coords", (None, None))[0])
            col = state.get("col", state.get("coords", (None, None))[1])
            return sp.coo_matrix((state["data"], (row, col)), shape=shape)
    except KeyError as e:
        raise VhapError(f"sparse matrix ({kind}) lacks field {e}", path=path, fix="re-download the file") from e
    raise VhapError(f"unsupported sparse matrix type {kind}", path=path, fix="re-download the file")


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)


# ----------------------------------------------------------------------------------------- FLAME pieces
def load_flame_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """A FLAME model pickle → dict with v_template, shapedirs (V,3,400), posedirs, J_regressor (dense), ..."""
    path = Path(path)
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise VhapError("not a FLAME model pickle (expected a dict)", path=path, fix="use the FLAME model .pkl")
    required = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
    missing = [k for k in required if k not in data]
    if missing:
        raise VhapError(f"FLAME model pickle lacks keys {missing}", path=path, fix="use the FLAME model .pkl")
    out = {k: _dense(data[k]) for k in required}
    parents = out["kintree_table"][0].astype(np.int64)
    parents[0] = -1  # stored as uint32(-1) or similar
    out["parents"] = parents
    return out


def load_flame_masks(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise VhapError("not a FLAME masks pickle (expected a dict)", path=path, fix="use FLAME_masks.pkl")
    return {str(k): np.asarray(v, dtype=np.int64).reshape(-1) for k, v in data.items()}


def _embedding_dict(path: Path) -> dict:
    """Read an embedding file of any supported container (npz, npy with a pickled dict, pkl) as a dict."""
    raw = path.read_bytes()
    if raw[:6] == b"\x93NUMPY" or raw[:2] == b"PK":
        try:
            loaded = np.load(_io.BytesIO(raw), allow_pickle=True, encoding="latin1")
        except Exception as e:
            raise VhapError(f"cannot read landmark embedding ({e})", path=path, fix="re-download the file") from e
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        if loaded.dtype == object and loaded.shape == ():
            loaded = loaded.item()
        if isinstance(loaded, dict):
            return loaded
        raise VhapError("landmark embedding .npy holds no dict", path=path, fix="use a FLAME landmark embedding")
    data = load_pickle(path)
    if isinstance(data, dict):
        return data
    raise VhapError("unrecognised landmark embedding file", path=path, fix="use a FLAME landmark embedding")


def _arr(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor inside VHAP's .npy
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def embedding_kind(data: dict) -> str | None:
    """'ibug70' (68 iBUG + 2 eyes), 'mediapipe' (MediaPipe-478 subset), or None, judged from the keys/shapes."""
    if "full_lmk_faces_idx" in data and "full_lmk_bary_coords" in data:
        return "ibug70"
    if {"landmark_indices", "lmk_face_idx", "lmk_b_coords"} <= set(data):
        return "mediapipe"
    return None


def load_landmark_embedding(path: str | Path) -> tuple[str, LandmarkEmbedding]:
    """Load a barycentric landmark embedding; returns (kind, embedding) with kind 'ibug70' or 'mediapipe'."""
    path = Path(path)
    data = _embedding_dict(path)
    kind = embedding_kind(data)
    if kind == "ibug70":
        emb = LandmarkEmbedding(
            face_idx=_arr(data["full_lmk_faces_idx"]).reshape(-1),
            bary_coords=_arr(data["full_lmk_bary_coords"]).reshape(-1, 3),
        )
        if emb.num_landmarks != 70:
            raise VhapError(
                f"iBUG embedding has {emb.num_landmarks} points, expected 70", path=path, fix="use the 68+2 file"
            )
    elif kind == "mediapipe":
        emb = LandmarkEmbedding(
            face_idx=_arr(data["lmk_face_idx"]).reshape(-1),
            bary_coords=_arr(data["lmk_b_coords"]).reshape(-1, 3),
            landmark_ids=_arr(data["landmark_indices"]).reshape(-1),
        )
    else:
        raise VhapError(
            f"unrecognised landmark embedding (keys {sorted(data)[:10]})",
            path=path,
            fix="use FLAME's landmark_embedding_with_eyes.npy or mediapipe_landmark_embedding.npz",
        )
    return kind, emb


def load_texture(path: str | Path) -> np.ndarray:
    """PNG/JPG → (H,W,3) float32 in [0,1], row 0 = top (alpha dropped)."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as e:
        raise VhapError(f"cannot read texture ({e})", path=path, fix="re-download the texture image") from e
    return rgb


def uniform_texture(size: int = 64, rgb=FALLBACK_SKIN_RGB) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float32), (size, size, 3)).copy()


# ----------------------------------------------------------------------------------------- search
def flame_search_dirs() -> list[Path]:
    """Where FLAME files are looked for, in order."""
    dirs = []
    env = os.environ.get("VHAP_FLAME_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(REPO_ROOT / "assets" / "flame")
    dirs.append(Path.home() / ".cache" / "vhap" / "flame")
    return dirs


def find_file(names: tuple[str, ...] | str, dirs: list[Path] | None = None) -> Path | None:
    names = (names,) if isinstance(names, str) else names
    for d in flame_search_dirs() if dirs is None else dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def _find_embeddings(dirs: list[Path]) -> dict[str, Path]:
    """Find embedding files by content: the usual names first, then any other .npy/.npz/.pkl in the dirs."""
    found: dict[str, Path] = {}
    candidates = [p for name in (IBUG_EMBEDDING_FILE, MEDIAPIPE_EMBEDDING_FILE) if (p := find_file(name, dirs))]
    skip = {MASKS_FILE, *[n for names in FLAME_MODEL_FILES.values() for n in names]}
    for d in dirs:
        if d.is_dir():
            candidates += sorted(p for p in d.iterdir() if p.suffix in (".npy", ".npz", ".pkl") and p.name not in skip)
    for p in candidates:
        if len(found) == 2:
            break
        try:
            kind = embedding_kind(_embedding_dict(p))
        except (VhapError, OSError):
            continue
        if kind and kind not in found:
            found[kind] = p
    return found


# ----------------------------------------------------------------------------------------- assembling
def load_flame_assets(model_path: str | Path, dirs: list[Path] | None = None, name: str | None = None) -> HeadAssets:
    """Build :class:`HeadAssets` from a FLAME model pickle plus the companion files found in ``dirs``.

    Companion files: ``head_template_mesh.obj`` (topology + UVs, required), ``FLAME_masks.pkl`` (required for
    regions), the landmark embeddings (recognised by content), ``tex_mean_painted.png`` (optional).
    """
    from vhap.model.flame_regions import flame_custom_regions
    from vhap.model.mesh_io import read_obj

    model_path = Path(model_path)
    dirs = [model_path.parent] if dirs is None else dirs
    flame = load_flame_pickle(model_path)
    num_verts = flame["v_template"].shape[0]

    obj_path = find_file(TEMPLATE_OBJ, dirs)
    if obj_path is None:
        raise VhapError(
            f"{TEMPLATE_OBJ} not found in {[str(d) for d in dirs]}",
            fix=f"put {TEMPLATE_OBJ} (from VHAP's asset/flame folder) next to the FLAME model",
        )
    obj = read_obj(obj_path)
    if obj.verts.shape[0] != num_verts or obj.uvs is None or obj.uv_faces is None:
        raise VhapError(
            f"template OBJ has {obj.verts.shape[0]} vertices (model: {num_verts}) or no UVs",
            path=obj_path,
            fix="use FLAME's head_template_mesh.obj with UVs",
        )
    masks_path = find_file(MASKS_FILE, dirs)
    if masks_path is None:
        raise VhapError(
            f"{MASKS_FILE} not found in {[str(d) for d in dirs]}",
            fix="download FLAME_masks.pkl from flame.is.tue.mpg.de and put it next to the FLAME model",
        )
    masks = load_flame_masks(masks_path)
    regions = dict(masks)
    regions.update(flame_custom_regions(flame["v_template"], obj.faces, masks))

    embeddings = _find_embeddings(dirs)
    if "ibug70" not in embeddings:
        raise VhapError(
            f"no 68+2 landmark embedding ({IBUG_EMBEDDING_FILE}) found in {[str(d) for d in dirs]}",
            fix=f"put {IBUG_EMBEDDING_FILE} (VHAP's asset/flame folder) next to the FLAME model",
        )
    _, ibug = load_landmark_embedding(embeddings["ibug70"])
    mediapipe = load_landmark_embedding(embeddings["mediapipe"])[1] if "mediapipe" in embeddings else None

    tex_path = find_file(TEXTURE_FILE, dirs)
    texture = load_texture(tex_path) if tex_path is not None else uniform_texture()

    shapedirs = flame["shapedirs"]
    n_total = shapedirs.shape[2]
    n_shape = 300 if n_total > 300 else n_total
    assets = HeadAssets(
        name=name or model_path.stem,
        v_template=flame["v_template"],
        faces=obj.faces,
        uvs=obj.uvs,
        uv_faces=obj.uv_faces,
        shapedirs=shapedirs[:, :, :n_shape],
        exprdirs=shapedirs[:, :, n_shape:],
        posedirs=flame["posedirs"],
        J_regressor=flame["J_regressor"],
        lbs_weights=flame["weights"],
        parents=flame["parents"],
        regions=regions,
        landmarks_ibug=ibug,
        landmarks_mediapipe=mediapipe,
        base_texture=texture,
    )
    return assets.validate(model_path)


def load_head_assets(spec: str | Path = "open") -> HeadAssets:
    """Load a head model: ``"open"`` (the project's own, v2), ``"open-v1"`` (its first version), ``"flame2023"``,
    ``"flame2023_open"``, ``"flame2020"``,
    or a directory holding a FLAME pickle (+ companions) or an ``open_head.npz``-style file.
    """
    spec_str = str(spec)
    if spec_str in OPEN_HEAD_FILES:
        path = OPEN_HEAD_FILES[spec_str]
        if not path.is_file():
            raise VhapError(
                f"the open head model file for '{spec_str}' is missing",
                path=path,
                fix="regenerate it with `python -m tools.open_head.generate` (from a source checkout), or select "
                "a FLAME model (`vhap assets check` shows what is available)",
            )
        assets = HeadAssets.load_npz(path)
        assets.name = spec_str
        return assets
    if spec_str in FLAME_MODEL_FILES:
        path = find_file(FLAME_MODEL_FILES[spec_str])
        if path is None:
            where = ", ".join(str(d) for d in flame_search_dirs())
            raise VhapError(
                f"FLAME model '{spec_str}' ({' or '.join(FLAME_MODEL_FILES[spec_str])}) not found in: {where}",
                fix="download it from https://flame.is.tue.mpg.de and put it (with FLAME_masks.pkl, "
                "head_template_mesh.obj and landmark_embedding_with_eyes.npy) into assets/flame/ or $VHAP_FLAME_DIR;"
                " run `vhap assets check` for details",
            )
        return load_flame_assets(path, dirs=[path.parent, *flame_search_dirs()], name=spec_str)
    directory = Path(spec_str).expanduser()
    if directory.is_file() and directory.suffix == ".npz":
        return HeadAssets.load_npz(directory)
    if not directory.is_dir():
        raise VhapError(
            f"unknown head model '{spec_str}'",
            fix=f"use one of {list(HEAD_MODEL_SPECS)} or a directory with FLAME files",
        )
    for names in FLAME_MODEL_FILES.values():
        path = find_file(names, [directory])
        if path is not None:
            return load_flame_assets(path, dirs=[directory], name=f"{directory.name}/{path.stem}")
    npz = sorted(directory.glob("*.npz"))
    for p in npz:
        try:
            with np.load(p) as data:
                if "format_version" in data.files and "v_template" in data.files:
                    return HeadAssets.load_npz(p)
        except (OSError, ValueError):
            continue
    raise VhapError(
        "no head model in this directory (expected a FLAME .pkl such as flame2023.pkl, or a head-model .npz)",
        path=directory,
        fix="point to the folder holding the FLAME files",
    )
