"""A UV layout's texels: the layout rasterized in texture space, and colours grown outwards from its islands.

What the texture transfer, the finishing of a job's texture and the benchmark's bake share."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ..raster import Fragments, rasterize


def uv_clip(corners: torch.Tensor) -> torch.Tensor:
    """(N, 2) texture coordinates -> (N, 4) clip positions of a size^2 raster whose row 0 is v = 1."""
    corners = corners.to(torch.float32)
    return torch.cat([corners * 2 - 1, torch.zeros_like(corners[:, :1]), torch.ones_like(corners[:, :1])], dim=1)


MAX_TILES = 8  # tiles a face's copies cover along each axis, at most (a face over more shows the whole texture anyway)


def tile_copies(uvs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each triangle (F, 3, 2) moved by whole tiles onto the unit square, once for every tile its UV footprint reaches
    into: the texture wraps, so a face whose UVs lie past 1 (a texture tiled or moved by a Mapping node or a glTF
    transform) reads texels there too. Returns the copies (C, 3, 2) and the face each is of (C,), in face order; a
    layout inside the unit square comes back as it is."""
    faces = torch.arange(uvs.shape[0], device=uvs.device)
    low = torch.floor(uvs.min(dim=1).values)
    span = (torch.ceil(uvs.max(dim=1).values) - low).clamp(min=1, max=MAX_TILES).to(torch.int64)
    if bool((low == 0).all()) and bool((span == 1).all()):
        return uvs, faces
    counts = span[:, 0] * span[:, 1]
    face = torch.repeat_interleave(faces, counts)
    k = torch.arange(len(face), device=uvs.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    tile = low[face] + torch.stack([k % span[face, 0], k // span[face, 0]], dim=1).to(uvs.dtype)
    return uvs[face] - tile[:, None, :], face


def uv_fragments(uvs: torch.Tensor, size: int) -> Fragments:
    """Fragments of a size^2 raster of the UV layout: per-corner uvs (F, 3, 2) as triangles in texture space, face
    ids the mesh's, row 0 at v = 1 (the texture's image layout). The texture wraps: a face reaching past the unit
    square covers the texels it reads there (tile_copies), with its own face id and barycentrics."""
    copies, face = tile_copies(uvs)
    fragments = rasterize(uv_clip(copies.reshape(-1, 2)), torch.arange(len(copies) * 3, device=uvs.device).view(-1, 3),
                          size)
    if copies is uvs:
        return fragments
    return replace(fragments, face_ids=torch.where(fragments.face_ids >= 0, face[fragments.face_ids.clamp(min=0)], -1))


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
