"""After optimization: which texels were seen, filling the rest, and padding UV islands.

The reference method leaves texels that no view saw at their random start. Here they are counted
(coverage) and replaced from the original texture, or grown in from seen neighbours when there is
no original. UV islands are then padded outwards (like Blender's bake margin), so that bilinear
filtering and mip-mapping near island borders never blend in unrelated texels: no seams.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..mesh.seams import UVSeams, gutter_sources
from ..raster import rasterize
from ..texture import sample
from ..texture.uv_layout import grow, uv_clip, uv_fragments

SEAM_GUTTER = 8  # texels outside a seam edge continued from across the seam: mip levels up to 3 see them


def uv_island_mask(uvs: torch.Tensor, size: int, grown: bool = True) -> torch.Tensor:
    """(size, size) bool, image layout: texels whose centre lies inside some triangle's UV footprint,
    grown by one texel (unless not `grown`) so that texels partly covered by a thin island count too.

    The rasterizer does the work: corners are placed at clip (2u - 1, 2v - 1, 0, 1), so its row 0
    (top) is v = 1, exactly the texture's image layout.
    """
    inside = uv_fragments(uvs, size).mask
    if not grown:
        return inside
    return F.max_pool2d(inside[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0


def gutter_map(uvs: torch.Tensor, seams: UVSeams, size: int, depth: int = SEAM_GUTTER
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which texels of a size^2 texture continue the surface across a seam, and from where: texels within
    `depth` texels outside a seam edge whose centres lie in no face's UV footprint (the rim just outside an
    island too: bilinear lookups at its edge read it). Returns (filled (S, S) bool, source uv (N, 2) of the
    filled texels in row-major order, quad (N,): gutter_sources' quad each lies in, seam edge = quad % E,
    outside side a when quad < E)."""
    island = uv_island_mask(uvs, size, grown=False)
    quads, sources = gutter_sources(seams, size, depth)
    device = uvs.device
    if len(quads) == 0:
        none = torch.zeros(0, dtype=torch.int64, device=device)
        return torch.zeros_like(island), torch.zeros(0, 2, device=device), none
    corners = torch.from_numpy(quads.reshape(-1, 2)).to(device)
    first = torch.arange(len(quads), device=device).view(-1, 1, 1) * 4
    faces = (first + torch.tensor([[0, 1, 2], [0, 2, 3]], device=device).view(1, 2, 3)).reshape(-1, 3)
    # Drawn where they lie, not wrapped as the faces are (uv_fragments): a quad reaching past the square's edge would
    # claim texels at the opposite edge from the edge there (on a two-island sphere the seam on its edge read 0.020
    # against 0.015).
    fragments = rasterize(uv_clip(corners), faces, size)
    filled = fragments.mask & ~island
    source = torch.from_numpy(sources.reshape(-1, 2)).to(device, torch.float32)
    face = fragments.face_ids[filled]
    uv = (fragments.bary[filled][..., None] * source[faces[face]]).sum(dim=1)
    return filled, uv, face // 2


def fill_across_seams(texture: torch.Tensor, uvs: torch.Tensor, seams: UVSeams, boundary: str = "wrap",
                      depth: int = SEAM_GUTTER) -> tuple[torch.Tensor, torch.Tensor]:
    """The gutter texels of gutter_map take the colour of the surface across the seam, read bilinearly from the
    island on the other side: a lookup at the seam then blends matching colours. texture (S, S, C), uvs
    (F, 3, 2). Returns (texture, filled (S, S) bool)."""
    filled, uv, _ = gutter_map(uvs, seams, texture.shape[0], depth)
    if not bool(filled.any()):
        return texture, filled
    out = texture.clone()
    out[filled] = sample(texture, uv.to(texture.dtype), filter="linear", boundary=boundary)
    return out, filled


def finish_texture(
    texture: torch.Tensor,
    seen: torch.Tensor,
    island: torch.Tensor,
    original: torch.Tensor | None,
    margin: int,
    seams: UVSeams | None = None,
    uvs: torch.Tensor | None = None,
    boundary: str = "wrap",
) -> tuple[torch.Tensor, float]:
    """Returns (finished texture, coverage): coverage is the fraction of island texels that lie under
    a face some view saw (`seen`); unseen island texels come from `original` (same size) or are grown
    from seen ones; the gutter just outside seam edges is continued from across the seam (`seams`, with
    the mesh's `uvs` (F, 3, 2)); then islands are padded by `margin` texels."""
    seen_island = seen & island
    coverage = float(seen_island.sum()) / max(int(island.sum()), 1)
    if original is not None:
        filled = torch.where(seen_island[..., None], texture, original)
    else:
        filled, _ = grow(torch.where(seen_island[..., None], texture, torch.zeros_like(texture)), seen_island)
        filled = torch.where(island[..., None], filled, texture)
    known = island
    if seams is not None and uvs is not None and margin > 0:
        filled, across = fill_across_seams(filled, uvs, seams, boundary, min(margin, SEAM_GUTTER))
        known = island | across
    padded, reached = grow(torch.where(known[..., None], filled, torch.zeros_like(filled)), known, margin)
    return torch.where(reached[..., None], padded, filled), coverage


def editable_weight(uvs: torch.Tensor, editable: torch.Tensor, size: int, feather: int, reach: int = 0) -> torch.Tensor:
    """(size, size) weight in [0, 1] of the result against the original when only `editable` faces (F,) bool
    may change: 0 on every texel under a face that may not (those keep the original exactly), rising to 1 over
    `feather` texels away from them, so no hard edge shows where the selection meets the rest; 1 elsewhere in the
    editable faces' islands and up to `reach` texels outside them, where the finished result's seam gutters and
    padding lie (a weight falling at every island's edge drew the original along each UV seam of the selection);
    0 beyond."""
    def grown(mask: torch.Tensor, texels: int) -> torch.Tensor:
        return F.max_pool2d(mask[None, None].float(), 2 * texels + 1, stride=1, padding=texels)[0, 0] > 0

    none = torch.zeros(size, size, dtype=torch.bool, device=uvs.device)
    frozen = uv_island_mask(uvs[~editable], size) if bool((~editable).any()) else none
    restyled = uv_island_mask(uvs[editable], size) if bool(editable.any()) else none
    depth = frozen.to(torch.float32)
    near = depth
    for _ in range(feather):  # grow once per ring: texels the k-th growth reaches are k texels from a frozen one
        near = F.max_pool2d(near[None, None], 3, stride=1, padding=1)[0, 0]
        depth = depth + near
    return (1 - depth / (feather + 1)) * grown(restyled, reach)
