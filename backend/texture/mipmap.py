"""Mip pyramids packed into one texel table, so one gather serves every level.

Level k+1 is the box filter of level k (2x2 averages; area averaging when a side is odd), down to
1x1, or with kernel="tent" the [1, 3, 3, 1] / 8 filter (across the wrap-around edge). All levels are
stacked as rows of a (T, C) table; building it is differentiable, so gradients reaching coarse levels
flow back into the full-resolution texture.

Why a tent: the gradient of a box-filtered level reaches the texture as nearest-neighbour
upsampling, constant over 2^k x 2^k blocks, and a texture optimized through renders that read
coarse levels grows those blocks (a visible mosaic when the texture is seen up close). The tent's
gradient is a smooth (bilinear-like) upsampling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TAIL_SIDE = 64  # build_pyramid's: levels of at most 64 texels a side and all below them by matrix products


@dataclass(frozen=True)
class MipPyramid:
    """texels: (T, C) all levels, row-major, level 0 first. sizes: (L, 2) int64 (height, width);
    offsets: (L,) int64, the first row of each level in `texels`."""

    texels: torch.Tensor
    sizes: torch.Tensor
    offsets: torch.Tensor

    @property
    def levels(self) -> int:
        return len(self.offsets)


def _tent_rows(x: torch.Tensor) -> torch.Tensor:
    """Halves axis 0 (even length n) with the [1, 3, 3, 1] / 8 filter, wrapping around its ends:
    out[i] = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8."""
    even, odd = x[0::2], x[1::2]
    out = torch.add(even, odd).mul_(0.375)
    out[1:].add_(odd[:-1], alpha=0.125)
    out[:1].add_(odd[-1:], alpha=0.125)
    out[:-1].add_(even[1:], alpha=0.125)
    out[-1:].add_(even[:1], alpha=0.125)
    return out


def _tent_rows_adjoint(grad: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
    """The transpose of _tent_rows: (n, ...) -> (2n, ...), a smooth (bilinear-like) upsampling, added
    to `base` (2n, ...) when given (one pass fewer than adding afterwards)."""
    n = grad.shape[0]
    out = grad.new_empty((n, 2) + grad.shape[1:])
    even, odd = out[:, 0], out[:, 1]
    if base is None:
        torch.mul(grad, 0.375, out=even)
        torch.mul(grad, 0.375, out=odd)
    else:
        torch.add(base[0::2], grad, alpha=0.375, out=even)
        torch.add(base[1::2], grad, alpha=0.375, out=odd)
    even[1:].add_(grad[:-1], alpha=0.125)
    even[:1].add_(grad[-1:], alpha=0.125)
    odd[:-1].add_(grad[1:], alpha=0.125)
    odd[-1:].add_(grad[:1], alpha=0.125)
    return out.view((2 * n,) + grad.shape[1:])


def _box_half(level: torch.Tensor) -> torch.Tensor:
    """(h, w, C), h and w even -> (h/2, w/2, C) 2x2 averages."""
    rows = level[0::2] + level[1::2]
    return (rows[:, 0::2] + rows[:, 1::2]).mul_(0.25)


def _box_half_adjoint(grad: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """base + the transpose of _box_half applied to grad: each coarse texel's gradient / 4 over its 2x2
    block. Columns are doubled by a stack and rows by broadcasting in the addition (one pass over the
    finer level; a broadcast copy of both axes at once was four times slower)."""
    h, w, c = grad.shape
    quarter = grad * 0.25
    columns = torch.stack([quarter, quarter], dim=2).view(h, 1, 2 * w, c)
    return torch.add(base.view(h, 2, 2 * w, c), columns).view(2 * h, 2 * w, c)


def _tent_half(level: torch.Tensor) -> torch.Tensor:
    """(h, w, C), h and w even -> (h/2, w/2, C) by the separable tent at stride 2, wrapping around
    the edges (the texture repeats, as the sampler's default)."""
    rows = _tent_rows(level)
    return _tent_rows(rows.transpose(0, 1)).transpose(0, 1)


def _tent_half_adjoint(grad: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """base + the transpose of _tent_half applied to grad."""
    columns = _tent_rows_adjoint(grad.transpose(0, 1)).transpose(0, 1)
    return _tent_rows_adjoint(columns, base)


def _area_half(level: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area averaging to `size` (where a side is odd): adaptive average pooling."""
    return F.adaptive_avg_pool2d(level.permute(2, 0, 1)[None], size)[0].permute(1, 2, 0)


def _area_half_adjoint(grad: torch.Tensor, finer: tuple[int, int]) -> torch.Tensor:
    with torch.enable_grad():
        level = grad.new_zeros(*finer, grad.shape[-1], requires_grad=True)
        (out,) = torch.autograd.grad(_area_half(level, tuple(grad.shape[:2])), level, grad)
    return out


def _filter_of(h: int, w: int, kernel: str) -> str:
    """Which filter makes the next level of an h x w level."""
    if h % 2 or w % 2:
        return "area"
    return "tent" if kernel == "tent" and min(h, w) >= 4 else "box"


def _axis_filter(n: int, m: int, kind: str) -> torch.Tensor:
    """(m, n) float64: one axis of a level's filter as a matrix (n texels -> m), by the filter itself applied to the
    identity: the tent's rows, or adaptive average pooling (box and area alike; for even n, pairs)."""
    identity = torch.eye(n, dtype=torch.float64)
    if kind == "tent":
        return _tent_rows(identity)
    return F.adaptive_avg_pool1d(identity[None], m)[0].T


@functools.lru_cache(maxsize=16)
def _tail_operators(sizes: tuple[tuple[int, int], ...], kernel: str, dtype: torch.dtype, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For levels sizes[1:] made from sizes[0]: the stacked row filters R (sum h, h0) and column filters C (sum w, w0),
    each level's composed from sizes[0] on, and where each level's texels lie, row-major, in R X C^T's (sum h * sum w)
    positions (the diagonal blocks)."""
    row, column = torch.eye(sizes[0][0], dtype=torch.float64), torch.eye(sizes[0][1], dtype=torch.float64)
    rows, columns = [], []
    for (h, w), (nh, nw) in zip(sizes, sizes[1:]):
        kind = _filter_of(h, w, kernel)
        row, column = _axis_filter(h, nh, kind) @ row, _axis_filter(w, nw, kind) @ column
        rows.append(row)
        columns.append(column)
    width = sum(c.shape[0] for c in columns)
    index, top, left = [], 0, 0
    for (h, w) in sizes[1:]:
        index.append(((top + torch.arange(h))[:, None] * width + left + torch.arange(w)).reshape(-1))
        top, left = top + h, left + w
    return (torch.cat(rows).to(device, dtype), torch.cat(columns).to(device, dtype), torch.cat(index).to(device))


class _Pyramid(torch.autograd.Function):
    """(H, W, C) texture -> the packed (T, C) table of all levels. One function with an explicit
    backward pass: the levels are written straight into the table, and the gradient is carried
    from the coarsest level down, each level's filter transposed once (autograd through slices
    and a concatenation spent a zero-filled full-size buffer per slice: a sixth of a default step).

    The levels below the first of at most `tail_side` texels a side (the tail) come from that level by
    one product on each side, R X C^T, with every tail level's composed filters stacked in R and C:
    filtered one level at a time, each small level cost as many operations as a large one (some 80 of
    the step's 2,200), for a few hundred values."""

    @staticmethod
    def forward(ctx, texture: torch.Tensor, sizes: list[tuple[int, int]], offsets: list[int], kernel: str,
                tail_side: int) -> torch.Tensor:
        channels = texture.shape[-1]
        texels = texture.new_empty(offsets[-1] + sizes[-1][0] * sizes[-1][1], channels)
        level = texels[: sizes[0][0] * sizes[0][1]].view(*sizes[0], channels)
        level.copy_(texture)
        base = next((k for k, size in enumerate(sizes) if max(size) <= tail_side), len(sizes) - 1)
        filters = []
        for (h, w), size, offset in zip(sizes[:base], sizes[1 : base + 1], offsets[1 : base + 1]):
            kind = _filter_of(h, w, kernel)
            filters.append(kind)
            half = {"tent": _tent_half, "box": _box_half}[kind](level) if kind != "area" else _area_half(level, size)
            level = texels[offset : offset + size[0] * size[1]].view(*size, channels)
            level.copy_(half)
        tail = None
        if base < len(sizes) - 1:
            tail = _tail_operators(tuple(sizes[base:]), kernel, texture.dtype, texture.device)
            rows, columns, index = tail
            h, w = sizes[base]
            across = (rows @ level.reshape(h, w * channels)).view(-1, w, channels)
            texels[offsets[base + 1] :] = torch.matmul(columns, across).view(-1, channels).index_select(0, index)
        ctx.layout = (sizes, offsets, filters, base, tail)
        return texels

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sizes, offsets, filters, base, tail = ctx.layout
        channels = grad.shape[-1]
        levels = [grad[o : o + h * w].view(h, w, channels) for (h, w), o in zip(sizes, offsets)]
        carried = levels[base].clone()
        if tail is not None:
            rows, columns, index = tail
            h, w = sizes[base]
            spread = grad.new_zeros(rows.shape[0] * columns.shape[0], channels)
            spread.index_copy_(0, index, grad[offsets[base + 1] :])
            across = torch.matmul(columns.T, spread.view(rows.shape[0], columns.shape[0], channels))
            carried.view(h, w * channels).addmm_(rows.T, across.view(rows.shape[0], w * channels))
        for k in range(base, 0, -1):
            kind = filters[k - 1]
            if kind == "tent":
                carried = _tent_half_adjoint(carried, levels[k - 1])
            elif kind == "box":
                carried = _box_half_adjoint(carried, levels[k - 1])
            else:
                carried = _area_half_adjoint(carried, sizes[k - 1]).add_(levels[k - 1])
        return carried, None, None, None, None


def pyramid_layout(height: int, width: int, max_levels: int | None = None,
                   device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The level sizes (L, 2) and first rows (L,) of the pyramid of a height x width texture; they
    depend on the size alone, so lookups can be planned before any texel exists."""
    shapes = [(height, width)]
    while max(shapes[-1]) > 1 and (max_levels is None or len(shapes) < max_levels):
        h, w = shapes[-1]
        shapes.append((max(h // 2, 1), max(w // 2, 1)))
    sizes = torch.tensor(shapes, dtype=torch.int64, device=device)
    counts = sizes[:, 0] * sizes[:, 1]
    return sizes, torch.cumsum(counts, 0) - counts


def packed_rows(sizes: torch.Tensor, offsets: torch.Tensor) -> int:
    """The rows of the packed texel table of a pyramid of level `sizes` (L, 2) and first rows `offsets` (L,)."""
    return int(offsets[-1] + sizes[-1].prod())


def build_pyramid(texture: torch.Tensor, max_levels: int | None = None, kernel: str = "box",
                  tail_side: int = TAIL_SIDE) -> MipPyramid:
    """texture: (H, W, C) -> MipPyramid with all levels down to 1x1 (or at most max_levels).
    kernel: 'box' (2x2 averages) or 'tent' ([1, 3, 3, 1] / 8; box where a side is below 4); area
    averaging where a side is odd. tail_side: the levels below the first of at most that many texels a side
    are made from it by matrix products (_Pyramid; 0: each from the one above, the reference)."""
    if texture.ndim != 3:
        raise ValueError(f"texture must have shape (H, W, C), got {tuple(texture.shape)}")
    if kernel not in ("box", "tent"):
        raise ValueError(f"kernel must be 'box' or 'tent', got {kernel!r}")
    sizes, offsets = pyramid_layout(texture.shape[0], texture.shape[1], max_levels, texture.device)
    texels = _Pyramid.apply(texture, [tuple(size) for size in sizes.tolist()], offsets.tolist(), kernel, tail_side)
    return MipPyramid(texels, sizes, offsets)
