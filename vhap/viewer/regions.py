"""Region inspector / editor of a head model, independent of the web page (``vhap.viewer.server`` drives it).

The head (neutral pose, teeth included) is seen by an orbit camera; chosen regions are shown as colour
overlays; one *edited* vertex set is painted with a brush. Picking is done on the server: the pixel's
triangle comes from the rendered triangle-id buffer, the exact hit point from a ray–triangle intersection,
and the brush takes every vertex within ``radius`` metres of the hit point. The result is a user region file
(JSON ``{name: [vertex ids]}``) written with :func:`vhap.model.regions.save_region_file`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vhap.errors import VhapError

#: overlay colours of the shown regions (cycled), RGB in [0, 1]
PALETTE = np.array(
    [
        [0.12, 0.47, 0.71],
        [1.00, 0.50, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ],
    dtype=np.float32,
)
EDIT_RGB = np.array([1.0, 0.0, 0.85], np.float32)  # the edited set: magenta, drawn over everything
BASE_RGB = np.array([0.78, 0.78, 0.78], np.float32)
NUM_EXPR_SLIDERS = 5


class RegionEditor:
    """Regions of a head model plus an editable vertex set.

    Args:
        head_model: ``open``, ``flame2023``, ``flame2023_open``, ``flame2020``, a folder or a head-model npz.
        regions_file: a user region file to start from (its regions are listed and editable); also the default
            path of :meth:`save`.
        image_size: (H, W) of the rendered view.
    """

    def __init__(
        self,
        head_model: str = "open",
        regions_file: str | Path | None = None,
        *,
        image_size: tuple[int, int] = (512, 512),
        device: str = "cpu",
    ):
        from vhap.model import HeadModel, load_head_assets
        from vhap.model.regions import load_region_file
        from vhap.render import MeshRenderer

        self.device = torch.device(device)
        self.head_model = str(head_model)
        assets = load_head_assets(head_model)
        self.num_expr_sliders = min(NUM_EXPR_SLIDERS, assets.num_expr)
        self.model = HeadModel(assets, n_shape=0, n_expr=self.num_expr_sliders, add_teeth=True).to(self.device)
        self.renderer = MeshRenderer("auto")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.jaw_open = 0.0
        self.expr = np.zeros(self.num_expr_sliders, np.float32)
        self._pose_mesh()
        v = self._verts_np
        self.target = (v.min(0) + v.max(0)) / 2
        self.extent = float(np.linalg.norm(v.max(0) - v.min(0)))
        self.fov_deg = 30.0
        self.yaw, self.pitch = 0.0, 0.0
        self.distance = self.extent / 2 / math.tan(math.radians(self.fov_deg) / 2) * 0.95
        self.regions_file = Path(regions_file) if regions_file else None
        self.user_regions: dict[str, np.ndarray] = {}
        if self.regions_file is not None and self.regions_file.is_file():
            self.user_regions = load_region_file(self.regions_file)
            for name, ids in self.user_regions.items():
                if ids.size and (ids.min() < 0 or ids.max() >= self.num_verts):
                    raise VhapError(
                        f"region '{name}' has vertex ids outside [0, {self.num_verts})",
                        path=self.regions_file,
                        fix=f"this file was made for another head model than '{head_model}'",
                    )
        self.shown: list[str] = []
        self.edit_name = next(iter(self.user_regions), "my_region")
        self.edit = np.zeros(self.num_verts, dtype=bool)
        if self.edit_name in self.user_regions:
            self.edit[self.user_regions[self.edit_name]] = True
        self._last: dict | None = None  # fragments of the last render (for picking)

    # ------------------------------------------------------------------ pose
    @torch.no_grad()
    def _pose_mesh(self) -> None:
        jaw = torch.tensor([[self.jaw_open, 0.0, 0.0]], device=self.device)
        expr = torch.as_tensor(self.expr, device=self.device)[None]
        self.verts = self.model(expr=expr if len(self.expr) else None, jaw_pose=jaw).verts  # (1,V,3)
        self._verts_np = self.verts[0].cpu().numpy().astype(np.float64)
        self._last = None

    @property
    def verts_np(self) -> np.ndarray:
        """(V,3) float64 vertices of the posed head as shown (read-only use)."""
        return self._verts_np

    def set_pose(self, jaw_open: float | None = None, expr: list[float] | None = None) -> None:
        """Open the jaw (radians about x, clipped to [-0.2, 0.8]) and set the first expression coefficients
        (clipped to [-3, 3]): regions inside the mouth are easier to see and paint with the mouth open."""
        if jaw_open is not None:
            self.jaw_open = float(np.clip(jaw_open, -0.2, 0.8))
        if expr is not None:
            values = np.clip(np.asarray(expr, np.float32).reshape(-1), -3.0, 3.0)[: self.num_expr_sliders]
            self.expr[:] = 0.0
            self.expr[: len(values)] = values
        self._pose_mesh()

    # ------------------------------------------------------------------ vocabulary
    @property
    def num_verts(self) -> int:
        return int(self.model.num_verts)

    def region_names(self) -> list[str]:
        """Model regions (stored and derived) followed by the user file's regions not among them."""
        names = list(self.model.regions.names)
        return names + [n for n in self.user_regions if n not in names]

    def region_ids(self, name: str) -> np.ndarray:
        if name in self.user_regions:
            return self.user_regions[name]
        return self.model.regions.vertex_ids(name)

    def set_shown(self, names: list[str]) -> None:
        known = set(self.region_names())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise VhapError(f"unknown region(s) {unknown}", fix="pick names from the region list")
        self.shown = list(dict.fromkeys(names))

    def load_into_edit(self, name: str) -> None:
        """Start editing a copy of region ``name`` (saved under the same name unless renamed)."""
        self.edit[:] = False
        self.edit[self.region_ids(name)] = True
        self.edit_name = name

    def clear_edit(self) -> None:
        self.edit[:] = False

    # ------------------------------------------------------------------ camera
    def orbit(self, d_yaw: float = 0.0, d_pitch: float = 0.0, zoom: float = 1.0) -> None:
        """Rotate about the world up axis / the camera's side axis (degrees) and scale the distance."""
        self.yaw = (self.yaw + d_yaw) % 360.0
        self.pitch = float(np.clip(self.pitch + d_pitch, -89.0, 89.0))
        self.distance = float(np.clip(self.distance * zoom, 0.05 * self.extent, 20 * self.extent))

    def reset_camera(self) -> None:
        self.yaw, self.pitch = 0.0, 0.0
        self.distance = self.extent / 2 / math.tan(math.radians(self.fov_deg) / 2) * 0.95

    def eye(self) -> np.ndarray:
        """Camera centre: on a sphere around the head's bounding-box centre; yaw 0 / pitch 0 = in front (+z)."""
        y, p = math.radians(self.yaw), math.radians(self.pitch)
        direction = np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])
        return self.target + self.distance * direction

    def cameras(self):
        from vhap.render import Cameras, look_at_w2c

        H, W = self.image_size
        f = 0.5 * H / math.tan(math.radians(self.fov_deg) / 2)
        K = torch.tensor([[[f, 0.0, W / 2], [0.0, f, H / 2], [0.0, 0.0, 1.0]]], device=self.device)
        eye = torch.tensor(self.eye(), dtype=torch.float32, device=self.device)[None]
        target = torch.tensor(self.target, dtype=torch.float32, device=self.device)[None]
        w2c = look_at_w2c(eye, target)
        near = max(1e-3, self.distance - self.extent)
        return Cameras(K=K, w2c=w2c, image_size=self.image_size, near=near, far=self.distance + 2 * self.extent)

    # ------------------------------------------------------------------ rendering
    def vertex_colours(self) -> np.ndarray:
        """(V,3) base grey, each shown region blended with its palette colour, the edited set on top."""
        col = np.tile(BASE_RGB, (self.num_verts, 1))
        for k, name in enumerate(self.shown):
            ids = self.region_ids(name)
            col[ids] = 0.35 * col[ids] + 0.65 * PALETTE[k % len(PALETTE)]
        col[self.edit] = EDIT_RGB
        return col

    @torch.no_grad()
    def render(self) -> np.ndarray:
        """(H,W,3) uint8 view of the head with the region overlays (white background)."""
        from vhap.render import render_visual

        cams = self.cameras()
        colours = torch.from_numpy(self.vertex_colours()).to(self.device)[None]
        r = render_visual(
            self.verts, self.model.faces, cams, vertex_colors=colours, background="white", renderer=self.renderer
        )
        self._last = {"tri_id": r["tri_id"][0].cpu().numpy(), "w2c": cams.w2c[0].cpu().numpy().astype(np.float64),
                      "K": cams.K[0].cpu().numpy().astype(np.float64)}  # fmt: skip
        return (r["rgba"][0, ..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

    # ------------------------------------------------------------------ picking and brush
    def pick(self, x: float, y: float) -> np.ndarray | None:
        """World point of the mesh under continuous pixel (x, y) of the last render, or None (background)."""
        if self._last is None:
            self.render()
        last = self._last
        H, W = self.image_size
        col, row = int(math.floor(x)), int(math.floor(y))
        if not (0 <= row < H and 0 <= col < W):
            return None
        tri = int(last["tri_id"][row, col])
        if tri < 0:
            return None
        # ray through the pixel (OpenCV camera), intersected with the triangle the buffer shows there
        K, w2c = last["K"], last["w2c"]
        d_cam = np.linalg.solve(K, np.array([x, y, 1.0]))
        R, t = w2c[:3, :3], w2c[:3, 3]
        origin = -R.T @ t
        direction = R.T @ d_cam
        direction /= np.linalg.norm(direction)
        a, b, c = self._verts_np[self.model.faces[tri].cpu().numpy()]
        hit = ray_triangle(origin, direction, a, b, c)
        if hit is None:  # pixel centre just outside the (antialiased) triangle: use its centroid
            return (a + b + c) / 3
        return hit

    def brush(self, x: float, y: float, radius: float, add: bool = True) -> int:
        """Add (or remove) the vertices within ``radius`` metres of the surface point under pixel (x, y).

        Returns how many vertices changed state.
        """
        hit = self.pick(x, y)
        if hit is None:
            return 0
        inside = np.linalg.norm(self._verts_np - hit, axis=1) <= radius
        before = self.edit.copy()
        if add:
            self.edit |= inside
        else:
            self.edit &= ~inside
        return int((before != self.edit).sum())

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path | None = None, name: str | None = None) -> Path:
        """Write the user regions plus the edited set (under ``name``) as a region file; returns its path.

        The file keeps every region it already had (other than ``name``), so several regions can be edited
        one after another into one file.
        """
        from vhap.model.regions import RegionSet, load_region_file, save_region_file

        path = Path(path) if path else self.regions_file
        if path is None:
            raise VhapError("no region file to save to", fix="pass --regions-file FILE or give a path in the page")
        if path.suffix.lower() != ".json":
            raise VhapError("region files are JSON", path=path, fix="give the file a .json name")
        name = (name or self.edit_name).strip()
        if not name or any(ch.isspace() for ch in name):
            raise VhapError(f"region name {name!r} is empty or has spaces", fix="use a name like my_region")
        regions = dict(load_region_file(path)) if path.is_file() else {}
        regions.update(self.user_regions)
        regions[name] = np.flatnonzero(self.edit)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_region_file(path, regions)
        # read back through the model's region set: the tracker does the same
        check = RegionSet({**self.model.regions.as_dict(), **load_region_file(path)}, self.model.faces.cpu().numpy(),
                          num_verts=self.num_verts)  # fmt: skip
        assert np.array_equal(check.vertex_ids(name), np.flatnonzero(self.edit))
        self.user_regions = {k: np.asarray(v) for k, v in regions.items()}
        self.edit_name = name
        self.regions_file = path
        return path

    def state(self) -> dict:
        return {
            "head_model": self.head_model,
            "num_verts": self.num_verts,
            "regions": self.region_names(),
            "user_regions": sorted(self.user_regions),
            "shown": self.shown,
            "edit_name": self.edit_name,
            "edit_count": int(self.edit.sum()),
            "regions_file": None if self.regions_file is None else str(self.regions_file),
            "image_size": list(self.image_size),
            "extent": self.extent,
            "camera": {"yaw": self.yaw, "pitch": self.pitch, "distance": self.distance},
            "jaw_open": self.jaw_open,
            "expr": [float(e) for e in self.expr],
        }


def ray_triangle(o, d, a, b, c, eps: float = 1e-12) -> np.ndarray | None:
    """Möller–Trumbore: the intersection of ray o + s d (s > 0) with triangle abc, or None."""
    e1, e2 = b - a, c - a
    p = np.cross(d, e2)
    det = float(e1 @ p)
    if abs(det) < eps:
        return None
    inv = 1.0 / det
    s_vec = o - a
    u = float(s_vec @ p) * inv
    q = np.cross(s_vec, e1)
    v = float(d @ q) * inv
    if u < -1e-6 or v < -1e-6 or u + v > 1 + 1e-6:
        return None
    s = float(e2 @ q) * inv
    return None if s <= 0 else o + s * d
