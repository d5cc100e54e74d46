"""Triangle setup: clip-space triangles -> snapped screen-space primitives with exact edge functions.

Vertices are projected once per vertex (not per triangle corner), so triangles that share a vertex
see bit-identical fixed-point coordinates: that, with integer edge functions and a consistent fill
rule, is what makes the rasterizer watertight. Only the few triangles that cross the near or far
plane or the guard band are clipped, per corner (see clip.py).

Fixed-point values are held in float64: they are integers below 2^53 (see MAX_SIZE and the guard
band), so sums and products are exact, and float64 arithmetic is far faster than int64 on CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .clip import GUARD_BAND, clip_triangles
from ..gather import take

SUBPIXEL_BITS = 8
SUBPIXEL = 1 << SUBPIXEL_BITS  # fixed-point steps per pixel
HALF_PIXEL = SUBPIXEL // 2
# Largest image side. With the guard band, |X|, |Y| < 2^24 fixed-point steps, so edge coefficients
# stay below 2^50 and edge values below 2^53: exact in float64.
MAX_SIZE = 16384

# Vertex outcode bits. The first six are the view frustum (a triangle with all corners beyond one
# of them is invisible); near, far and the guard band force clipping.
_RIGHT, _LEFT, _TOP, _BOTTOM, _FAR, _NEAR = (1 << k for k in range(6))
_GUARD = 0b1111 << 6
_FRUSTUM = 0b111111
_MUST_CLIP = _NEAR | _FAR | _GUARD


@dataclass(frozen=True)
class Primitives:
    """Screen-space triangles ready for scan conversion (P of them), positively oriented.

    Fields are laid out per quantity, (k, P) with P last, so every row is a contiguous vector:
    elementwise work on rows is several times faster on CPUs than on (P, k) columns.

    coef:    (9, P) float64 holding integers: A(3), B(3), C(3) of the edge functions
             E_i = A_i X + B_i Y + C_i in fixed-point units, edge i opposite corner i, so E_i / area
             is corner i's screen barycentric. C has the fill-rule bias folded in: a pixel centre
             is covered when all three E_i > 0.
    bias:    (3, P) float64, that fill-rule bias (0 or 1), to recover exact barycentrics.
    area:    (P,) float64, twice the area (> 0) in fixed-point units squared.
    q:       (3, P) float64, 1 / clip w of each corner.
    corner0: (2, P) float64, corner 0 in pixels.
    bbox:    (4, P) int64, first and last candidate pixel column, then row, clamped to the image.
    face:    (P,) int64, source face index.
    clipped_bary: (Pc, 3, 3) float64, for the last Pc primitives (made by clipping): row k gives the
             barycentrics of primitive corner k in its source face. The others are the face itself.
    single_rows: the first `single_rows` primitives have a bounding box one pixel row tall.
    """

    coef: torch.Tensor
    bias: torch.Tensor
    area: torch.Tensor
    q: torch.Tensor
    corner0: torch.Tensor
    bbox: torch.Tensor
    face: torch.Tensor
    clipped_bary: torch.Tensor
    single_rows: int

    @property
    def first_clipped(self) -> int:
        return len(self.face) - len(self.clipped_bary)


def _outcodes(clip: torch.Tensor) -> torch.Tensor:
    """(V, 4) -> (V,) int32 bit set of the planes each vertex lies beyond."""
    x, y, z, w = clip.unbind(-1)
    g = GUARD_BAND * w
    tests = (x > w, x < -w, y > w, y < -w, z > w, z < -w, x > g, x < -g, y > g, y < -g)
    code = torch.zeros(clip.shape[:-1], dtype=torch.int32, device=clip.device)
    for bit, test in enumerate(tests):
        code |= test.to(torch.int32) << bit
    return code


def _snap(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Clip positions (..., 4) float64 -> (3, ...): fixed-point X, Y (integers, row 0 at the top), 1/w."""
    q = 1.0 / clip[..., 3]
    scale = 0.5 * size * SUBPIXEL
    x = ((clip[..., 0] * q + 1) * scale).round()
    y = ((1 - clip[..., 1] * q) * scale).round()
    return torch.stack([x, y, q])


