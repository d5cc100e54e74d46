"""A UV layout's texels: the layout rasterized in texture space, and colours grown outwards from its islands.

What the texture transfer, the finishing of a job's texture and the benchmark's bake share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..raster import Fragments, rasterize


def uv_clip(corners: torch.Tensor) -> torch.Tensor:
    """(N, 2) texture coordinates -> (N, 4) clip positions of a size^2 raster whose row 0 is v = 1."""
    corners = corners.to(torch.float32)
    return torch.cat([corners * 2 - 1, torch.zeros_like(corners[:, :1]), torch.ones_like(corners[:, :1])], dim=1)


def uv_fragments(uvs: torch.Tensor, size: int) -> Fragments:
    """Fragments of a size^2 raster of the UV layout: per-corner uvs (F, 3, 2) as triangles in texture space, face
    ids the mesh's, row 0 at v = 1 (the texture's image layout)."""
    faces = torch.arange(uvs.shape[0] * 3, device=uvs.device).view(-1, 3)
    return rasterize(uv_clip(uvs.reshape(-1, 2)), faces, size)


def shared_texels(uvs: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size) bool, image layout: texels whose centre lies in the UV footprints of two or more faces
    (overlapping or mirrored UVs). All faces tie in depth in UV space, where the rasterizer keeps the lowest face
    index, so the layout drawn in face order and in reverse order names different faces exactly there."""
    first = uv_fragments(uvs, size).face_ids
    last = len(uvs) - 1 - uv_fragments(uvs.flip(0), size).face_ids
    return ((first >= 0) & (first != last)).view(size, size)


def grow(texture: torch.Tensor, valid: torch.Tensor, rings: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Extends valid texels outwards ring by ring: each new texel is the mean of its valid 3x3
    neighbours. texture (H, W, C), valid (H, W) bool; rings=None grows until nothing is left.
    Returns (texture, valid) after growing."""
    image = texture.permute(2, 0, 1)[None].clone()
    known = valid[None, None].to(texture.dtype)
    box = torch.ones(1, 1, 3, 3, dtype=texture.dtype, device=texture.device)
    ring = 0
    while (rings is None or ring < rings) and bool((known == 0).any()) and bool((known > 0).any()):
        weight = F.conv2d(known, box, padding=1)
        total = F.conv2d(image * known, box.expand(image.shape[1], 1, 3, 3), padding=1, groups=image.shape[1])
        new = (weight > 0) & (known == 0)
        image = torch.where(new, total / weight.clamp(min=1e-12), image)
        known = torch.where(new, torch.ones_like(known), known)
        ring += 1
    return image[0].permute(1, 2, 0), known[0, 0] > 0
