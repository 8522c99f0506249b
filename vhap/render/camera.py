"""Cameras: the one place where camera conventions are converted.

Conventions (see docs/dev/INTERFACES.md):

* Our APIs take **OpenCV** cameras: intrinsics ``K`` in pixels with a top-left image origin and
  *continuous* pixel coordinates (the image corner is (0, 0), the centre of pixel (row i, col j) is
  (j + 0.5, i + 0.5)); extrinsics are world-to-camera 4x4 matrices with camera x right, y down,
  z forward.
* The rasterisers work in **OpenGL** clip space (camera x right, y up, looking along -z) with VHAP's
  projection matrix (VHAP_SPEC §3.1), whose cy is measured from the *bottom* of the image
  (``cy_gl = H - cy_cv``). NDC y = -1 is raster row 0, so a rasterised buffer flipped vertically
  (row 0 = top) matches :meth:`Cameras.project` exactly: NDC ``x = 2u/W - 1`` and ``y = 1 - 2v/H``.

Everything here is differentiable w.r.t. ``K`` and ``w2c`` (the tracker optimises the focal length and,
for some setups, the extrinsics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vhap.errors import VhapError

# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (x right, y up, z backward).
_CV_TO_GL = (1.0, -1.0, -1.0)


def _axis_flip(like: torch.Tensor) -> torch.Tensor:
    """(4,4) diag(1,-1,-1,1): converts camera-space coordinates between OpenCV and OpenGL (self-inverse)."""
    return torch.diag(torch.tensor([*_CV_TO_GL, 1.0], dtype=like.dtype, device=like.device))


# The conversions below negate rows / columns 1 and 2 instead of multiplying by ``_axis_flip``: same
# numbers, but no constant tensor is built from host data per call (a host→device copy on CUDA that also
# breaks CUDA-graph capture) and no 4x4 GEMM is launched.
def _flip_rows_yz(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m[..., :1, :], -m[..., 1:3, :], m[..., 3:, :]], dim=-2)


def _flip_cols_yz(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m[..., :1], -m[..., 1:3], m[..., 3:]], dim=-1)


def w2c_opencv_to_opengl(w2c: torch.Tensor) -> torch.Tensor:
    """(…,4,4) OpenCV world-to-camera -> OpenGL world-to-camera (flip camera y and z rows)."""
    return _flip_rows_yz(w2c)


def w2c_opengl_to_opencv(w2c: torch.Tensor) -> torch.Tensor:
    """(…,4,4) OpenGL world-to-camera -> OpenCV world-to-camera (the flip is its own inverse)."""
    return _flip_rows_yz(w2c)


def c2w_opencv_to_opengl(c2w: torch.Tensor) -> torch.Tensor:
    """(…,4,4) OpenCV camera-to-world -> OpenGL camera-to-world (flip camera y and z columns)."""
    return _flip_cols_yz(c2w)


def c2w_opengl_to_opencv(c2w: torch.Tensor) -> torch.Tensor:
    """(…,4,4) OpenGL camera-to-world -> OpenCV camera-to-world."""
    return _flip_cols_yz(c2w)


def invert_rigid(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (…,4,4) rigid transforms [R|t] (w2c <-> c2w), exact and differentiable."""
    rot = m[..., :3, :3]
    trans = m[..., :3, 3:]
    rot_t = rot.transpose(-1, -2)
    top = torch.cat([rot_t, -rot_t @ trans], dim=-1)
    bottom = torch.zeros_like(m[..., 3:, :])
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def intrinsics_to_vector(K: torch.Tensor) -> torch.Tensor:
    """(…,3,3) K -> (…,4) (fx, fy, cx, cy) in the same convention as K (skew is dropped)."""
    return torch.stack([K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]], dim=-1)


def vector_to_intrinsics(fxfycxcy: torch.Tensor) -> torch.Tensor:
    """(…,4) (fx, fy, cx, cy) -> (…,3,3) K (zero skew), differentiable."""
    fx, fy, cx, cy = fxfycxcy.unbind(-1)
    zero = torch.zeros_like(fx)
    one = torch.ones_like(fx)
    rows = [torch.stack([fx, zero, cx], -1), torch.stack([zero, fy, cy], -1), torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, dim=-2)


def intrinsics_opencv_to_opengl(K: torch.Tensor, height: float) -> torch.Tensor:
    """(…,3,3) OpenCV K -> K with VHAP's bottom-origin principal point (cy <- H - cy)."""
    out = K.clone()
    out[..., 1, 2] = height - K[..., 1, 2]
    return out