def _pixel_range(lo: torch.Tensor, hi: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels whose centres p * 256 + 128 lie in [lo, hi], clamped to the image (may be empty)."""
    first = torch.ceil((lo - HALF_PIXEL) / SUBPIXEL).clamp(min=0)
    last = torch.floor((hi - HALF_PIXEL) / SUBPIXEL).clamp(max=size - 1)
    return first, last


def setup_triangles(clip: torch.Tensor, faces: torch.Tensor, size: int, orientation: int = 0) -> Primitives:
    """Culls, clips, snaps and orients the triangles of one view; see Primitives.

    orientation: +1 or -1 when the faces form a closed surface facing outward or inward
    (culling.closed_orientation); its back faces are then dropped whenever no vertex lies beyond the
    near plane, since they can never be seen. 0 keeps every face (open meshes are seen from both sides).
    """
    device = clip.device
    clip = clip.to(torch.float64)
    corners = faces.T.contiguous()  # (3, F)
    vertex_code = _outcodes(clip)
    # Seen from outside (nothing beyond the near plane), a closed surface shows its front faces only.
    cull = orientation if orientation and not bool(((vertex_code & _NEAR) != 0).any()) else 0
    code = take(vertex_code, corners.reshape(-1)).view(3, -1)
    every = code[0] & code[1] & code[2]
    either = code[0] | code[1] | code[2]
    visible = (every & _FRUSTUM) == 0
    must_clip = (either & _MUST_CLIP) != 0
    plain = torch.nonzero(visible & ~must_clip).squeeze(1)
    crossing = torch.nonzero(visible & must_clip).squeeze(1)

    xyq = take(_snap(clip, size), take(corners, plain).reshape(-1)).view(3, 3, -1)  # (quantity, corner, P)
    face = plain
    clipped_bary = clip.new_zeros((0, 3, 3))
    if len(crossing):
        cut, clipped_bary, source = clip_triangles(clip[faces[crossing]])
        xyq = torch.cat([xyq, _snap(cut, size).transpose(1, 2)], dim=2)
        face = torch.cat([plain, crossing[source]])
    x, y, q = xyq.unbind(0)  # each (3, P)

    # Drop triangles whose bounding box holds no pixel centre before any further work: on dense
    # meshes most triangles are smaller than a pixel.
    col0, col1 = _pixel_range(x.amin(dim=0), x.amax(dim=0), size)
    row0, row1 = _pixel_range(y.amin(dim=0), y.amax(dim=0), size)
    area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    live = (col0 <= col1) & (row0 <= row1) & (area != 0)
    if cull:
        live &= area * cull < 0  # front faces wind counter-clockwise, which is area < 0 with rows downward
    # Order: unclipped triangles one pixel row tall first (most of them on dense meshes; the scan
    # converter handles them in place), then the other unclipped ones, then the clipped pieces.
    unclipped = torch.arange(len(live), device=device) < len(plain)
    one_row = row0 == row1
    keep = torch.cat([torch.nonzero(live & unclipped & m).squeeze(1) for m in (one_row, ~one_row)] + [torch.nonzero(live & ~unclipped).squeeze(1)])
    single_rows = int((live & unclipped & one_row).sum())
    x, y, q = (take(t, keep) for t in (x, y, q))
    area, face = take(area, keep), take(face, keep)
    bbox = take(torch.stack([col0, col1, row0, row1]), keep).to(torch.int64)
    clipped = keep[keep >= len(plain)] - len(plain)
    clipped_bary = clipped_bary[clipped]

    # Edge i runs from corner i+1 to corner i+2: E_i(X, Y) = A_i X + B_i Y + C_i, E_i(corner i) = area.
    # Negating all three for clockwise triangles is the same as walking their edges the other way:
    # every triangle is then positively oriented (one fill rule serves front and back faces alike)
    # while E_i / area, the barycentrics, are unchanged.
    sign = torch.where(area < 0, -1.0, 1.0)
    coef = x.new_empty((9, len(area)))
    bias = x.new_empty((3, len(area)))
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        dx = torch.sub(x[k], x[j], out=coef[3 + i]).mul_(sign)  # B_i = dx
        dy = torch.sub(y[k], y[j]).mul_(sign)
        torch.neg(dy, out=coef[i])  # A_i = -dy
        torch.mul(dy, x[j], out=coef[6 + i]).addcmul_(dx, y[j], value=-1)  # C_i = dy x_j - dx y_j
        # Fill rule: an edge owns the centres on it when it points down (dy > 0) or, if horizontal,
        # right. Neighbours traverse a shared edge in opposite directions, so exactly one owns it,
        # and the owning directions form a half-circle, so a centre on a shared vertex has one owner.
        torch.logical_or(dy > 0, (dy == 0) & (dx > 0), out=bias[i])
    coef[6:9] += bias
    return Primitives(
        coef=coef,
        bias=bias,
        area=area.abs(),
        q=q,
        corner0=torch.stack([x[0], y[0]]) / SUBPIXEL,
        bbox=bbox,
        face=face,
        clipped_bary=clipped_bary,
        single_rows=single_rows,
    )
