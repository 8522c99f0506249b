"""vhap's CUDA kernels, laid out as gsplat's: all ``.cu`` sources in this package behind one loader
(:mod:`~vhap.render.kernels.loader`), the fused operations as autograd functions (:mod:`~vhap.render.kernels.ops`)
and their pure-PyTorch twins side by side (:mod:`~vhap.render.kernels.reference`).

=====================  =========================  ==============================================
operation              CUDA (``ops``)             reference
=====================  =========================  ==============================================
z-buffer visibility    ``zbuffer_visibility``     the ``torch`` backend's rasteriser
raster attributes      ``raster_attributes``      nvdiffrast's rasteriser (the ``nvdiffrast`` backend)
SH shade + composite   ``shade_composite``        ``shade_composite_reference``
perturbation select    ``perturb_select``         ``perturb_select_reference``
image-loss sums        ``image_loss_sums``        ``image_loss_sums_reference``
=====================  =========================  ==============================================

Importing this package builds nothing; the first fused call (or :func:`load_kernels`) does.
"""

from vhap.render.kernels.loader import load_kernels
from vhap.render.kernels.ops import (
    image_loss_sums,
    perturb_select,
    raster_attributes,
    shade_composite,
    zbuffer_visibility,
)
from vhap.render.kernels.reference import (
    image_loss_sums_reference,
    perturb_select_reference,
    shade_composite_reference,
)

__all__ = [
    "image_loss_sums",
    "image_loss_sums_reference",
    "load_kernels",
    "perturb_select",
    "perturb_select_reference",
    "raster_attributes",
    "shade_composite",
    "shade_composite_reference",
    "zbuffer_visibility",
]
