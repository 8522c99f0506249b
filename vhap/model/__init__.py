"""The head model: FLAME-structured assets, LBS, teeth, regions, landmarks (the bottom layer, pure tensors).

Public names are imported lazily so that ``vhap.model.assets`` (numpy only) stays importable on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vhap.utils.lazy import lazy_exports

_EXPORTS = {
    "HeadAssets": "vhap.model.assets",
    "LandmarkEmbedding": "vhap.model.assets",
    "load_head_assets": "vhap.model.io",
    "HeadModel": "vhap.model.head",
    "HeadOutput": "vhap.model.head",
    "RegionSet": "vhap.model.regions",
    "Albedo": "vhap.model.albedo",
}

#: static (not from lazy_exports) so that type checkers and linters see the names imported below
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

__getattr__ = lazy_exports(__name__, _EXPORTS)[0]
