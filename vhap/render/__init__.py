"""Differentiable mesh rendering: cameras (the only place camera conventions are converted), one
rasterisation API with a CUDA (nvdiffrast) and a pure-PyTorch backend, SH shading, VHAP's appearance
perturbation and the high-level head renderer used by the tracker, the export and the viewer."""

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
    vector_to_intrinsics,
    w2c_opencv_to_opengl,
    w2c_opengl_to_opencv,
)

__all__ = [
    "Cameras",
    "c2w_opencv_to_opengl",
    "c2w_opengl_to_opencv",
    "clip_to_pixels",
    "intrinsics_opencv_to_opengl",
    "intrinsics_opengl_to_opencv",
    "intrinsics_to_vector",
    "invert_rigid",
    "look_at_w2c",
    "vector_to_intrinsics",
    "w2c_opencv_to_opengl",
    "w2c_opengl_to_opencv",
]
