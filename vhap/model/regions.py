"""Region vocabulary of a head model (VHAP_SPEC §2.4): vertex, face and UV sets, and the cluster table.

A :class:`RegionSet` holds named vertex-id sets. Stored regions come from the assets (FLAME_masks names and
the custom names, the teeth regions after the teeth are added); *derived* regions are computed here from
them when absent:

``hair`` = scalp − (face ∪ neck); ``ears``; ``eyeballs``; ``irises``; ``left_eye`` = left_eye_region ∪
left_eyeball (same for right); ``eyelids``; ``lip_inside_ring`` = both inner rings (FLAME assets store it
with the two mouth-corner vertices); ``sclerae`` = eyeballs − irises; ``skin`` = all head (non-teeth) vertices
except eyeballs, hair, lips_tight and boundary; ``teeth`` = teeth_upper ∪ teeth_lower.

Face regions: a face is in a region iff all three of its vertices are. UV-vertex regions: every UV index used
by a face corner whose vertex is in the region.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vhap.errors import VhapError

#: derived name → (operation, ingredient names); "union" of all, or "minus" (first − union of the rest)
_DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "ears": ("union", ("left_ear", "right_ear")),
    "eyeballs": ("union", ("left_eyeball", "right_eyeball")),
    "irises": ("union", ("left_iris", "right_iris")),
    "left_eye": ("union", ("left_eye_region", "left_eyeball")),
    "right_eye": ("union", ("right_eye_region", "right_eyeball")),
    "eyelids": ("union", ("left_eyelid", "right_eyelid")),
    "lip_inside_ring": ("union", ("lip_inside_ring_upper", "lip_inside_ring_lower")),
    "hair": ("minus", ("scalp", "face", "neck")),
    "sclerae": ("minus", ("eyeballs", "irises")),
    "teeth": ("union", ("teeth_upper", "teeth_lower")),
}
_SKIN_EXCLUDES = ("eyeballs", "hair", "lips_tight", "boundary")


def _as_names(names: str | Iterable[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


class RegionSet:
    """Named vertex regions of a mesh with ``num_verts`` vertices, ``faces`` (F,3) and ``uv_faces`` (F,3)."""

    def __init__(
        self,
        regions: dict[str, np.ndarray],
        faces: np.ndarray,
        uv_faces: np.ndarray | None = None,
        uvs: np.ndarray | None = None,
        num_verts: int | None = None,
    ):
        self.faces = np.asarray(faces, dtype=np.int64)
        self.uv_faces = None if uv_faces is None else np.asarray(uv_faces, dtype=np.int64)
        self.uvs = None if uvs is None else np.asarray(uvs, dtype=np.float32)
        self.num_verts = int(self.faces.max() + 1 if num_verts is None else num_verts)
        self._regions: dict[str, np.ndarray] = {}
        for name, ids in regions.items():
            self.add(name, ids)
        self._derive()

    # ------------------------------------------------------------------ construction
    def add(self, name: str, ids) -> None:
        """Add or replace a region (vertex ids, any order; stored sorted and unique)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_verts):
            raise VhapError(
                f"region '{name}' has vertex ids outside [0, {self.num_verts})",
                fix="check that the region file was made for this head model",
            )
        self._regions[name] = ids

    def _derive(self) -> None:
        for name, (op, parts) in _DERIVED.items():
            if name in self._regions or not all(p in self._regions for p in parts[:1]):
                continue
            if op == "union":
                if not all(p in self._regions for p in parts):
                    continue
                self._regions[name] = np.unique(np.concatenate([self._regions[p] for p in parts]))
            else:
                rest = [self._regions[p] for p in parts[1:] if p in self._regions]
                self._regions[name] = np.setdiff1d(self._regions[parts[0]], np.concatenate(rest) if rest else [])
        if "skin" not in self._regions:
            head = np.setdiff1d(np.arange(self.num_verts), self._regions.get("teeth", []))
            excluded = [self._regions[n] for n in _SKIN_EXCLUDES if n in self._regions]
            self._regions["skin"] = np.setdiff1d(head, np.concatenate(excluded)) if excluded else head

    # ------------------------------------------------------------------ queries
    @property
    def names(self) -> list[str]:
        return sorted(self._regions)

    def __contains__(self, name: str) -> bool:
        return name in self._regions

    def _check(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self._regions]
        if unknown:
            raise VhapError(
                f"unknown region name(s) {unknown}",
                fix=f"use region names of this head model: {', '.join(self.names)}",
            )

    def vertex_ids(self, names: str | Iterable[str]) -> np.ndarray:
        """Sorted unique vertex ids of the union of the named regions."""
        names = _as_names(names)
        self._check(names)
        if not names:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([self._regions[n] for n in names]))

    def vertex_ids_except(self, names: str | Iterable[str]) -> np.ndarray:
        """All vertex ids not in the union of the named regions."""
        return np.setdiff1d(np.arange(self.num_verts), self.vertex_ids(names))

    def vertex_mask(self, names: str | Iterable[str]) -> np.ndarray:
        """(V,) bool."""
        mask = np.zeros(self.num_verts, dtype=bool)
        mask[self.vertex_ids(names)] = True
        return mask

    def face_mask(self, names: str | Iterable[str]) -> np.ndarray:
        """(F,) bool: faces whose three vertices are all in the union of the named regions."""
        return self.vertex_mask(names)[self.faces].all(axis=1)

    def face_ids(self, names: str | Iterable[str]) -> np.ndarray:
        return np.flatnonzero(self.face_mask(names))

    def uv_vertex_ids(self, names: str | Iterable[str]) -> np.ndarray:
        """UV indices used by a face corner whose vertex is in the union of the named regions."""
        if self.uv_faces is None:
            raise VhapError("this region set has no UVs", fix="build it with uv_faces")
        corner_in = self.vertex_mask(names)[self.faces]
        return np.unique(self.uv_faces[corner_in])

    def uv_mask(self, names: str | Iterable[str], size: int = 512) -> np.ndarray:
        """(size, size) bool UV-space mask, row 0 = top (v = 1): the region's faces rasterised in UV space."""
        from PIL import Image, ImageDraw

        if self.uv_faces is None or self.uvs is None:
            raise VhapError("this region set has no UVs", fix="build it with uvs and uv_faces")
        image = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(image)
        tri = self.uvs[self.uv_faces[self.face_mask(names)]]  # (n, 3, 2)
        px = np.stack([tri[..., 0] * size, (1.0 - tri[..., 1]) * size], axis=-1)
        for corners in px:
            draw.polygon([tuple(c) for c in corners], fill=255, outline=255)
        return np.asarray(image) > 127

    def face_cluster_table(self, cluster_names: Iterable[str]) -> np.ndarray:
        """(F,) i64 face→cluster id: 1 = in no listed cluster, 2+k = cluster k of the list (0 = background).

        Later clusters overwrite earlier ones on shared faces. Unknown names are skipped with a warning; the
        ids of the other clusters still follow their list position.
        """
        table = np.ones(len(self.faces), dtype=np.int64)
        for k, name in enumerate(cluster_names):
            if name not in self._regions:
                warnings.warn(f"face cluster '{name}' is not a region of this head model; skipped", stacklevel=2)
                continue
            table[self.face_mask(name)] = 2 + k
        return table

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self._regions)


# ---------------------------------------------------------------------------------- user region files
def load_region_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read a user region file: JSON ``{name: [vertex ids]}`` (written by the viewer's region editor)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise VhapError("region file not found", path=path, fix="check the path in the tracker config") from e
    except json.JSONDecodeError as e:
        raise VhapError(f"region file is not valid JSON ({e})", path=path, fix="re-save it from the editor") from e
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(i, int) for i in v) for v in data.values()
    ):
        raise VhapError("region file must map names to lists of vertex ids", path=path, fix="re-save it")
    return {str(k): np.asarray(v, dtype=np.int64) for k, v in data.items()}


def save_region_file(path: str | Path, regions: dict[str, Iterable[int]]) -> None:
    from vhap.utils.atomic import write_text_atomic

    data = {name: [int(i) for i in np.asarray(ids).reshape(-1)] for name, ids in sorted(regions.items())}
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
