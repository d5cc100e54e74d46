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
pixels, not the median one. The mip level follows a pixel's longer footprint axis in the texture (the
minified one); where UVs are stretched, texels along the other axis are already magnified, so the
halvings are also capped by the shorter axis (`minor` levels): the finest tenth of the pixels may see
texels at most 2^MINOR_MAGNIFICATION (about 3.4) pixels wide along any direction. A thin tube whose
texture runs along its length got 64^2 from the longer axis alone, a smooth wash without strokes. Stretched
UVs get a spectrum sized per texture axis instead (resolvable_shape), where the stretch runs along one.

The constants are calibrated on the bundled meshes at 256^2 renders (docs/BENCHMARKS.md), over eight probe
seeds: Blub's tenth-percentile pixel reads level -1.1 to 0.0 at 1024^2 (its tail and fins); at 512^2 the
tail's texels were 2-3 pixels wide and came out flat yellow in all four runs (at 1024^2 in one of three), so
Blub keeps 1024^2. Spot's reads 0.39-0.63; at 512^2 it scored better than at 1024^2 in all six seeds tried,
with the same pictures, so it gets 512^2. Bob's reads -0.24-0.25 and keeps 1024^2 but at one seed in eight
(at 512^2 it scored 0.750 against 0.654 with The Starry Night, 0.841 against 0.852 with The Great Wave).
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
MINOR_MAGNIFICATION = 1.75  # along the shorter axis: keeps the bundled meshes' sizes (BENCHMARKS.md)


def footprint_levels(uv_dxy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2): log2 of the longer (the mip level of detail) and of the shorter axis of each pixel's footprint
    ellipse in texels, from UV screen derivatives (N, 2, 2): the singular values of the texel Jacobian."""
    texels = uv_dxy * torch.tensor([width, height], dtype=uv_dxy.dtype, device=uv_dxy.device).view(1, 2, 1)
    frobenius = texels.square().sum(dim=(1, 2))
    det = (texels[:, 0, 0] * texels[:, 1, 1] - texels[:, 0, 1] * texels[:, 1, 0]).abs()
    root = (frobenius.square() - 4 * det.square()).clamp(min=0).sqrt()
    minor = 0.5 * torch.log2(((frobenius - root) / 2).clamp(min=1e-20))
    return torch.stack([level_of_detail(uv_dxy, height, width), minor], dim=1)


def probe_footprints(mesh: MeshTensors, center, radius: float, render_size: int, rng: np.random.Generator,
                     views: int = PROBE_VIEWS, fov_deg: float = 30.0, zoom_range=(1.0, 1.0)) -> torch.Tensor:
    """UV screen derivatives (N, 2, 2) of every covered pixel of `views` random views: what the footprints in
    texels of any texture shape follow from."""
    derivatives = []
    for camera in random_cameras(center, radius, views, rng, fov_deg, zoom_range):
        fragments = rasterize_view(mesh, camera, render_size)
        _, _, uv_dxy = surface_uv(mesh.uvs, fragments)
        derivatives.append(uv_dxy)
    return torch.cat(derivatives)


STRETCHED = 1.5  # median log2 ratio of the footprints' axes above which a mesh's UVs count as stretched


def stretched(levels: torch.Tensor) -> bool:
    """Whether the probe's footprints (N, 2) are anisotropic enough to need anisotropic filtering: their median
    axis ratio above 2^STRETCHED (about 2.8). Views at grazing angles make every mesh somewhat anisotropic
    (the bundled ones: medians 2^0.4 to 2^0.9); a thin tube whose texture runs along it reads 2^2.35."""
    return levels.numel() > 0 and float((levels[:, 0] - levels[:, 1]).median()) > STRETCHED


def _halved(size: int, halvings: int) -> int:
    """size halved `halvings` times, but not below MIN_AUTO_SIZE (a size already below it is kept)."""
    while halvings > 0 and size // 2 >= MIN_AUTO_SIZE:
        size //= 2
        halvings -= 1
    return size


def axis_levels(uv_dxy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2): log2 of how many texels along the texture's rows (u) and along its columns (v) one pixel step
    crosses at most, from UV screen derivatives (N, 2, 2)."""
    u = (uv_dxy[:, 0, :] * width).norm(dim=1)
    v = (uv_dxy[:, 1, :] * height).norm(dim=1)
    return torch.log2(torch.stack([u, v], dim=1).clamp(min=1e-20))


def resolvable_shape(uv_dxy: torch.Tensor, texture_size: int) -> tuple[int, int]:
    """The spectrum (rows, columns) the probe's renders resolve, from their UV screen derivatives (N, 2, 2).

    Square (resolvable_size) unless the UVs are stretched(); then each texture axis is halved by its own rule,
    floor(LEVEL_QUANTILE quantile of the texels a pixel step crosses along it + MAGNIFICATION) times. A thin
    tube whose texture runs along it then keeps the texels along its length about a pixel wide and spends
    few around it, where a pixel crosses many: the spectrum's samples are about as wide on the screen both
    ways, so strokes come out round instead of drawn out along the stretch, and trilinear filtering suffices
    (filter_for). Where the stretch runs along neither texture axis (an island turned 45 degrees) the axes' own
    rules would magnify texels along the footprints' shorter axis past the square rule's cap: the square
    size then stands."""
    square = footprint_levels(uv_dxy, texture_size, texture_size)
    size = resolvable_size(square, texture_size)
    if not stretched(square):
        return size, size
    quantiles = torch.quantile(axis_levels(uv_dxy, texture_size, texture_size), LEVEL_QUANTILE, dim=0)
    columns, rows = (_halved(texture_size, max(0, math.floor(float(q) + MAGNIFICATION))) for q in quantiles)
    minor = float(torch.quantile(footprint_levels(uv_dxy, rows, columns)[:, 1], LEVEL_QUANTILE))
    if math.floor(minor + MINOR_MAGNIFICATION) < 0:  # texels drawn out along some other direction: square
        return size, size
    return rows, columns


def filter_for(uv_dxy: torch.Tensor, shape: tuple[int, int]) -> str:
    """The texture filter for renders reading a texture of `shape` (rows, columns): anisotropic where the probe's
    footprints in its texels are stretched(), else trilinear."""
    return "anisotropic" if stretched(footprint_levels(uv_dxy, *shape)) else "linear-mipmap-linear"


def resolvable_size(levels: torch.Tensor, texture_size: int) -> int:
    """texture_size halved floor(LEVEL_QUANTILE quantile of the levels + MAGNIFICATION) times, and at most
    floor(that quantile of the minor levels + MINOR_MAGNIFICATION) times, but not below MIN_AUTO_SIZE (nor
    above texture_size). levels: (N,) levels of detail, or (N, 2) with the minor levels beside them."""
    if levels.numel() == 0:
        return texture_size
    levels = levels.float().reshape(len(levels), -1)
    halvings = math.floor(float(torch.quantile(levels[:, 0], LEVEL_QUANTILE)) + MAGNIFICATION)
    if levels.shape[1] > 1:
        halvings = min(halvings, math.floor(float(torch.quantile(levels[:, 1], LEVEL_QUANTILE)) + MINOR_MAGNIFICATION))
    return _halved(texture_size, max(0, halvings))
