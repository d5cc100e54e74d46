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

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


def _tent_half_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Halves the even axis `dim` with the [1, 3, 3, 1] / 8 filter, wrapping around its ends. Strided
    slices and adds: several times faster on the CPU than a depthwise convolution."""
    n = x.shape[dim]
    padded = torch.cat([x.narrow(dim, n - 1, 1), x, x.narrow(dim, 0, 1)], dim=dim)  # n + 2
    taps = [padded[(slice(None),) * dim + (slice(k, k + n - 1, 2),)] for k in range(4)]  # n / 2 each
    return (taps[0] + taps[3] + 3 * (taps[1] + taps[2])) / 8


def _tent_half(level: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w), h and w even -> (1, C, h/2, w/2) by the separable [1, 3, 3, 1] / 8 filter at
    stride 2, wrapping around the edges (the texture repeats, as the sampler's default)."""
    return _tent_half_1d(_tent_half_1d(level, 2), 3)


def build_pyramid(texture: torch.Tensor, max_levels: int | None = None, kernel: str = "box") -> MipPyramid:
    """texture: (H, W, C) -> MipPyramid with all levels down to 1x1 (or at most max_levels).
    kernel: 'box' (2x2 averages) or 'tent' ([1, 3, 3, 1] / 8; box where a side is odd or 1)."""
    if texture.ndim != 3:
        raise ValueError(f"texture must have shape (H, W, C), got {tuple(texture.shape)}")
    level = texture.permute(2, 0, 1)[None]  # (1, C, H, W)
    levels = [level]
    while max(level.shape[-2:]) > 1 and (max_levels is None or len(levels) < max_levels):
        h, w = level.shape[-2:]
        size = (max(h // 2, 1), max(w // 2, 1))
        if kernel == "tent" and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
            level = _tent_half(level)
        elif h % 2 == 0 and w % 2 == 0:
            level = F.avg_pool2d(level, 2)
        else:
            level = F.adaptive_avg_pool2d(level, size)
        levels.append(level)
    channels = texture.shape[-1]
    texels = torch.cat([lvl[0].permute(1, 2, 0).reshape(-1, channels) for lvl in levels])
    sizes = torch.tensor([lvl.shape[-2:] for lvl in levels], dtype=torch.int64, device=texture.device)
    counts = sizes[:, 0] * sizes[:, 1]
    return MipPyramid(texels, sizes, torch.cumsum(counts, 0) - counts)
