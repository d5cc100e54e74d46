"""How fine a texture the renders can teach: the resolution of the optimized Fourier spectrum.

A render only informs the texture down to its pixels' footprints. Where a pixel covers 2^k texels,
trilinear filtering reads mip level k or coarser, and texture detail finer than that level never
reaches the loss except blurred away. Optimizing a spectrum finer than the renders resolve costs
time (the inverse FFT, the sigmoid, the mip pyramid and their gradients all grow with its area)
and buys detail no render judged. So `auto` measures the mip level of detail of every covered
pixel over a few random views and halves the texture size floor(L) times, L being the level that
all but LEVEL_QUANTILE of the covered pixels read or coarser: the finest resolution a sizeable share
of the pixels still resolves. The result is then the band-limited interpolation of that spectrum at
the texture size (parameterization.py).

Why a low quantile and not the median: with the median, Spot at 256^2 renders was optimized at 512^2,
where a third of its pixels still read level 0, and in one run of two its body came out in a light and
a dark half, split along a UV seam; at 1024^2 it did not (docs/BENCHMARKS.md). Fine detail is where a
style's statistics can be met locally; without it they were met by large blocks of colour.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..render import MeshTensors, rasterize_view
from ..texture import surface_uv
from ..texture.sample import level_of_detail
from ..views import random_cameras

PROBE_VIEWS = 8
MIN_AUTO_SIZE = 64  # below this a texture is a few colour patches; never chosen automatically
LEVEL_QUANTILE = 0.1


def covered_levels_of_detail(mesh: MeshTensors, center, radius: float, texture_size: int, render_size: int,
                             rng: np.random.Generator, views: int = PROBE_VIEWS, fov_deg: float = 30.0,
                             zoom_range=(1.0, 1.0)) -> torch.Tensor:
    """Mip level of detail (N,) of every covered pixel of `views` random views, for a texture_size^2 texture."""
    levels = []
    for camera in random_cameras(center, radius, views, rng, fov_deg, zoom_range):
        fragments = rasterize_view(mesh, camera, render_size)
        _, _, uv_dxy = surface_uv(mesh.uvs, fragments)
        levels.append(level_of_detail(uv_dxy, texture_size, texture_size))
    return torch.cat(levels)


def resolvable_size(levels: torch.Tensor, texture_size: int) -> int:
    """texture_size halved floor(LEVEL_QUANTILE quantile of the levels) times, but not below MIN_AUTO_SIZE
    (nor above texture_size)."""
    if levels.numel() == 0:
        return texture_size
    halvings = max(0, math.floor(float(torch.quantile(levels.float(), LEVEL_QUANTILE))))
    size = texture_size
    while halvings > 0 and size // 2 >= MIN_AUTO_SIZE:
        size //= 2
        halvings -= 1
    return size
