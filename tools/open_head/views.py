"""Render the committed preview images of the open head (``python -m tools.open_head.preview``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.open_head.bases import EXPRESSIONS
from tools.open_head.preview import render, save_png
from vhap.model.open_head import OPEN_HEAD_NPZ


def posed(assets, shape=None, expr=None, jaw=0.0, teeth=True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices/faces/uvs/uv_faces of the open head through :class:`vhap.model.HeadModel` (with teeth)."""
    import torch

    from vhap.model import HeadModel

    model = HeadModel(assets, n_shape=assets.num_shape, n_expr=assets.num_expr, add_teeth=teeth)
    s = torch.zeros(assets.num_shape) if shape is None else torch.as_tensor(shape, dtype=torch.float32)
    e = torch.zeros(1, assets.num_expr) if expr is None else torch.as_tensor(expr, dtype=torch.float32)[None]
    z3 = torch.zeros(1, 3)
    with torch.no_grad():
        out = model(
            shape=s, expr=e, rotation=z3, neck_pose=z3, jaw_pose=torch.tensor([[jaw, 0.0, 0.0]]),
            eyes_pose=torch.zeros(1, 6), translation=z3,
        )  # fmt: skip
    return (
        out.verts[0].numpy().astype(np.float64),
        model.faces.numpy(),
        model.uvs.numpy().astype(np.float64),
        model.uv_faces.numpy(),
    )


def _expr(assets, **coeffs) -> np.ndarray:
    e = np.zeros(assets.num_expr)
    for name, value in coeffs.items():
        e[EXPRESSIONS.index(name)] = value
    return e


def render_all(out_dir: Path, npz: str | Path | None = None, size: int = 512) -> list[Path]:
    from PIL import Image

    from vhap.model.assets import HeadAssets

    assets = HeadAssets.load_npz(npz or OPEN_HEAD_NPZ)
    tex = assets.base_texture
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def shot(name, yaw=0.0, pitch=0.0, view=None, **kw):
        v, f, uv, uvf = posed(assets, **kw)
        img = render(v, f, uv, uvf, tex, yaw=yaw, pitch=pitch, size=size, **(view or {}))
        path = out_dir / f"{name}.png"
        save_png(img, path)
        written.append(path)
        return img

    shot("front")
    shot("side", yaw=90)
    shot("three_quarter", yaw=35, pitch=-5)
    shot("back_three_quarter", yaw=150)
    shot("ear", yaw=80, pitch=-10, view={"distance": 0.45, "centre": (0.08, 0.0, -0.025)})
    shot("neck_back", yaw=140, pitch=15)
    shot("jaw_open", yaw=20, jaw=0.25, expr=_expr(assets, jaw_open=1.0))
    shot("jaw_wide", yaw=25, jaw=0.45, expr=_expr(assets, jaw_open=1.5))
    shot("smile", yaw=15, expr=_expr(assets, smile_left=2.0, smile_right=2.0))
    shot("blink", yaw=10, expr=_expr(assets, blink_left=2.0, blink_right=2.0))
    shot("pucker_brows", yaw=25, expr=_expr(assets, pucker=2.0, brow_raise_left=2.0, brow_raise_right=2.0))
    shape = np.zeros(assets.num_shape)
    shape[:6] = [1.0, -1.0, 1.0, 0.8, -1.0, 1.0]
    shot("shape_variation", yaw=30, shape=shape)
    atlas = Image.fromarray((np.clip(tex, 0, 1) * 255).astype(np.uint8)).resize((512, 512))
    atlas.save(out_dir / "texture.png")
    written.append(out_dir / "texture.png")
    # contact sheet
    names = ["front", "three_quarter", "side", "back_three_quarter", "jaw_open", "smile", "blink", "shape_variation"]
    sheet = Image.new("RGB", (4 * 256, 2 * 256))
    for i, n in enumerate(names):
        sheet.paste(Image.open(out_dir / f"{n}.png").resize((256, 256)), ((i % 4) * 256, (i // 4) * 256))
    sheet.save(out_dir / "overview.png")
    written.append(out_dir / "overview.png")
    return written