def intrinsics_opengl_to_opencv(K: torch.Tensor, height: float) -> torch.Tensor:
    """(…,3,3) K with bottom-origin cy -> OpenCV K (the conversion is its own inverse)."""
    return intrinsics_opencv_to_opengl(K, height)


def projection_opengl(K: torch.Tensor, image_size: tuple[int, int], near: float, far: float) -> torch.Tensor:
    """(B,3,3) OpenCV K -> (B,4,4) VHAP OpenGL projection matrix P (VHAP_SPEC §3.1).

    P acts on OpenGL camera coordinates; cy enters as the bottom-origin ``H - cy``. Skew (K[0,1]) is
    kept so that the projection equals OpenCV's ``K @ x`` exactly.
    """
    H, W = image_size
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    skew = K[:, 0, 1]
    cx, cy_gl = K[:, 0, 2], H - K[:, 1, 2]
    zero = torch.zeros_like(fx)
    one = torch.ones_like(fx)
    a = -(far + near) / (far - near) * one
    b = -2.0 * far * near / (far - near) * one
    # OpenGL y = -OpenCV y, so OpenCV skew*y_cv becomes -skew*y_gl.
    rows = [
        torch.stack([2 * fx / W, -2 * skew / W, (W - 2 * cx) / W, zero], -1),
        torch.stack([zero, 2 * fy / H, (H - 2 * cy_gl) / H, zero], -1),
        torch.stack([zero, zero, a, b], -1),
        torch.stack([zero, zero, -one, zero], -1),
    ]
    return torch.stack(rows, dim=-2)


