"""High-level head rendering: the tracker's differentiable pipeline (VHAP_SPEC §3.3-3.8) and the no-grad
visualisation renderer (§3.9) used by overlays, the export mask and the viewer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from vhap.render.backends.base import Fragments
from vhap.render.camera import Cameras
from vhap.render.kernels import shade_composite, shade_composite_reference
from vhap.render.perturb import perturb_appearance
from vhap.render.rasterizer import MeshRenderer
from vhap.render.shading import (
    background_image,
    composite,
    face_normals,
    normalize_pixels,
    shade,
    vertex_normals,
)

_DEFAULT_RENDERER: MeshRenderer | None = None


def default_renderer() -> MeshRenderer:
    global _DEFAULT_RENDERER
    if _DEFAULT_RENDERER is None:
        _DEFAULT_RENDERER = MeshRenderer("auto")
    return _DEFAULT_RENDERER


@dataclass
class HeadRender:
    """Outputs of :func:`render_head`, channels-last, row 0 = top.

    Attributes:
        rgba: (B,H,W,4) antialiased composite (after perturbation).
        albedo_sample: (B,H,W,3) the texture sampled at every pixel (not masked; see :attr:`albedo`).
        normal: (B,H,W,3) unit world normals, or None where shading and compositing ran fused (``cuda`` backend,
            SH lighting), which never forms them.
        diffuse_detach_normal: (B,H,W,3) shading of the detached normals, zero where empty (its gradient reaches
            only the lights).
        cluster_id: (B,H,W) int16 (0 background, 1 no cluster, 2+k cluster k).
        tri_id: (B,H,W) int64 (-1 empty).
        clip: (B,V,4) clip positions.
        fragments: the rasterisation.
    """

    rgba: torch.Tensor
    albedo_sample: torch.Tensor
    normal: torch.Tensor | None
    diffuse_detach_normal: torch.Tensor
    cluster_id: torch.Tensor
    tri_id: torch.Tensor
    clip: torch.Tensor
    fragments: Fragments

    @cached_property
    def albedo(self) -> torch.Tensor:
        """(B,H,W,3) albedo, zero where empty (a full-image pass, made on first read: the tracker never reads it)."""
        return self.albedo_sample * self.fragments.mask.unsqueeze(-1)

    @property
    def alpha(self) -> torch.Tensor:
        """(B,H,W,1) coverage (before antialiasing)."""
        return self.fragments.alpha


def _interpolate_uv(renderer: MeshRenderer, uvs, uv_faces, frags):
    """Per-pixel texture coordinates in the sampler's convention (v = 0 at texture row 0 = top) and, where the
    backend supports mipmapping, their screen derivatives (else None)."""
    uv_tex = torch.stack([uvs[:, 0], 1.0 - uvs[:, 1]], dim=-1)  # OBJ v points up; rows go down
    return renderer.interpolate_with_derivatives(uv_tex, frags, uv_faces)


def _per_pixel(face_table: torch.Tensor, tri_id: torch.Tensor, empty) -> torch.Tensor:
    """(F,) per-face values -> (B,H,W) per-pixel values, ``empty`` where no face is visible (tri_id -1).

    One gather: the table gets ``empty`` appended, which index -1 selects (negative indices wrap), so the
    empty pixels need no clamp, mask or where (each a full-image pass)."""
    return torch.cat([face_table, face_table.new_full((1,), empty)])[tri_id]


def render_head(
    verts: torch.Tensor,
    faces: torch.Tensor,
    uvs: torch.Tensor,
    uv_faces: torch.Tensor,
    cameras: Cameras,
    albedo: torch.Tensor,
    sh: torch.Tensor | None,
    background: torch.Tensor | float | str,
    face_cluster: torch.Tensor | None = None,
    perturb_rates: tuple[float, float] | None = None,
    texture_align_off_faces: torch.Tensor | None = None,
    boundary_align_off_verts: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    renderer: MeshRenderer | None = None,
    lighting: str = "SH",
    filter_mode: str = "auto",
    cull_backfaces: bool = True,
    num_clusters: int | None = None,
) -> HeadRender:
    """Differentiable render of a textured head in B views (the tracker's photometric pipeline).

    Args:
        verts: (B|1,V,3) world-space vertices (B = views x frames; one camera per batch element).
        faces: (F,3) int64, CCW seen from outside. uvs (VT,2) OBJ convention (v up), uv_faces (F,3).
        cameras: B cameras (OpenCV); their image_size is the render size.
        albedo: (3,Ht,Wt) or (1|B,3,Ht,Wt) texture in [0,1], row 0 = top (uv v = 1).
        sh: (B|1,9,3) SH lighting (for ``lighting="SH"``).
        background: (B|1,H,W,3) image (e.g. the target itself, §3.5), a colour, or "white"/"black".
        face_cluster: (F,) int64 cluster table (1 = no cluster, 2+k = cluster k; 0 is background) or None.
        perturb_rates: (rate_fg, rate_bg) to apply the §3.6 perturbation before antialiasing, or None.
        texture_align_off_faces: (F,) bool — at pixels of these faces the UVs are detached (§3.7).
        boundary_align_off_verts: (V,) bool — these vertices' clip positions are detached in the
            antialiasing call only (§3.7).
        generator: torch.Generator for the perturbation draws.
        num_clusters: static upper bound on the cluster ids + 1 (saves the perturbation a host sync).
    """
    renderer = renderer or default_renderer()
    device = verts.device
    B = cameras.batch_size
    H, W = cameras.image_size
    faces = faces.to(device=device, dtype=torch.long)
    uv_faces = uv_faces.to(device=device, dtype=torch.long)
    uvs = uvs.to(device)
    if verts.shape[0] == 1 and B > 1:
        verts = verts.expand(B, -1, -1)
    clip = cameras.to_clip(verts)
    frags = renderer.rasterize(clip, faces, (H, W), cull_backfaces=cull_backfaces)
    covered = frags.mask

    uv, uv_da = _interpolate_uv(renderer, uvs, uv_faces, frags)
    if texture_align_off_faces is not None:
        off = _per_pixel(texture_align_off_faces.to(device), frags.tri_id, False)
        uv = torch.where(off.unsqueeze(-1), uv.detach(), uv)
    tex = albedo.unsqueeze(0) if albedo.ndim == 3 else albedo
    albedo_img = renderer.sample_texture(tex, uv, uv_da, filter_mode)

    vn = vertex_normals(verts, faces)
    normal_raw = renderer.interpolate(vn, frags, faces)
    bg_rgb = background_image(background, B, (H, W), device)
    fused = renderer.caps(device).fused_kernels
    if fused and lighting == "SH" and sh is not None:
        rgba, diffuse_detach_normal = shade_composite(normal_raw, albedo_img, covered, bg_rgb, sh)
        normal = None
    else:
        normal = normalize_pixels(normal_raw)
        rgba, diffuse_detach_normal = shade_composite_reference(normal, albedo_img, covered, bg_rgb, sh, lighting)

    if face_cluster is not None:
        cid = _per_pixel(face_cluster.to(device=device, dtype=torch.int16), frags.tri_id, 0)
    else:
        cid = covered.to(torch.int16)
    if perturb_rates is not None:
        rgba = perturb_appearance(
            rgba,
            cid,
            perturb_rates[0],
            perturb_rates[1],
            generator,
            num_clusters=num_clusters,
            fused=fused,
        )

    clip_aa = clip
    if boundary_align_off_verts is not None:
        off_v = boundary_align_off_verts.to(device).view(1, -1, 1)
        clip_aa = torch.where(off_v, clip.detach(), clip)
    return HeadRender(
        rgba=renderer.antialias(rgba, frags, clip_aa, faces),
        albedo_sample=albedo_img,
        normal=normal,
        diffuse_detach_normal=diffuse_detach_normal,
        cluster_id=cid,
        tri_id=frags.tri_id,
        clip=clip,
        fragments=frags,
    )


@torch.no_grad()
def render_visual(
    verts: torch.Tensor,
    faces: torch.Tensor,
    cameras: Cameras,
    *,
    shading: str = "smooth",
    uvs: torch.Tensor | None = None,
    uv_faces: torch.Tensor | None = None,
    texture: torch.Tensor | None = None,
    vertex_colors: torch.Tensor | None = None,
    sh: torch.Tensor | None = None,
    background: torch.Tensor | float | str = "white",
    renderer: MeshRenderer | None = None,
) -> dict[str, torch.Tensor]:
    """No-gradient visualisation render (VHAP_SPEC §3.9).

    Colour from ``texture`` (3,Ht,Wt) with ``uvs``/``uv_faces``, else ``vertex_colors`` (B|1,V,3), else white.
    ``shading`` "smooth" (interpolated vertex normals) or "flat" (face normals). With ``sh`` (B|1,9,3) the
    lighting is SH on world-space normals; otherwise "front" on camera-space normals (OpenGL, +z to the viewer).
    Returns rgba (B,H,W,4) antialiased, albedo, normal (the normals used for shading), diffuse, alpha, tri_id, clip.
    """
    renderer = renderer or default_renderer()
    device = verts.device
    B = cameras.batch_size
    H, W = cameras.image_size
    faces = faces.to(device=device, dtype=torch.long)
    if verts.shape[0] == 1 and B > 1:
        verts = verts.expand(B, -1, -1)
    clip = cameras.to_clip(verts)
    frags = renderer.rasterize(clip, faces, (H, W), cull_backfaces=True)
    covered = frags.mask.unsqueeze(-1)

    if sh is None:
        rot = cameras.w2c_opengl()[:, :3, :3]
        space_verts = verts @ rot.transpose(1, 2)
    else:
        space_verts = verts
    if shading == "flat":
        fn = face_normals(space_verts, faces)  # (B,F,3)
        idx = frags.tri_id.clamp(min=0).view(B, -1, 1).expand(-1, -1, 3)
        normal = fn.gather(1, idx).view(B, H, W, 3) * covered
    else:
        normal = normalize_pixels(renderer.interpolate(vertex_normals(space_verts, faces), frags, faces))
    diffuse = shade("SH" if sh is not None else "front", normal, sh)

    if texture is not None and uvs is not None and uv_faces is not None:
        uv, uv_da = _interpolate_uv(renderer, uvs.to(device), uv_faces.to(device=device, dtype=torch.long), frags)
        tex = texture.unsqueeze(0) if texture.ndim == 3 else texture
        albedo = renderer.sample_texture(tex.to(device), uv, uv_da, "auto")
    elif vertex_colors is not None:
        albedo = renderer.interpolate(vertex_colors.to(device), frags, faces)
    else:
        albedo = torch.ones(B, H, W, 3, device=device)
    rgb = albedo * diffuse
    alpha = frags.alpha
    bg = background_image(background, B, (H, W), device)
    rgba = torch.cat([composite(rgb, alpha, bg), alpha], dim=-1)
    rgba = renderer.antialias(rgba, frags, clip, faces)
    return {
        "rgba": rgba,
        "albedo": albedo * covered,
        "normal": normal,
        "diffuse": diffuse * covered,
        "alpha": alpha,
        "tri_id": frags.tri_id,
        "clip": clip,
    }


@torch.no_grad()
def overlay(render_rgba: torch.Tensor, image: torch.Tensor, opacity: float = 0.6) -> torch.Tensor:
    """Blend a visual render (B,H,W,4) over images (B,H,W,3) in [0,1] where the mesh is, with ``opacity``."""
    a = render_rgba[..., 3:4].clamp(0, 1) * opacity
    return render_rgba[..., :3] * a + image * (1 - a)
