"""Web viewer of tracking runs (``vhap view``) and region editor of the head model (``vhap regions``).

Pictures are rendered on the server with the project's renderer (torch on CPU, nvdiffrast on CUDA) and shown
by a small self-contained page; see :mod:`vhap.viewer.server` for why.
"""

from vhap.viewer.regions import RegionEditor
from vhap.viewer.scene import MODES, RunScene, ViewOptions

__all__ = ["MODES", "RegionEditor", "RunScene", "ViewOptions"]
