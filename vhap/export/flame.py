"""FLAME parameters of an export: world relocation, per-timestep / canonical npz files, posing the head.

File format (VHAP_SPEC §6.5, what GaussianAvatars reads, §6.7): ``flame_param/<ti:05d>.npz`` with
``translation`` (1,3) (relocated), ``rotation`` (1,3), ``neck_pose`` (1,3), ``jaw_pose`` (1,3),
``eyes_pose`` (1,6), ``shape`` (300,), ``expr`` (1,100), and when tracked ``static_offset`` (1,V,3) /
``dynamic_offset`` (1,V,3); V = V0 + 120 with teeth. ``canonical_flame_param.npz`` has the same keys with
zero pose/expression/translation and the jaw slightly open (0.3 rad).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vhap.errors import VhapError

#: GaussianAvatars' FLAME sizes: parameter vectors are zero-padded to at least these lengths
GA_NUM_SHAPE = 300
GA_NUM_EXPR = 100
#: extra vertices of the teeth (VHAP_SPEC §2.3)
NUM_TEETH_VERTS = 120
CANONICAL_JAW_POSE = (0.3, 0.0, 0.0)

POSE_KEYS = ("rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation")
#: required keys of a per-timestep flame_param npz → expected shape (None = any size)
FLAME_PARAM_SHAPES: dict[str, tuple] = {
    "translation": (1, 3),
    "rotation": (1, 3),
    "neck_pose": (1, 3),
    "jaw_pose": (1, 3),
    "eyes_pose": (1, 6),
    "shape": (GA_NUM_SHAPE,),
    "expr": (1, GA_NUM_EXPR),
}


def _pad_last(arr: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad the last axis to at least ``n`` entries (never truncates)."""
    if arr.shape[-1] >= n:
        return arr
    pad = [(0, 0)] * (arr.ndim - 1) + [(0, n - arr.shape[-1])]
    return np.pad(arr, pad)


def relocation_offset(translation: np.ndarray) -> np.ndarray:
    """(3,) float64 mean head translation: the export world is the tracking world shifted by minus this."""
    return np.asarray(translation, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def translation_matrix(offset: np.ndarray) -> np.ndarray:
    """(4,4) float64 homogeneous translation by ``offset``."""
    m = np.eye(4)
    m[:3, 3] = offset
    return m


def relocate_w2c(w2c: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(C,4,4) world-to-camera of the tracking world → of the relocated world (x' = x − offset)."""
    return np.asarray(w2c, dtype=np.float64) @ translation_matrix(offset)


def timestep_params(
    params: dict[str, np.ndarray],
    t: int,
    offset: np.ndarray | None = None,
    n_shape: int = GA_NUM_SHAPE,
    n_expr: int = GA_NUM_EXPR,
) -> dict[str, np.ndarray]:
    """The flame_param dict of tracked row ``t`` (float32, leading singleton dims, translation − offset)."""
    out: dict[str, np.ndarray] = {}
    for key in POSE_KEYS:
        out[key] = np.asarray(params[key][t : t + 1], dtype=np.float32)
    if offset is not None:
        out["translation"] = (out["translation"].astype(np.float64) - offset).astype(np.float32)
    out["shape"] = _pad_last(np.asarray(params["shape"], dtype=np.float32).reshape(-1), n_shape)
    out["expr"] = _pad_last(np.asarray(params["expr"][t : t + 1], dtype=np.float32), n_expr)
    if params.get("static_offset") is not None:
        out["static_offset"] = np.asarray(params["static_offset"], dtype=np.float32)
    if params.get("dynamic_offset") is not None:
        out["dynamic_offset"] = np.asarray(params["dynamic_offset"][t : t + 1], dtype=np.float32)
    return out


def canonical_params(
    params: dict[str, np.ndarray], n_shape: int = GA_NUM_SHAPE, n_expr: int = GA_NUM_EXPR
) -> dict[str, np.ndarray]:
    """``canonical_flame_param.npz``: zero pose/expr/translation, jaw = (0.3, 0, 0), the tracked shape (and
    static offset)."""
    first = timestep_params(params, 0, None, n_shape, n_expr)
    out = {k: np.zeros_like(v) for k, v in first.items() if k not in ("shape", "static_offset", "dynamic_offset")}
    out["jaw_pose"] = np.asarray([CANONICAL_JAW_POSE], dtype=np.float32)
    out["shape"] = first["shape"]
    if "static_offset" in first:
        out["static_offset"] = first["static_offset"]
    return out


def stack_params(items: Sequence[dict[str, np.ndarray]]):
    """Stack per-timestep flame_param dicts into batched torch tensors for :func:`pose_head`."""
    import torch

    out = {}
    for key in (*POSE_KEYS, "expr"):
        out[key] = torch.from_numpy(np.concatenate([it[key] for it in items], axis=0).astype(np.float32))
    out["shape"] = torch.from_numpy(np.asarray(items[0]["shape"], dtype=np.float32))
    if "static_offset" in items[0]:
        out["static_offset"] = torch.from_numpy(np.asarray(items[0]["static_offset"], dtype=np.float32))
    if "dynamic_offset" in items[0]:
        out["dynamic_offset"] = torch.from_numpy(np.concatenate([it["dynamic_offset"] for it in items], 0))
    return out


def pose_head(model, batch: dict):
    """Run the head model on :func:`stack_params` output; returns its ``HeadOutput`` (verts (B,V,3), …).

    The parameter vectors are cut/padded to the model's basis sizes (padding is exact: extra coefficients
    of an export are zeros).
    """
    import torch

    def fit(x: torch.Tensor, n: int) -> torch.Tensor:
        if x.shape[-1] > n:
            extra = x[..., n:]
            if torch.any(extra != 0):
                raise VhapError(
                    f"parameters have {x.shape[-1]} coefficients but the head model only {n}",
                    fix="pose with a head model of at least as many shape/expression components",
                )
            return x[..., :n]
        return torch.nn.functional.pad(x, (0, n - x.shape[-1]))

    n_shape = getattr(model, "n_shape", batch["shape"].shape[-1])
    n_expr = getattr(model, "n_expr", batch["expr"].shape[-1])
    with torch.no_grad():
        return model(
            shape=fit(batch["shape"], n_shape),
            expr=fit(batch["expr"], n_expr),
            rotation=batch["rotation"],
            neck_pose=batch["neck_pose"],
            jaw_pose=batch["jaw_pose"],
            eyes_pose=batch["eyes_pose"],
            translation=batch["translation"],
            static_offset=batch.get("static_offset"),
            dynamic_offset=batch.get("dynamic_offset"),
        )


def infer_teeth(num_offset_verts: int | None, num_base_verts: int, default: bool = True) -> bool:
    """Whether offsets with ``num_offset_verts`` rows belong to the model with teeth (V0 + 120) or without."""
    if num_offset_verts is None:
        return default
    if num_offset_verts == num_base_verts + NUM_TEETH_VERTS:
        return True
    if num_offset_verts == num_base_verts:
        return False
    raise VhapError(
        f"offsets have {num_offset_verts} vertices but the head model has {num_base_verts} "
        f"({num_base_verts + NUM_TEETH_VERTS} with teeth)",
        fix="export with the head model the run was tracked with (--head-model)",
    )


def build_head_model(head_model: str, n_shape: int, n_expr: int, add_teeth: bool):
    """``vhap.model.HeadModel`` for posing exported parameters."""
    from vhap.model import HeadModel, load_head_assets

    assets = load_head_assets(head_model)
    return HeadModel(assets, n_shape=n_shape, n_expr=n_expr, add_teeth=add_teeth)
