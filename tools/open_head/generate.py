"""Generate the open head model: ``python -m tools.open_head.generate --out vhap/model/open_head/open_head.npz``.

Deterministic (no randomness, no network, no external model files): the only input is the MediaPipe face layout
baked into :mod:`tools.open_head.face_layout_data`. See ``README.md`` next to this file for the recipe.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools.open_head.bases import EXPRESSIONS, expression_bases, shape_bases
from tools.open_head.geometry import build_mesh
from tools.open_head.paint import paint_texture
from tools.open_head.rig import build_regions, joint_regressor, landmark_embeddings, skinning_weights
from vhap.model.assets import HeadAssets, LandmarkEmbedding
from vhap.model.open_head import OPEN_HEAD_NPZ

TEXTURE_SIZE = 1024
PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)


def generate(texture_size: int = TEXTURE_SIZE, progress: bool = True) -> HeadAssets:
    """Build the open head as :class:`HeadAssets` (float32; ~6.6k vertices, 100 shape and 40 expression bases)."""
    from tqdm import tqdm

    steps = tqdm(total=6, desc="open head", disable=not progress)
    mesh = build_mesh()
    steps.update()
    regions = build_regions(mesh)
    steps.update()
    weights = skinning_weights(mesh, regions)
    jreg = joint_regressor(mesh)
    steps.update()
    shapedirs = shape_bases(mesh)
    exprdirs = expression_bases(mesh, weights, regions)
    steps.update()
    (ib_f, ib_b), (mp_f, mp_b) = landmark_embeddings(mesh)
    steps.update()
    texture = paint_texture(mesh, texture_size)
    steps.update()
    steps.close()
    v = len(mesh.verts)
    return HeadAssets(
        name="open",
        v_template=mesh.verts,
        faces=mesh.faces,
        uvs=mesh.uvs,
        uv_faces=mesh.uv_faces,
        shapedirs=shapedirs,
        exprdirs=exprdirs,
        posedirs=np.zeros((v, 3, 36), np.float32),
        J_regressor=jreg,
        lbs_weights=weights,
        parents=PARENTS,
        regions=regions,
        landmarks_ibug=LandmarkEmbedding(ib_f, ib_b),
        landmarks_mediapipe=LandmarkEmbedding(mp_f, mp_b, np.arange(478)),
        base_texture=texture,
    ).validate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OPEN_HEAD_NPZ)
    parser.add_argument("--texture-size", type=int, default=TEXTURE_SIZE)
    args = parser.parse_args(argv)
    assets = generate(args.texture_size)
    assets.save_npz(args.out, compact=True)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 2**20:.2f} MiB): V={assets.num_verts} F={assets.num_faces} "
        f"NS={assets.num_shape} NE={assets.num_expr} ({len(EXPRESSIONS)} named expressions)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
