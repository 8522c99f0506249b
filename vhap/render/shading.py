"""Lighting models (VHAP_SPEC §3.4), vertex normals (§3.3) and background compositing (§3.5)."""

from __future__ import annotations

import math

import torch

from vhap.errors import VhapError
from vhap.model import mesh_ops

LIGHTING_TYPES = ("SH", "constant", "front", "front-range")

# Irradiance constants of the 9 second-order real SH basis functions [1, x, y, z, xy, xz, yz, x²-y², 3z²-1].
SH_CONSTANTS = (
    1.0 / math.sqrt(4 * math.pi),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (3 / 2) * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (1 / 2) * math.sqrt(5 / (4 * math.pi)),
)

_SH_CONSTANTS_CACHE: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def sh_constants(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(9,) SH_CONSTANTS as a tensor, uploaded once per device/dtype (not once per shading call)."""
    key = (device, dtype)
    if key not in _SH_CONSTANTS_CACHE:
        _SH_CONSTANTS_CACHE[key] = torch.tensor(SH_CONSTANTS, device=device, dtype=dtype)
    return _SH_CONSTANTS_CACHE[key]


#: VHAP's initial lights: L[0] = sqrt(4π) for every channel, rest 0 -> shading exactly 1 everywhere.
SH_INIT_DC = math.sqrt(4 * math.pi)


def initial_sh(batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """(batch,9,3) VHAP's initial SH lighting (uniform white, shading 1)."""
    sh = torch.zeros(batch, 9, 3, device=device)
    sh[:, 0] = SH_INIT_DC
    return sh


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """(…,3) unit normals -> (…,9) SH basis values already multiplied by the irradiance constants."""
    x, y, z = normals.unbind(-1)
    basis = torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], dim=-1)
    return basis * sh_constants(basis.device, basis.dtype)


def shade_sh(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """normals (B,H,W,3), sh (B|1,9,3) -> (B,H,W,3) irradiance Σ_k L[k,c] c_k basis_k(n) (no clamping)."""
    if sh.ndim != 3 or sh.shape[-2:] != (9, 3):
        raise VhapError(f"SH lighting must have shape (B,9,3) or (1,9,3), got {tuple(sh.shape)}")
    basis = sh_basis(normals)
    # Broadcast multiply + sum over the 9 coefficients instead of a batched GEMM: with N = 3 output channels
    # cuBLAS picks a tile-wasting kernel; this form is memory-bound and several times faster on the GPU.
    return (basis.unsqueeze(-1) * sh[:, None, None]).sum(-2)


def shade_front(normals: torch.Tensor) -> torch.Tensor:
    """(B,H,W,3) camera-space (OpenGL, +z toward the viewer) normals -> (B,H,W,3) n·z, negatives -> 0.3|n·z|."""
    d = normals[..., 2:3]
    d = torch.where(d < 0, 0.3 * d.abs(), d)
    return d.expand(*d.shape[:-1], 3)


def shade_front_range(normals: torch.Tensor) -> torch.Tensor:
    """(B,H,W,3) -> clamp(n·z + 0.75, 0, 1) as (B,H,W,3)."""
    d = (normals[..., 2:3] + 0.75).clamp(0.0, 1.0)
    return d.expand(*d.shape[:-1], 3)


def shade(lighting_type: str, normals: torch.Tensor, sh: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch over VHAP's lighting types: "SH" (needs ``sh``), "constant", "front", "front-range"."""
    if lighting_type == "SH":
        if sh is None:
            raise VhapError("lighting type 'SH' needs SH coefficients (B,9,3)")
        return shade_sh(normals, sh)
    if lighting_type == "constant":
        return torch.ones_like(normals)
    if lighting_type == "front":
        return shade_front(normals)
    if lighting_type == "front-range":
        return shade_front_range(normals)
    raise VhapError(f"unknown lighting type {lighting_type!r}", fix=f"use one of {', '.join(LIGHTING_TYPES)}")


def face_normals(verts: torch.Tensor, faces: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(B,V,3), (F,3) -> (B,F,3) face normals (v1-v0)x(v2-v0) (unnormalised = twice the area)."""
    n = mesh_ops.face_normals(verts, faces)
    return torch.nn.functional.normalize(n, dim=-1) if normalize else n


#: area-weighted unit vertex normals (VHAP_SPEC §3.3); one implementation, in the head-model layer
vertex_normals = mesh_ops.vertex_normals


def normalize_pixels(normals: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Re-normalise interpolated normals; zero vectors (empty pixels) stay zero without NaN gradients."""
    norm = normals.norm(dim=-1, keepdim=True)
    return normals / norm.clamp(min=eps)


def background_image(
    background: torch.Tensor | float | tuple[float, float, float] | str,
    batch: int,
    image_size: tuple[int, int],
    device: torch.device,
) -> torch.Tensor:
    """A background spec -> (B,H,W,3): an image tensor (B|1,H,W,3), a colour (3,), a grey level, "white"/"black"."""
    H, W = image_size
    if isinstance(background, str):
        if background not in ("white", "black"):
            raise VhapError(f"unknown background {background!r}", fix="use 'white', 'black', a colour or an image")
        background = 1.0 if background == "white" else 0.0
    if not isinstance(background, torch.Tensor):
        # built on the device by fill kernels, not copied from the host: a render that is being recorded as a
        # CUDA graph may not copy from pageable host memory
        values = [float(background)] * 3 if isinstance(background, int | float) else [float(v) for v in background]
        background = torch.stack([torch.full((), v, dtype=torch.float32, device=device) for v in values])
    background = background.to(device=device, dtype=torch.float32)
    if background.ndim <= 1:
        return background.reshape(1, 1, 1, -1).expand(batch, H, W, 3)
    if background.ndim != 4 or background.shape[1:3] != (H, W):
        raise VhapError(
            f"background image has shape {tuple(background.shape)}, expected (B,{H},{W},3)",
            fix="resize the background to the render size (channels-last)",
        )
    return background.expand(batch, H, W, background.shape[-1])


def composite(fg: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Alpha compositing: fg (B,H,W,C) over background (B,H,W,C) with alpha (B,H,W,1)."""
    return fg * alpha + background * (1.0 - alpha)
