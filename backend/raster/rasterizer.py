"""Watertight z-buffer rasterization in pure PyTorch (one code path for CPU and CUDA).

How it works, and why:
- Triangle setup (triangle_setup.py) snaps vertices to 1/256 pixel and builds exact edge functions,
  so coverage tests are exact and a shared edge is never claimed twice nor left open.
- Each (triangle, row) of a bounding box yields its exact covered span by integer division, so only
  covered pixels are ever visited: memory and time follow the covered area, not the boxes.
- Fragments are processed in chunks of bounded count, so memory stays flat from 1 to millions of
  triangles and at any image size.
- The z-buffer is a scatter-min over 64-bit keys (depth bits << 32 | primitive index): the nearest
  fragment wins and equal depths go to the lower index, so results are deterministic.
- Barycentrics and their screen derivatives are computed once, for the winning triangle only.
Rasterization has no gradient: texture optimization needs gradients through the texture lookup only.
"""

from __future__ import annotations

import torch

from .fragments import Fragments
from ..gather import take
from .triangle_setup import HALF_PIXEL, MAX_SIZE, SUBPIXEL, Primitives, setup_triangles

EMPTY_KEY = torch.iinfo(torch.int64).max
DEFAULT_CHUNK = 1 << 21  # fragments per chunk; bounds the temporaries to about 100 MB