def look_at_w2c(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
    """(B,3) eye/target (and up, default +y) -> (B,4,4) **OpenCV** world-to-camera looking from eye at target."""
    if up is None:
        up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    z = torch.nn.functional.normalize(target - eye, dim=-1)  # OpenCV forward
    x = torch.nn.functional.normalize(torch.cross(z, up, dim=-1), dim=-1)  # right
    y = torch.cross(z, x, dim=-1)  # down
    rot = torch.stack([x, y, z], dim=-2)  # rows = camera axes in world
    trans = -(rot @ eye.unsqueeze(-1))
    top = torch.cat([rot, trans], dim=-1)
    bottom = torch.zeros_like(top[:, :1, :])
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


@dataclass
class Cameras:
    """A batch of pinhole cameras in OpenCV conventions, all rendering at one image size.

    Attributes:
        K: (B,3,3) intrinsics, pixels, continuous coordinates with a top-left origin.
        w2c: (B,4,4) OpenCV world-to-camera (x right, y down, z forward).
        image_size: (H, W) in pixels.
        near, far: clip planes in metres (VHAP: 0.1 / 10).
    """

    K: torch.Tensor
    w2c: torch.Tensor
    image_size: tuple[int, int]
    near: float = 0.1
    far: float = 10.0

    def __post_init__(self) -> None:
        if self.K.ndim == 2:
            self.K = self.K.unsqueeze(0)
        if self.w2c.ndim == 2:
            self.w2c = self.w2c.unsqueeze(0)
        if self.K.shape[-2:] != (3, 3) or self.w2c.shape[-2:] != (4, 4):
            raise VhapError(
                f"Cameras need K (B,3,3) and w2c (B,4,4), got {tuple(self.K.shape)} and {tuple(self.w2c.shape)}",
                fix="pass OpenCV intrinsics and 4x4 world-to-camera matrices",
            )
        if self.K.shape[0] != self.w2c.shape[0]:
            if self.K.shape[0] == 1:
                self.K = self.K.expand(self.w2c.shape[0], 3, 3)
            elif self.w2c.shape[0] == 1:
                self.w2c = self.w2c.expand(self.K.shape[0], 4, 4)
            else:
                raise VhapError(
                    f"Cameras: K has batch {self.K.shape[0]} but w2c has batch {self.w2c.shape[0]}",
                    fix="give one K per camera (or a single shared K)",
                )
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if not (0 < self.near < self.far):
            raise VhapError(f"Cameras: need 0 < near < far, got near={self.near}, far={self.far}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def uncalibrated(
        cls,
        focal: torch.Tensor | float,
        image_size: tuple[int, int],
        batch: int = 1,
        near: float = 0.1,
        far: float = 10.0,
    ) -> Cameras:
        """VHAP's default monocular camera: f_px = focal * max(H, W), centred principal point, camera at
        (0, 0, 1) looking along world -z (at the face). ``focal`` (scalar or (1,) tensor, normalised by
        max(H, W); VHAP initialises it to 1.5) stays differentiable.

        With a tensor ``focal`` nothing is built from host data (the tracker calls this in every step, which
        may be recorded as a CUDA graph): the constant entries are fills of ``focal``'s device and dtype."""
        H, W = int(image_size[0]), int(image_size[1])
        if isinstance(focal, torch.Tensor):
            focal_t = focal.reshape(-1)[:1].float()
        else:
            focal_t = torch.full((1,), float(focal))
        f_px = focal_t * max(H, W)
        o, z = torch.ones_like(f_px), torch.zeros_like(f_px)
        cx, cy = torch.full_like(f_px, W / 2.0), torch.full_like(f_px, H / 2.0)
        K = torch.cat([f_px, z, cx, z, f_px, cy, z, z, o]).view(1, 3, 3).expand(batch, 3, 3)
        # OpenCV camera at (0,0,1) looking to world -z: camera x = world x, y = -world y, z = -world z.
        w2c = torch.cat([o, z, z, z, z, -o, z, z, z, z, -o, o, z, z, z, o]).view(1, 4, 4).expand(batch, 4, 4)
        return cls(K=K, w2c=w2c.detach(), image_size=(H, W), near=near, far=far)

    @classmethod
    def from_opengl(
        cls,
        K_gl: torch.Tensor,
        w2c_gl: torch.Tensor,
        image_size: tuple[int, int],
        near: float = 0.1,
        far: float = 10.0,
    ) -> Cameras:
        """From VHAP's tracker convention: K with bottom-origin cy and OpenGL world-to-camera."""
        return cls(
            K=intrinsics_opengl_to_opencv(K_gl, image_size[0]),
            w2c=w2c_opengl_to_opencv(w2c_gl),
            image_size=image_size,
            near=near,
            far=far,
        )

    # ------------------------------------------------------------------ batching
    def __len__(self) -> int:
        return self.K.shape[0]

    @property
    def batch_size(self) -> int:
        return self.K.shape[0]

    @property
    def device(self) -> torch.device:
        return self.K.device

    def __getitem__(self, index: int | slice | torch.Tensor | Sequence[int]) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        if isinstance(index, Sequence) and not isinstance(index, torch.Tensor):
            index = torch.as_tensor(list(index), dtype=torch.long, device=self.K.device)
        return Cameras(self.K[index], self.w2c[index], self.image_size, self.near, self.far)

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(self.K.to(device), self.w2c.to(device), self.image_size, self.near, self.far)

    def repeat_interleave(self, n: int) -> Cameras:
        """Each camera repeated n times consecutively: views x frames batches (view-major)."""
        return Cameras(
            self.K.repeat_interleave(n, 0), self.w2c.repeat_interleave(n, 0), self.image_size, self.near, self.far
        )

    def repeat(self, n: int) -> Cameras:
        """The whole batch tiled n times: frames x views batches (frame-major)."""
        return Cameras(self.K.repeat(n, 1, 1), self.w2c.repeat(n, 1, 1), self.image_size, self.near, self.far)

    @staticmethod
    def cat(cameras: Sequence[Cameras]) -> Cameras:
        first = cameras[0]
        if any(c.image_size != first.image_size for c in cameras):
            raise VhapError("Cameras.cat: all cameras must share one image size", fix="resize the images first")
        return Cameras(
            torch.cat([c.K for c in cameras]),
            torch.cat([c.w2c for c in cameras]),
            first.image_size,
            first.near,
            first.far,
        )

    def resized(self, image_size: tuple[int, int]) -> Cameras:
        """Same cameras rendering at another resolution (intrinsics scaled in continuous coordinates)."""
        H0, W0 = self.image_size
        H1, W1 = int(image_size[0]), int(image_size[1])
        scale = torch.tensor([[W1 / W0], [H1 / H0], [1.0]], dtype=self.K.dtype, device=self.K.device)
        return Cameras(self.K * scale, self.w2c, (H1, W1), self.near, self.far)

    # ------------------------------------------------------------------ conventions
    @property
    def fxfycxcy(self) -> torch.Tensor:
        """(B,4) OpenCV (fx, fy, cx, cy), top-origin cy."""
        return intrinsics_to_vector(self.K)

    def fxfycxcy_opengl(self) -> torch.Tensor:
        """(B,4) (fx, fy, cx, cy) with VHAP's bottom-origin cy (cy <- H - cy)."""
        return intrinsics_to_vector(self.K_opengl())

    def K_opengl(self) -> torch.Tensor:
        """(B,3,3) K with bottom-origin cy (VHAP's tracker convention)."""
        return intrinsics_opencv_to_opengl(self.K, self.image_size[0])

    def c2w(self) -> torch.Tensor:
        """(B,4,4) OpenCV camera-to-world."""
        return invert_rigid(self.w2c)

    def w2c_opengl(self) -> torch.Tensor:
        """(B,4,4) OpenGL world-to-camera (x right, y up, looking along -z)."""
        return w2c_opencv_to_opengl(self.w2c)

    def c2w_opengl(self) -> torch.Tensor:
        """(B,4,4) OpenGL camera-to-world — the ``transform_matrix`` of NeRF-style ``transforms.json``."""
        return invert_rigid(self.w2c_opengl())

    def camera_centers(self) -> torch.Tensor:
        """(B,3) camera centres in world coordinates."""
        return self.c2w()[:, :3, 3]

    def projection_opengl(self) -> torch.Tensor:
        """(B,4,4) OpenGL projection matrix (VHAP_SPEC §3.1)."""
        return projection_opengl(self.K, self.image_size, self.near, self.far)

    def full_projection(self) -> torch.Tensor:
        """(B,4,4) P @ w2c_gl: world -> OpenGL clip space."""
        return self.projection_opengl() @ self.w2c_opengl()

    # ------------------------------------------------------------------ projection
    def _points_batch(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim == 2:
            points = points.unsqueeze(0)
        if points.shape[0] == 1 and self.batch_size > 1:
            points = points.expand(self.batch_size, -1, -1)
        if points.shape[0] != self.batch_size or points.shape[-1] != 3:
            raise VhapError(
                f"points have shape {tuple(points.shape)} but the cameras expect (B={self.batch_size}, N, 3)",
                fix="pass one point set per camera (or a single shared one)",
            )
        return points

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """(B|1,N,3) world -> (B,N,3) OpenCV camera coordinates (z = depth along the optical axis)."""
        points = self._points_batch(points)
        rot = self.w2c[:, :3, :3]
        trans = self.w2c[:, :3, 3]
        return points @ rot.transpose(1, 2) + trans.unsqueeze(1)

    def project(self, points: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """(B|1,N,3) world -> (B,N,2) continuous pixel coordinates (x right, y down, top-left origin)."""
        cam = self.world_to_camera(points)
        z = cam[..., 2:3]
        z = torch.where(z.abs() < eps, torch.full_like(z, eps), z)
        uvw = cam @ self.K.transpose(1, 2)
        return uvw[..., :2] / z

    def project_ndc(self, points: torch.Tensor) -> torch.Tensor:
        """(B|1,N,3) -> (B,N,2) image coordinates normalised to [-1,1] with y down (x_n = 2x/W - 1,
        y_n = 2y/H - 1; no half-pixel shift), as VHAP compares landmarks (§3.1)."""
        pix = self.project(points)
        H, W = self.image_size
        # per-axis python scalars: no (2,) constant copied from the host per call
        return torch.stack([pix[..., 0] * (2.0 / W), pix[..., 1] * (2.0 / H)], dim=-1) - 1.0

    def to_clip(self, points: torch.Tensor) -> torch.Tensor:
        """(B|1,N,3) world -> (B,N,4) OpenGL clip coordinates for the rasterisers.

        NDC x = 2u/W - 1 and NDC y = 1 - 2v/H where (u, v) = :meth:`project`; clip w = camera depth.
        """
        points = self._points_batch(points)
        homo = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
        return homo @ self.full_projection().transpose(1, 2)


def clip_to_pixels(clip: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(…,4) OpenGL clip -> (…,2) continuous top-origin pixel coordinates (inverse of the NDC mapping)."""
    H, W = image_size
    w = clip[..., 3:4]
    ndc = clip[..., :2] / w
    x = (ndc[..., 0] + 1.0) * (0.5 * W)
    y = (1.0 - ndc[..., 1]) * (0.5 * H)
    return torch.stack([x, y], dim=-1)


def rotation_about_axis(axis: torch.Tensor, angle_rad: float) -> torch.Tensor:
    """(3,) axis, angle -> (3,3) rotation matrix (Rodrigues). Small helper for tests and benches."""
    axis = torch.nn.functional.normalize(axis.to(torch.float32), dim=0)
    x, y, z = axis.tolist()
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    C = 1 - c
    return torch.tensor(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )
