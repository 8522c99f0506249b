"""Mesh files: OBJ (with UVs, MTL and texture PNG) and PLY. Outputs are written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vhap.errors import VhapError
from vhap.utils.atomic import atomic_path, write_text_atomic


@dataclass
class ObjMesh:
    """An OBJ's contents: verts (V,3) f32, faces (F,3) i64, uvs (VT,2) f32 | None, uv_faces (F,3) i64 | None."""

    verts: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None
    uv_faces: np.ndarray | None


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def read_obj(path: str | Path) -> ObjMesh:
    """Read vertices, triangle faces and (optional) UVs. Polygons with >3 corners are fan-triangulated."""
    path = Path(path)
    if not path.is_file():
        raise VhapError("OBJ file not found", path=path, fix="check the path")
    verts, uvs, faces, uv_faces = [], [], [], []
    has_uv_faces = True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("v "):
                    verts.append([float(t) for t in line.split()[1:4]])
                elif line.startswith("vt "):
                    uvs.append([float(t) for t in line.split()[1:3]])
                elif line.startswith("f "):
                    corners = [c.split("/") for c in line.split()[1:]]
                    vid = [int(c[0]) for c in corners]
                    tid = [int(c[1]) if len(c) > 1 and c[1] else 0 for c in corners]
                    for k in range(1, len(corners) - 1):
                        faces.append([vid[0], vid[k], vid[k + 1]])
                        uv_faces.append([tid[0], tid[k], tid[k + 1]])
                        has_uv_faces &= 0 not in (tid[0], tid[k], tid[k + 1])
    except ValueError as e:
        raise VhapError(f"malformed OBJ ({e})", path=path, fix="re-export the mesh as a triangle OBJ") from e
    if not verts or not faces:
        raise VhapError("OBJ has no vertices or no faces", path=path, fix="check that this is a mesh OBJ file")

    def fix_index(idx: np.ndarray, n: int) -> np.ndarray:  # OBJ is 1-based, negative = relative to the end
        return np.where(idx < 0, idx + n, idx - 1)

    v = np.asarray(verts, dtype=np.float32)
    f = fix_index(np.asarray(faces, dtype=np.int64), len(v))
    if f.min() < 0 or f.max() >= len(v):
        raise VhapError("OBJ face indices out of range", path=path, fix="re-export the mesh")
    uv = np.asarray(uvs, dtype=np.float32) if uvs else None
    uvf = None
    if uv is not None and has_uv_faces:
        uvf = fix_index(np.asarray(uv_faces, dtype=np.int64), len(uv))
        if uvf.min() < 0 or uvf.max() >= len(uv):
            raise VhapError("OBJ texture-coordinate indices out of range", path=path, fix="re-export the mesh")
    return ObjMesh(verts=v, faces=f, uvs=uv, uv_faces=uvf)


def write_obj(
    path: str | Path,
    verts,
    faces,
    uvs=None,
    uv_faces=None,
    texture=None,
    normals=None,
    texture_file: str | None = None,
) -> None:
    """Write a triangle OBJ; with ``uvs``/``uv_faces`` also UVs, and with ``texture`` an MTL + PNG next to it.

    verts (V,3), faces (F,3) 0-based, uvs (VT,2) OBJ convention (v up), uv_faces (F,3),
    texture (H,W,3) float in [0,1] or uint8, row 0 = top (v = 1); normals (V,3) optional.
    ``texture_file``: instead of ``texture``, the name of a PNG already next to the OBJ for the MTL to reference
    (meshes sharing one texture then encode it once).
    """
    path = Path(path)
    verts, faces = _as_numpy(verts), _as_numpy(faces).astype(np.int64)
    lines = []
    if texture is not None or texture_file is not None:
        if uvs is None or uv_faces is None:
            raise VhapError("a texture needs uvs and uv_faces", path=path, fix="pass the model's uvs / uv_faces")
        stem = path.stem
        mtl_name, png_name = f"{stem}.mtl", texture_file or f"{stem}.png"
        if texture is not None:
            _write_png(path.with_name(png_name), _as_numpy(texture))
        write_text_atomic(
            path.with_name(mtl_name),
            f"newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {png_name}\n",
        )
        lines += [f"mtllib {mtl_name}", "usemtl material_0"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts.reshape(-1, 3)]
    if normals is not None:
        lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in _as_numpy(normals).reshape(-1, 3)]
    f1 = faces + 1
    if uvs is not None and uv_faces is not None:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in _as_numpy(uvs).reshape(-1, 2)]
        t1 = _as_numpy(uv_faces).astype(np.int64) + 1
        if normals is not None:
            lines += [
                f"f {a}/{ta}/{a} {b}/{tb}/{b} {c}/{tc}/{c}" for (a, b, c), (ta, tb, tc) in zip(f1, t1, strict=True)
            ]
        else:
            lines += [f"f {a}/{ta} {b}/{tb} {c}/{tc}" for (a, b, c), (ta, tb, tc) in zip(f1, t1, strict=True)]
    elif normals is not None:
        lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in f1]
    else:
        lines += [f"f {a} {b} {c}" for a, b, c in f1]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        # zlib level 1: a 2048² texture encodes several times faster than at PIL's default 6, ~10 % larger
        Image.fromarray(image).save(tmp, compress_level=1)


def write_ply(path: str | Path, verts, faces=None, colors=None) -> None:
    """Write a binary little-endian PLY: verts (V,3), faces (F,3) optional, colors (V,3) uint8 or [0,1] optional."""
    path = Path(path)
    verts = _as_numpy(verts).astype("<f4").reshape(-1, 3)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(verts)}"]
    header += ["property float x", "property float y", "property float z"]
    vdtype = [("xyz", "<f4", 3)]
    if colors is not None:
        colors = _as_numpy(colors)
        if colors.dtype != np.uint8:
            colors = np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        vdtype.append(("rgb", "u1", 3))
    if faces is not None:
        faces = _as_numpy(faces).astype("<i4").reshape(-1, 3)
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")
    vrec = np.empty(len(verts), dtype=vdtype)
    vrec["xyz"] = verts
    if colors is not None:
        vrec["rgb"] = colors.reshape(-1, 3)
    body = vrec.tobytes()
    if faces is not None:
        frec = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", 3)])
        frec["n"] = 3
        frec["idx"] = faces
        body += frec.tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\n".join(header) + "\n").encode("ascii") + body)
