"""Mip pyramids packed into one texel table, so one gather serves every level.

Level k+1 is the box filter of level k (2x2 averages; area averaging when a side is odd), down to
1x1. All levels are stacked as rows of a (T, C) table; building it is differentiable, so gradients
reaching coarse levels flow back into the full-resolution texture.
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


def build_pyramid(texture: torch.Tensor, max_levels: int | None = None) -> MipPyramid:
    """texture: (H, W, C) -> MipPyramid with all levels down to 1x1 (or at most max_levels)."""
    if texture.ndim != 3:
        raise ValueError(f"texture must have shape (H, W, C), got {tuple(texture.shape)}")
    level = texture.permute(2, 0, 1)[None]  # (1, C, H, W)
    levels = [level]
    while max(level.shape[-2:]) > 1 and (max_levels is None or len(levels) < max_levels):
        h, w = level.shape[-2:]
        size = (max(h // 2, 1), max(w // 2, 1))
        if h % 2 == 0 and w % 2 == 0:
            level = F.avg_pool2d(level, 2)
        else:
            level = F.adaptive_avg_pool2d(level, size)
        levels.append(level)
    channels = texture.shape[-1]
    texels = torch.cat([lvl[0].permute(1, 2, 0).reshape(-1, channels) for lvl in levels])
    sizes = torch.tensor([lvl.shape[-2:] for lvl in levels], dtype=torch.int64, device=texture.device)
    counts = sizes[:, 0] * sizes[:, 1]
    return MipPyramid(texels, sizes, torch.cumsum(counts, 0) - counts)
