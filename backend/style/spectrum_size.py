"""How fine a texture the renders can teach: the resolution of the optimized Fourier spectrum.

A render only informs the texture down to its pixels' footprints. Where a pixel covers 2^k texels,
trilinear filtering reads mip level k or coarser, and texture detail finer than that level never
reaches the loss except blurred away. Optimizing a spectrum finer than the renders resolve costs
time (the inverse FFT, the sigmoid, the mip pyramid and their gradients all grow with its area)
and buys detail no render judged. So `auto` measures the mip level of detail of every covered
pixel over a few random views and halves the texture size floor(L + MAGNIFICATION) times, L being the
level that all but LEVEL_QUANTILE of the covered pixels read or coarser: that tenth of the pixels may
then see texels up to 2^MAGNIFICATION (about 1.7) pixels wide. The result is the band-limited
interpolation of that spectrum at the texture size (parameterization.py).

What a coarse spectrum costs is where texels get larger than pixels, so the rule looks at the finest
pixels, not the median one. The constants are calibrated on the bundled meshes at 256^2 renders
(docs/BENCHMARKS.md), over eight probe seeds: Blub's tenth-percentile pixel reads level -1.1 to 0.0 at
1024^2 (its tail and fins); at 512^2 the tail's texels were 2-3 pixels wide and came out flat yellow in
all four runs (at 1024^2 in one of three), so Blub keeps 1024^2. Spot's reads 0.39-0.63; at 512^2 it
scored better than at 1024^2 in all six seeds tried, with the same pictures, so it gets 512^2. Bob's reads
-0.24-0.25 and keeps 1024^2 but at one seed in eight (at 512^2 it scored 0.750 against 0.654 with The
Starry Night, 0.841 against 0.852 with The Great Wave).
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
MAGNIFICATION = 0.75  # levels: texels up to 2^0.75 pixels wide still count as resolved


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
    """texture_size halved floor(LEVEL_QUANTILE quantile of the levels + MAGNIFICATION) times, but not below
    MIN_AUTO_SIZE (nor above texture_size)."""
    if levels.numel() == 0:
        return texture_size
    halvings = max(0, math.floor(float(torch.quantile(levels.float(), LEVEL_QUANTILE)) + MAGNIFICATION))
    size = texture_size
    while halvings > 0 and size // 2 >= MIN_AUTO_SIZE:
        size //= 2
        halvings -= 1
    return size
