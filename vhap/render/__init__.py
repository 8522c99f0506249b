"""Differentiable mesh rendering: cameras (the only place camera conventions are converted), one
rasterisation API (:class:`MeshRenderer`) over typed backends (:class:`RenderBackend`: pure PyTorch, nvdiffrast,
vhap's own CUDA rasteriser), vhap's fused CUDA kernels with their PyTorch references (:mod:`vhap.render.kernels`),
SH shading, VHAP's appearance perturbation and the high-level head renderer used by the tracker, the export and
the viewer.

Buffers are channels-last (B,H,W,C) with row 0 = top; see docs/dev/INTERFACES.md.
"""

from vhap.render.backends.base import BackendCaps, Fragments, RenderBackend, edge_neighbours, face_orientation
from vhap.render.camera import (
    Cameras,
    c2w_opencv_to_opengl,
    c2w_opengl_to_opencv,
    clip_to_pixels,
    intrinsics_opencv_to_opengl,
    intrinsics_opengl_to_opencv,
    intrinsics_to_vector,
    invert_rigid,
    look_at_w2c,
    projection_opengl,
    vector_to_intrinsics,
    w2c_opencv_to_opengl,
    w2c_opengl_to_opencv,
)
from vhap.render.head import HeadRender, overlay, render_head, render_visual
from vhap.render.perturb import perturb_appearance
from vhap.render.rasterizer import MeshRenderer, nvdiffrast_available
from vhap.render.shading import (
    LIGHTING_TYPES,
    SH_CONSTANTS,
    SH_INIT_DC,
    background_image,
    composite,
    face_normals,
    initial_sh,
    sh_basis,
    shade,
    shade_front,
    shade_front_range,
    shade_sh,
    vertex_normals,
)

__all__ = [
    "LIGHTING_TYPES",
    "SH_CONSTANTS",
    "SH_INIT_DC",
    "BackendCaps",
    "Cameras",
    "Fragments",
    "HeadRender",
    "MeshRenderer",
    "background_image",
    "c2w_opencv_to_opengl",
    "c2w_opengl_to_opencv",
    "clip_to_pixels",
    "composite",
    "edge_neighbours",
    "face_normals",
    "face_orientation",
    "initial_sh",
    "intrinsics_opencv_to_opengl",
    "intrinsics_opengl_to_opencv",
    "intrinsics_to_vector",
    "invert_rigid",
    "look_at_w2c",
    "nvdiffrast_available",
    "overlay",
    "perturb_appearance",
    "projection_opengl",
    "RenderBackend",
    "render_head",
    "render_visual",
    "shade",
    "shade_front",
    "shade_front_range",
    "shade_sh",
    "sh_basis",
    "vector_to_intrinsics",
    "vertex_normals",
    "w2c_opencv_to_opengl",
    "w2c_opengl_to_opencv",
]
