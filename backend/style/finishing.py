"""After optimization: which texels were seen, filling the rest, and padding UV islands.

The reference method leaves texels that no view saw at their random start. Here they are counted
(coverage) and replaced from the original texture, or grown in from seen neighbours when there is
no original. UV islands are then padded outwards (like Blender's bake margin), so that bilinear
filtering and mip-mapping near island borders never blend in unrelated texels: no seams.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..raster import rasterize


def uv_island_mask(uvs: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size) bool, image layout: texels whose centre lies inside some triangle's UV footprint,
    grown by one texel so that texels partly covered by a thin island count too.

    The rasterizer does the work: corners are placed at clip (2u - 1, 2v - 1, 0, 1), so its row 0
    (top) is v = 1, exactly the texture's image layout.
    """
    corners = uvs.reshape(-1, 2).to(torch.float32)
    clip = torch.cat([corners * 2 - 1, torch.zeros_like(corners[:, :1]), torch.ones_like(corners[:, :1])], dim=1)
    faces = torch.arange(len(corners), device=uvs.device).view(-1, 3)
    inside = rasterize(clip, faces, size).mask
    return F.max_pool2d(inside[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0


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


def finish_texture(
    texture: torch.Tensor,
    seen: torch.Tensor,
    island: torch.Tensor,
    original: torch.Tensor | None,
    margin: int,
) -> tuple[torch.Tensor, float]:
    """Returns (finished texture, coverage): coverage is the fraction of island texels that lie under
    a face some view saw (`seen`); unseen island texels come from `original` (same size) or are grown
    from seen ones; then islands are padded by `margin` texels."""
    seen_island = seen & island
    coverage = float(seen_island.sum()) / max(int(island.sum()), 1)
    if original is not None:
        filled = torch.where(seen_island[..., None], texture, original)
    else:
        filled, _ = grow(torch.where(seen_island[..., None], texture, torch.zeros_like(texture)), seen_island)
        filled = torch.where(island[..., None], filled, texture)
    padded, reached = grow(torch.where(island[..., None], filled, torch.zeros_like(filled)), island, margin)
    return torch.where(reached[..., None], padded, filled), coverage


def editable_weight(uvs: torch.Tensor, editable: torch.Tensor, size: int, feather: int) -> torch.Tensor:
    """(size, size) weight in [0, 1] of the result against the original when only `editable` faces (F,) bool
    may change: 0 on every texel under a face that may not (those keep the original exactly), 1 deep inside
    the editable faces' islands, rising over `feather` texels from their border, so no hard seam shows."""
    inside = uv_island_mask(uvs[editable], size) & ~uv_island_mask(uvs[~editable], size) if bool(editable.any()) \
        else torch.zeros(size, size, dtype=torch.bool, device=uvs.device)
    depth = inside.to(torch.float32)
    ring = depth
    for _ in range(feather):  # erode once per ring: texels still inside after k erosions are k deep
        ring = -F.max_pool2d(-ring[None, None], 3, stride=1, padding=1)[0, 0]
        depth = depth + ring
    return (depth / (feather + 1)).clamp(max=1)
