"""The render pipeline: mesh + camera + texture -> image, differentiable in the texture.

rasterize (no gradient) -> surface_uv (per-pixel UV and its derivatives) -> sample (gradient flows
into the texture) -> composite over the background -> optional supersampling downscale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .mesh import Mesh
from .raster import Fragments, rasterize
from .raster.culling import closed_orientation
from .texture import MipPyramid, SamplePlan, gather, plan_samples, surface_uv
from .texture.sample import as_pyramid
from .views import Camera


@dataclass(frozen=True)
class MeshTensors:
    """A Mesh moved to a device once, for repeated rendering."""

    positions: torch.Tensor  # (V, 4) homogeneous, float32
    faces: torch.Tensor  # (F, 3) int64, a view of (3, F) corner rows: the layout the rasterizer reads
    uvs: torch.Tensor  # (F, 3, 2) float32
    # +1 / -1: a closed surface facing outward / inward, whose back faces the rasterizer may skip; 0: open.
    orientation: int = 0

    @classmethod
    def from_mesh(cls, mesh: Mesh, device: torch.device | str = "cpu") -> "MeshTensors":
        positions = np.concatenate([mesh.positions, np.ones((len(mesh.positions), 1), np.float32)], axis=1)
        return cls(
            torch.from_numpy(positions).to(device),
            # Stored corner-major once, so that triangle setup does not transpose 3F indices for every view
            # (4 ms a view on a 510k-triangle mesh).
            torch.from_numpy(np.ascontiguousarray(mesh.faces.T)).to(device).T,
            torch.from_numpy(mesh.uvs).to(device),
            closed_orientation(mesh.positions, mesh.faces),
        )


def clip_positions(mesh: MeshTensors, camera: Camera, shift: tuple[float, float] | None = None, size: int = 1) -> torch.Tensor:
    """(V, 4) clip-space positions of the mesh's vertices for `camera`; `shift` moves the image by
    (dx, dy) pixels of a size x size render (x right, y up), which is the same as moving the pixel grid."""
    matrix = camera.world_to_clip()
    if shift is not None:
        move = np.eye(4)
        move[0, 3], move[1, 3] = 2 * shift[0] / size, 2 * shift[1] / size  # NDC spans 2 over `size` pixels
        matrix = move @ matrix
    matrix = torch.as_tensor(matrix, dtype=torch.float32, device=mesh.positions.device)
    return mesh.positions @ matrix.T


def rasterize_view(mesh: MeshTensors, camera: Camera, size: int, shift: tuple[float, float] | None = None) -> Fragments:
    return rasterize(clip_positions(mesh, camera, shift, size), mesh.faces, size, orientation=mesh.orientation)


@dataclass(frozen=True)
class ShadingPlan:
    """The texture lookups of one view: which pixels a face covers and where each reads the packed
    texel table. It depends on the pyramid's level sizes, not its values, so a view shown again
    is shaded with one weighted gather."""

    pixel: torch.Tensor  # (N,) flat indices into height * width
    samples: SamplePlan
    height: int
    width: int


def plan_shading(
    fragments: Fragments,
    uvs: torch.Tensor,
    sizes: torch.Tensor,
    offsets: torch.Tensor,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
    dtype: torch.dtype = torch.float32,
) -> ShadingPlan:
    """Plans the lookups of `fragments` into a pyramid of level `sizes` and `offsets`."""
    pixel, uv, uv_dxy = surface_uv(uvs, fragments)
    h, w = fragments.face_ids.shape
    return ShadingPlan(pixel, plan_samples(sizes, offsets, uv.to(dtype), uv_dxy, filter, boundary), h, w)


def shade_planned(plan: ShadingPlan, texels: torch.Tensor, background: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Textured image (H, W, C) from a plan and the texel table it was made for."""
    return place(plan, gather(texels, plan.samples), background)


def place(plan: ShadingPlan, colors: torch.Tensor, background: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Image (H, W, C) of a plan's gathered colours (N, C) over `background`."""
    flat = torch.as_tensor(background, dtype=colors.dtype, device=colors.device).expand(plan.height * plan.width, colors.shape[1])
    return flat.index_put((plan.pixel,), colors).view(plan.height, plan.width, colors.shape[1])


def shade(
    fragments: Fragments,
    uvs: torch.Tensor,
    texture: torch.Tensor | MipPyramid,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
    background: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Textured image (H, W, C) from fragments; background where no face covers a pixel."""
    pyramid = as_pyramid(texture, filter)
    plan = plan_shading(fragments, uvs, pyramid.sizes, pyramid.offsets, filter, boundary, pyramid.texels.dtype)
    return shade_planned(plan, pyramid.texels, background)


def surface_points(mesh: MeshTensors, fragments: Fragments) -> torch.Tensor:
    """(H, W, 3) world positions of the pixel centres (0 on background)."""
    corners = mesh.positions[:, :3][mesh.faces[fragments.face_ids.clamp(min=0)]]  # (H, W, 3 corners, 3)
    return (fragments.bary[..., None] * corners).sum(dim=2) * fragments.mask[..., None]


def facing(mesh: MeshTensors, fragments: Fragments, eye, signed: bool = False) -> torch.Tensor:
    """(H, W) |cos| of the angle between each covered pixel's face normal and the direction to the eye: 1 seen
    head-on, towards 0 seen edge-on; 0 on background. Faces count from both sides, as they render. With `signed`,
    the cosine itself: below 0 where a face is seen from its back (by its winding)."""
    corners = mesh.positions[:, :3][mesh.faces[fragments.face_ids.clamp(min=0)]]
    normal = torch.linalg.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])
    points = (fragments.bary[..., None] * corners).sum(dim=2)
    to_eye = torch.as_tensor(eye, dtype=points.dtype, device=points.device) - points
    cos = (normal * to_eye).sum(-1) / (normal.norm(dim=-1) * to_eye.norm(dim=-1)).clamp(min=1e-20)
    return (cos if signed else cos.abs()) * fragments.mask


def render(
    mesh: MeshTensors,
    camera: Camera,
    texture: torch.Tensor | MipPyramid,
    size: int,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
    supersample: int = 1,
    background: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Renders a size x size image (H, W, C), row 0 at the top; differentiable in `texture`.

    supersample k renders at k*size and averages k x k blocks (antialiasing of silhouettes).
    """
    if supersample < 1:
        raise ValueError(f"supersample must be at least 1, got {supersample}")
    fragments = rasterize_view(mesh, camera, size * supersample)
    image = shade(fragments, mesh.uvs, texture, filter, boundary, background)
    if supersample > 1:
        image = F.avg_pool2d(image.permute(2, 0, 1)[None], supersample)[0].permute(1, 2, 0)
    return image
