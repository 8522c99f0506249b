"""The head model: FLAME-structured assets, LBS, teeth, regions, landmarks (the bottom layer, pure tensors).

Public names are imported lazily so that ``vhap.model.assets`` (numpy only) stays importable on its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "HeadAssets": "vhap.model.assets",
    "LandmarkEmbedding": "vhap.model.assets",
    "load_head_assets": "vhap.model.io",
    "HeadModel": "vhap.model.head",
    "HeadOutput": "vhap.model.head",
    "RegionSet": "vhap.model.regions",
    "Albedo": "vhap.model.albedo",
}

__all__ = [
    "Albedo",
    "HeadAssets",
    "HeadModel",
    "HeadOutput",
    "LandmarkEmbedding",
    "RegionSet",
    "load_head_assets",
]

if TYPE_CHECKING:  # pragma: no cover
    from vhap.model.albedo import Albedo
    from vhap.model.assets import HeadAssets, LandmarkEmbedding
    from vhap.model.head import HeadModel, HeadOutput
    from vhap.model.io import load_head_assets
    from vhap.model.regions import RegionSet


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vhap.model' has no attribute {name!r}")
