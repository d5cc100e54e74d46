"""Homogeneous clipping of triangles against the near and far planes and a guard band.

Triangles that cross the near plane would otherwise project through infinity and smear across the
image; triangles far outside the screen would overflow the rasterizer's fixed-point arithmetic.
Each clipped polygon is fan-triangulated; every output vertex carries its barycentric coordinates
in the original triangle, so attributes are interpolated on the original face.

Intersections are computed from the inside vertex towards the outside one, so the two triangles
sharing an edge produce bit-identical clipped vertices and the surface stays watertight.
"""

from __future__ import annotations

import torch

# Screen-space guard band in units of the half-screen: geometry beyond |x|, |y| > GUARD_BAND * w
# is cut away. It is wide enough that no visible pixel is affected by the cut.
GUARD_BAND = 4.0


def plane_distances(clip: torch.Tensor) -> torch.Tensor:
    """(..., 4) clip positions -> (..., 6) signed distances; >= 0 means inside each plane.

    Planes: near (z >= -w), far (z <= w), then the guard band on x and y.
    """
    x, y, z, w = clip.unbind(-1)
    g = GUARD_BAND * w
    return torch.stack([z + w, w - z, g - x, g + x, g - y, g + y], dim=-1)


def frustum_outside(clip: torch.Tensor) -> torch.Tensor:
    """(F, 3, 4) -> (F,) bool: True when all three corners lie outside one plane of the view frustum."""
    x, y, z, w = clip.unbind(-1)
    outside = torch.stack([x > w, x < -w, y > w, y < -w, z > w, z < -w], dim=-1)  # (F, 3, 6)
    return outside.all(dim=1).any(dim=-1)


def _clip_polygons(verts: torch.Tensor, counts: torch.Tensor, plane: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Sutherland-Hodgman pass. verts: (M, K, 7) = clip xyzw + barycentrics; counts: (M,)."""
    m, k, _ = verts.shape
    slots = torch.arange(k, device=verts.device)
    valid = slots[None, :] < counts[:, None]
    nxt = torch.where(slots[None, :] + 1 < counts[:, None], slots[None, :] + 1, 0)  # (M, K)
    cur_v = verts
    nxt_v = torch.gather(verts, 1, nxt[..., None].expand(-1, -1, verts.shape[-1]))
    d_cur = plane_distances(cur_v[..., :4])[..., plane]
    d_nxt = plane_distances(nxt_v[..., :4])[..., plane]
    in_cur, in_nxt = d_cur >= 0, d_nxt >= 0
    # Canonical direction: from the inside end of the edge to the outside end.
    v_in = torch.where(in_cur[..., None], cur_v, nxt_v)
    v_out = torch.where(in_cur[..., None], nxt_v, cur_v)
    d_in = torch.where(in_cur, d_cur, d_nxt)
    d_out = torch.where(in_cur, d_nxt, d_cur)
    t = (d_in / torch.where(in_cur != in_nxt, d_in - d_out, torch.ones_like(d_in)))[..., None]
    crossing = v_in + t * (v_out - v_in)
    candidates = torch.stack([cur_v, crossing], dim=2).reshape(m, 2 * k, verts.shape[-1])
    keep = torch.stack([valid & in_cur, valid & (in_cur != in_nxt)], dim=2).reshape(m, 2 * k)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    new_counts = keep.sum(dim=1)
    width = max(int(new_counts.max()), 3) if m else 3
    order = order[:, :width]
    compact = torch.gather(candidates, 1, order[..., None].expand(-1, -1, candidates.shape[-1]))
    return compact, new_counts


def clip_triangles(tri_clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clips (M, 3, 4) clip-space triangles against near, far and the guard band.

    Returns (prims (P, 3, 4), bary (P, 3, 3), source (P,) int64): the output triangles, the
    barycentric coordinates of their corners in the source triangle, and the source's row in the
    input. Triangles entirely outside vanish; a triangle may become up to 7 triangles.
    """
    m = tri_clip.shape[0]
    if m == 0:
        empty = tri_clip.new_zeros((0, 3, 7))
        return empty[..., :4], empty[..., 4:], torch.zeros(0, dtype=torch.int64, device=tri_clip.device)
    eye = torch.eye(3, dtype=tri_clip.dtype, device=tri_clip.device).expand(m, 3, 3)
    verts = torch.cat([tri_clip, eye], dim=-1)
    counts = torch.full((m,), 3, dtype=torch.int64, device=tri_clip.device)
    for plane in range(6):
        verts, counts = _clip_polygons(verts, counts, plane)
    fans = []
    for j in range(1, verts.shape[1] - 1):
        rows = torch.nonzero(counts > j + 1).squeeze(1)
        fans.append((rows, torch.stack([verts[rows, 0], verts[rows, j], verts[rows, j + 1]], dim=1)))
    source = torch.cat([rows for rows, _ in fans])
    prims = torch.cat([tris for _, tris in fans])
    return prims[..., :4], prims[..., 4:], source
