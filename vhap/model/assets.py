"""Head-model assets: the numpy-only description of a FLAME-structured head model.

:class:`HeadAssets` is what every loader returns (real FLAME files via :mod:`vhap.model.io`, the project's
open head model via :meth:`HeadAssets.load_npz`) and what :class:`vhap.model.head.HeadModel` consumes.

Conventions (FLAME's, so that real FLAME files map onto it one to one):

- metres, right-handed, +y up, +z out of the face, +x = subject's left;
- ``faces`` are counter-clockwise seen from outside; ``uvs`` use OBJ convention (v = 1 at the top of the
  texture image, i.e. ``base_texture[0]`` is the row at v = 1);
- ``posedirs`` is stored ``(V, 3, 36)`` exactly as in the FLAME pickle: column ``9*(j-1) + 3*r + c`` is the
  corrective for entry ``(r, c)`` of ``R_j - I`` of joint ``j`` in 1..4 (the root has no corrective);
- joints: 0 root (global), 1 neck, 2 jaw, 3 left eye, 4 right eye; ``parents[0] == -1``;
- ``regions`` maps a region name to vertex ids of the *no-teeth* topology (the teeth are appended by the
  head model); the lip rings are ordered (the teeth construction depends on the order).

File format of :meth:`HeadAssets.save_npz` (one compressed ``.npz``): arrays under their field names,
``region/<name>`` for each region, ``lmk_ibug/face_idx``, ``lmk_ibug/bary_coords``,
``lmk_ibug/landmark_ids`` (same for ``lmk_mediapipe/``), ``name`` and ``format_version``. Bases may be stored
as float16 and the texture as uint8 (``compact=True``) to keep the file small; loading always yields float32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

FORMAT_VERSION = 1
NUM_JOINTS = 5
JOINT_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)

_BASIS_FIELDS = ("shapedirs", "exprdirs", "posedirs")


@dataclass
class LandmarkEmbedding:
    """Landmarks as barycentric points on mesh faces.

    ``face_idx`` (K,) i64 indexes the faces of the *no-teeth* topology; ``bary_coords`` (K, 3) f32 are the
    weights of the face's three corners (in the order of ``faces[face_idx]``); ``landmark_ids`` (K,) i64 says
    which landmark of the detector convention each point is (e.g. MediaPipe-478 indices), ``None`` when the
    points are simply 0..K-1 (the iBUG-68 + 2 eyes embedding).
    """

    face_idx: np.ndarray
    bary_coords: np.ndarray
    landmark_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.face_idx = np.asarray(self.face_idx, dtype=np.int64).reshape(-1)
        self.bary_coords = np.asarray(self.bary_coords, dtype=np.float32).reshape(-1, 3)
        if self.landmark_ids is not None:
            self.landmark_ids = np.asarray(self.landmark_ids, dtype=np.int64).reshape(-1)

    @property
    def num_landmarks(self) -> int:
        return int(self.face_idx.shape[0])

    def validate(self, num_faces: int, what: str = "landmark embedding", path: str | Path | None = None) -> None:
        k = self.face_idx.shape[0]
        if self.bary_coords.shape != (k, 3):
            raise VhapError(
                f"{what}: bary_coords has shape {self.bary_coords.shape}, expected ({k}, 3)",
                path=path,
                fix="regenerate the asset file",
            )
        if k and (self.face_idx.min() < 0 or self.face_idx.max() >= num_faces):
            raise VhapError(
                f"{what}: face indices span [{self.face_idx.min()}, {self.face_idx.max()}] but the mesh has "
                f"{num_faces} faces",
                path=path,
                fix="use an embedding made for this mesh topology",
            )
        if not np.all(np.isfinite(self.bary_coords)):
            raise VhapError(f"{what}: barycentric coordinates are not finite", path=path, fix="regenerate it")
        if k and np.abs(self.bary_coords.sum(axis=1) - 1.0).max() > 1e-3:
            raise VhapError(
                f"{what}: barycentric coordinates do not sum to 1 (max error "
                f"{np.abs(self.bary_coords.sum(axis=1) - 1.0).max():.3g})",
                path=path,
                fix="use a valid barycentric embedding",
            )
        if self.landmark_ids is not None and self.landmark_ids.shape != (k,):
            raise VhapError(
                f"{what}: landmark_ids has shape {self.landmark_ids.shape}, expected ({k},)",
                path=path,
                fix="regenerate the asset file",
            )


@dataclass
class HeadAssets:
    """A FLAME-structured head model as plain numpy arrays (see the module docstring for conventions).

    Shapes (V0 vertices, F0 faces, VT0 UV vertices, NS/NE shape/expression bases, all without teeth):
    ``v_template`` (V0,3) f32, ``faces`` (F0,3) i64, ``uvs`` (VT0,2) f32, ``uv_faces`` (F0,3) i64,
    ``shapedirs`` (V0,3,NS) f32, ``exprdirs`` (V0,3,NE) f32, ``posedirs`` (V0,3,36) f32,
    ``J_regressor`` (5,V0) f32 dense, ``lbs_weights`` (V0,5) f32, ``parents`` (5,) i64,
    ``regions`` {name: (n,) i64}, ``base_texture`` (Ht,Wt,3) f32 in [0,1] with row 0 = top (v = 1).
    """

    name: str
    v_template: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray  # noqa: N815 - FLAME's name
    lbs_weights: np.ndarray
    parents: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    landmarks_ibug: LandmarkEmbedding | None = None
    landmarks_mediapipe: LandmarkEmbedding | None = None
    base_texture: np.ndarray | None = None

    def __post_init__(self) -> None:
        f32 = np.float32
        self.v_template = np.asarray(self.v_template, dtype=f32)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.uvs = np.asarray(self.uvs, dtype=f32)
        self.uv_faces = np.asarray(self.uv_faces, dtype=np.int64)
        self.shapedirs = np.asarray(self.shapedirs, dtype=f32)
        self.exprdirs = np.asarray(self.exprdirs, dtype=f32)
        self.posedirs = np.asarray(self.posedirs, dtype=f32)
        self.J_regressor = np.asarray(self.J_regressor, dtype=f32)
        self.lbs_weights = np.asarray(self.lbs_weights, dtype=f32)
        self.parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        self.regions = {str(k): np.asarray(v, dtype=np.int64).reshape(-1) for k, v in self.regions.items()}
        if self.base_texture is not None:
            tex = np.asarray(self.base_texture)
            self.base_texture = (tex.astype(f32) / 255.0) if tex.dtype == np.uint8 else tex.astype(f32)

    # ------------------------------------------------------------------ sizes
    @property
    def num_verts(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    # ------------------------------------------------------------------ checks
    def validate(self, path: str | Path | None = None) -> HeadAssets:
        """Check shapes, dtypes and index ranges; raise :class:`VhapError` naming the first problem."""
        fix = "regenerate or re-download the head-model files (`vhap assets check` lists what is expected)"

        def fail(msg: str) -> None:
            raise VhapError(f"head model '{self.name}': {msg}", path=path, fix=fix)

        def check_shape(name: str, arr: np.ndarray, shape: tuple) -> None:
            if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape, strict=True)):
                want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
                fail(f"{name} has shape {tuple(arr.shape)}, expected {want}")

        def check_finite(name: str, arr: np.ndarray) -> None:
            if not np.all(np.isfinite(arr)):
                fail(f"{name} contains NaN or Inf")

        check_shape("v_template", self.v_template, (None, 3))
        v0 = self.num_verts
        if v0 < 3:
            fail(f"v_template has only {v0} vertices")
        check_shape("faces", self.faces, (None, 3))
        f0 = self.num_faces
        check_shape("uvs", self.uvs, (None, 2))
        check_shape("uv_faces", self.uv_faces, (f0, 3))
        check_shape("shapedirs", self.shapedirs, (v0, 3, None))
        check_shape("exprdirs", self.exprdirs, (v0, 3, None))
        check_shape("posedirs", self.posedirs, (v0, 3, NUM_POSE_FEATURES))
        check_shape("J_regressor", self.J_regressor, (NUM_JOINTS, v0))
        check_shape("lbs_weights", self.lbs_weights, (v0, NUM_JOINTS))
        check_shape("parents", self.parents, (NUM_JOINTS,))
        for name in ("v_template", "uvs", *_BASIS_FIELDS, "J_regressor", "lbs_weights"):
            check_finite(name, getattr(self, name))
        if f0 and (self.faces.min() < 0 or self.faces.max() >= v0):
            fail(f"faces index vertices [{self.faces.min()}, {self.faces.max()}] but there are {v0} vertices")
        vt0 = self.uvs.shape[0]
        if f0 and (self.uv_faces.min() < 0 or self.uv_faces.max() >= vt0):
            fail(f"uv_faces index [{self.uv_faces.min()}, {self.uv_faces.max()}] but there are {vt0} UV vertices")
        if self.parents[0] != -1:
            fail(f"parents[0] must be -1 (root), got {self.parents[0]}")
        for j in range(1, NUM_JOINTS):
            if not 0 <= self.parents[j] < j:
                fail(f"parents[{j}] = {self.parents[j]} must be a joint before it (0..{j - 1})")
        if np.abs(self.lbs_weights.sum(axis=1) - 1.0).max() > 1e-3:
            fail("lbs_weights rows must sum to 1")
        for name, ids in self.regions.items():
            if ids.size and (ids.min() < 0 or ids.max() >= v0):
                fail(f"region '{name}' has vertex ids outside [0, {v0})")
        if self.landmarks_ibug is not None:
            self.landmarks_ibug.validate(f0, f"head model '{self.name}': iBUG landmark embedding", path)
        if self.landmarks_mediapipe is not None:
            self.landmarks_mediapipe.validate(f0, f"head model '{self.name}': MediaPipe landmark embedding", path)
            if self.landmarks_mediapipe.landmark_ids is None:
                fail("the MediaPipe landmark embedding needs landmark_ids (MediaPipe-478 indices)")
        if self.base_texture is not None:
            check_shape("base_texture", self.base_texture, (None, None, 3))
            check_finite("base_texture", self.base_texture)
        return self

    # ------------------------------------------------------------------ npz I/O
    def save_npz(self, path: str | Path, compact: bool = True) -> None:
        """Write one compressed ``.npz`` (atomically). ``compact`` stores bases as float16, texture as uint8."""
        from vhap.utils.atomic import atomic_path

        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "name": np.array(self.name),
            "v_template": self.v_template,
            "faces": self.faces,
            "uvs": self.uvs,
            "uv_faces": self.uv_faces,
            "J_regressor": self.J_regressor,
            "lbs_weights": self.lbs_weights,
            "parents": self.parents,
        }
        for name in _BASIS_FIELDS:
            arr = getattr(self, name)
            arrays[name] = arr.astype(np.float16) if compact else arr
        for name, ids in self.regions.items():
            arrays[f"region/{name}"] = ids
        for prefix, emb in (("lmk_ibug", self.landmarks_ibug), ("lmk_mediapipe", self.landmarks_mediapipe)):
            if emb is None:
                continue
            arrays[f"{prefix}/face_idx"] = emb.face_idx
            arrays[f"{prefix}/bary_coords"] = emb.bary_coords
            if emb.landmark_ids is not None:
                arrays[f"{prefix}/landmark_ids"] = emb.landmark_ids
        if self.base_texture is not None:
            tex = self.base_texture
            arrays["base_texture"] = (
                np.clip(np.round(tex * 255.0), 0, 255).astype(np.uint8) if compact else tex.astype(np.float32)
            )
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)

    @classmethod
    def load_npz(cls, path: str | Path) -> HeadAssets:
        """Read a file written by :meth:`save_npz`; bases come back as float32. Validates the result."""
        path = Path(path)
        if not path.is_file():
            raise VhapError("head-model file not found", path=path, fix="generate it or point to the right file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as e:  # corrupt zip, truncated file, ...
            raise VhapError(f"cannot read head-model npz ({e})", path=path, fix="regenerate the file") from e
        version = int(arrays.get("format_version", np.array(-1)))
        if version != FORMAT_VERSION:
            raise VhapError(
                f"unsupported head-model format_version {version} (this code reads {FORMAT_VERSION})",
                path=path,
                fix="regenerate the file with this version of vhap",
            )
        required = ("name", "v_template", "faces", "uvs", "uv_faces", *_BASIS_FIELDS, "J_regressor")
        required += ("lbs_weights", "parents")
        missing = [k for k in required if k not in arrays]
        if missing:
            raise VhapError(f"head-model npz lacks keys {missing}", path=path, fix="regenerate the file")

        def embedding(prefix: str) -> LandmarkEmbedding | None:
            if f"{prefix}/face_idx" not in arrays:
                return None
            return LandmarkEmbedding(
                face_idx=arrays[f"{prefix}/face_idx"],
                bary_coords=arrays[f"{prefix}/bary_coords"],
                landmark_ids=arrays.get(f"{prefix}/landmark_ids"),
            )

        assets = cls(
            name=str(arrays["name"]),
            v_template=arrays["v_template"],
            faces=arrays["faces"],
            uvs=arrays["uvs"],
            uv_faces=arrays["uv_faces"],
            shapedirs=arrays["shapedirs"],
            exprdirs=arrays["exprdirs"],
            posedirs=arrays["posedirs"],
            J_regressor=arrays["J_regressor"],
            lbs_weights=arrays["lbs_weights"],
            parents=arrays["parents"],
            regions={k[len("region/") :]: v for k, v in arrays.items() if k.startswith("region/")},
            landmarks_ibug=embedding("lmk_ibug"),
            landmarks_mediapipe=embedding("lmk_mediapipe"),
            base_texture=arrays.get("base_texture"),
        )
        return assets.validate(path)

    def replace(self, **changes) -> HeadAssets:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