def _spans(coef: torch.Tensor, row: torch.Tensor, col0: torch.Tensor, col1: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Covered columns [first, first + count) of pixel rows `row` (N,) of triangles with edge
    coefficients coef (9, N), within the candidate columns [col0, col1].

    For row Y the test A X + (B Y + C) > 0 is linear in X = 256 px + 128, so each edge bounds px
    from one side. r and d are exact integers (see triangle_setup) and |d| < 2^34, so the float64
    quotient is never rounded across an integer within the image: floor() gives the exact bound.
    """
    a = coef[0:3]
    k = coef[3:6] * (row * SUBPIXEL + HALF_PIXEL) + coef[6:9]
    # a (256 px + 128) + k > 0  <=>  d px > r  with d = 256 a, r = -k - 128 a.
    d = a * SUBPIXEL
    quotient = (-k - HALF_PIXEL * a) / d  # +-inf or nan where d == 0: those edges are `blocked` below
    lower = torch.where(d > 0, torch.floor(quotient) + 1, 0.0).amax(dim=0)
    upper = torch.where(d < 0, torch.ceil(quotient) - 1, size - 1.0).amin(dim=0)
    # A horizontal edge does not bound px: its row is wholly in or out.
    blocked = ((d == 0) & (k <= 0)).any(dim=0)
    first = torch.maximum(lower, col0.to(torch.float64))
    last = torch.minimum(upper, col1.to(torch.float64))
    count = torch.where(blocked, 0.0, (last - first + 1).clamp(min=0))
    return first.to(torch.int64), count.to(torch.int64)


def _row_spans(prims: Primitives, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact covered pixel span of every (primitive, row) of the bounding boxes.

    Returns (prim, row, first, count) for every nonempty span. Triangles one row tall, most of
    them on dense meshes and placed first by triangle setup, are handled in place; the others are
    expanded into one item per row.
    """
    bbox, n = prims.bbox, prims.single_rows
    first, count = _spans(prims.coef[:, :n], bbox[2, :n], bbox[0, :n], bbox[1, :n], size)
    height = bbox[3, n:] - bbox[2, n:] + 1
    prim = n + torch.repeat_interleave(torch.arange(len(height), device=bbox.device), height)
    start = torch.repeat_interleave(torch.cumsum(height, 0) - height, height)
    row = take(bbox[2], prim) + torch.arange(len(prim), device=bbox.device) - start
    multi_first, multi_count = _spans(take(prims.coef, prim), row, take(bbox[0], prim), take(bbox[1], prim), size)
    prim = torch.cat([torch.arange(n, device=bbox.device), prim])
    row, first, count = torch.cat([bbox[2, :n], row]), torch.cat([first, multi_first]), torch.cat([count, multi_count])
    keep = torch.nonzero(count).squeeze(1)
    return take(prim, keep), take(row, keep), take(first, keep), take(count, keep)


def _chunks(count: torch.Tensor, chunk: int) -> list[tuple[int, int]]:
    """Splits consecutive spans into runs of at most about `chunk` fragments (a span is never cut)."""
    ends = torch.cumsum(count, 0)
    marks = torch.arange(chunk, int(ends[-1]) + chunk, chunk, device=count.device)
    cuts = sorted({0, len(count), *torch.searchsorted(ends, marks, right=True).clamp(max=len(count)).tolist()})
    return list(zip(cuts[:-1], cuts[1:]))


def _zbuffer(prims: Primitives, size: int, chunk: int) -> torch.Tensor:
    """Scatter-min of (depth, primitive) keys over all covered pixels: (size*size,) int64."""
    device = prims.coef.device
    zbuf = torch.full((size * size,), EMPTY_KEY, dtype=torch.int64, device=device)
    prim, row, first, count = _row_spans(prims, size)
    if len(prim) == 0:
        return zbuf
    # 1/depth is affine in screen space (d/dpx and d/dpy from the edge functions); it is expanded
    # around corner 0 so large constant terms never cancel.
    scale = SUBPIXEL / prims.area
    step_x = take((prims.coef[0:3] * prims.q).sum(dim=0) * scale, prim)
    step_y = take((prims.coef[3:6] * prims.q).sum(dim=0) * scale, prim)
    corner = take(prims.corner0, prim)
    base = take(prims.q[0], prim) + (first + 0.5 - corner[0]) * step_x + (row + 0.5 - corner[1]) * step_y
    pixel = row * size + first
    for lo, hi in _chunks(count, chunk):
        n = count[lo:hi]
        span = torch.repeat_interleave(torch.arange(lo, hi, device=device), n)
        offset = torch.arange(len(span), device=device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        depth = (1.0 / (take(base, span) + offset * take(step_x, span))).to(torch.float32)
        key = (depth.view(torch.int32).to(torch.int64) << 32) | take(prim, span)
        zbuf.scatter_reduce_(0, take(pixel, span) + offset, key, reduce="amin")
    return zbuf


def _face_barycentrics(prims: Primitives, prim: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Perspective-correct face barycentrics (N, 3), their pixel derivatives (N, 3, 2) and depth (N,)."""
    coef = take(prims.coef, prim)  # (9, N)
    cx = px * SUBPIXEL + HALF_PIXEL
    cy = py * SUBPIXEL + HALF_PIXEL
    area = take(prims.area, prim)
    lam = (coef[0:3] * cx + coef[3:6] * cy + coef[6:9] - take(prims.bias, prim)) / area
    dlam = torch.stack([coef[0:3], coef[3:6]]) * (SUBPIXEL / area)  # (2, 3, N): d/dx, d/dy
    q = take(prims.q, prim)  # (3, N)
    s = (lam * q).sum(dim=0)
    bary = lam * q / s
    # Quotient rule on b_i = lam_i q_i / sum_j lam_j q_j.
    ds = (dlam * q).sum(dim=1, keepdim=True)  # (2, 1, N)
    dbary = (q * dlam - bary * ds) / s  # (2, 3, N)
    bary, dbary = bary.T, dbary.permute(2, 1, 0)  # (N, 3), (N, 3, 2)
    # Primitives made by clipping map back onto their source faces.
    clipped = torch.nonzero(prim >= prims.first_clipped).squeeze(1)
    if len(clipped):
        corner = prims.clipped_bary[prim[clipped] - prims.first_clipped]  # (Nc, 3, 3)
        bary = bary.clone()
        dbary = dbary.clone()
        bary[clipped] = torch.einsum("nk,nkj->nj", bary[clipped], corner)
        dbary[clipped] = torch.einsum("nkd,nkj->njd", dbary[clipped], corner)
    return bary, dbary, 1.0 / s


@torch.no_grad()
def rasterize(clip: torch.Tensor, faces: torch.Tensor, size: int, chunk: int = DEFAULT_CHUNK, orientation: int = 0) -> Fragments:
    """Rasterizes one view.

    clip:  (V, 4) float, clip-space vertex positions (P @ V @ [x, y, z, 1]).
    faces: (F, 3) int64 vertex indices.
    size:  output is size x size pixels; pixel (x, y) is covered when its centre (x+0.5, y+0.5)
           lies inside the projected triangle (row 0 at the top).
    chunk: upper bound on fragments processed at once (a memory knob; results do not depend on it).
    orientation: +1 / -1 for a closed surface facing outward / inward (culling.closed_orientation), whose
           back faces are then skipped when they cannot be seen; 0 (any mesh) renders both sides.
    """
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"image size must lie in [1, {MAX_SIZE}], got {size}")
    device = clip.device
    prims = setup_triangles(clip, faces, size, orientation)
    zbuf = _zbuffer(prims, size, chunk)

    covered = torch.nonzero(zbuf != EMPTY_KEY).squeeze(1)
    prim = zbuf[covered] & 0xFFFFFFFF
    bary, dbary, depth = _face_barycentrics(prims, prim, covered % size, torch.div(covered, size, rounding_mode="floor"))

    face_ids = torch.full((size * size,), -1, dtype=torch.int64, device=device)
    face_ids[covered] = take(prims.face, prim)
    bary_out = torch.zeros(size * size, 3, dtype=torch.float32, device=device)
    bary_out[covered] = bary.to(torch.float32)
    depth_out = torch.full((size * size,), float("inf"), dtype=torch.float32, device=device)
    depth_out[covered] = depth.to(torch.float32)
    dxy = torch.zeros(size * size, 3, 2, dtype=torch.float32, device=device)
    dxy[covered] = dbary.to(torch.float32)
    return Fragments(face_ids.view(size, size), bary_out.view(size, size, 3), depth_out.view(size, size), dxy.view(size, size, 3, 2))
