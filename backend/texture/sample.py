"""Differentiable texture sampling: bilinear, or trilinear across mip levels.

Conventions: u runs left to right and v bottom to top of the texture image (OBJ and Blender), so
texel row = (1 - v) * H - 0.5 and column = u * W - 0.5 at texel centres. 'wrap' repeats the
texture (GL_REPEAT), 'clamp' extends its edge texels (GL_CLAMP_TO_EDGE).

Every lookup is a weighted sum of texels gathered from one packed table (4 taps bilinear, 8 taps
trilinear); the backward pass scatters the weighted gradient back with index_add_, which is
deterministic on the CPU. Gradients flow to the texture only, not to the UVs.
"""

from __future__ import annotations

import torch

from .mipmap import MipPyramid, build_pyramid

FILTERS = ("linear", "linear-mipmap-linear")
BOUNDARIES = ("wrap", "clamp")


class _WeightedGather(torch.autograd.Function):
    """out[n] = sum_k weight[n, k] * table[index[n, k]], differentiable in `table`."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index, weight)
        ctx.rows = table.shape[0]
        taps = table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])
        return torch.einsum("nkc,nk->nc", taps, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        index, weight = ctx.saved_tensors
        spread = (grad[:, None, :] * weight[..., None]).reshape(-1, grad.shape[1])
        table_grad = grad.new_zeros(ctx.rows, grad.shape[1]).index_add_(0, index.reshape(-1), spread)
        return table_grad, None, None


def _bilinear_taps(pyramid: MipPyramid, level: torch.Tensor, uv: torch.Tensor, boundary: str):
    """Indices (N, 4) into pyramid.texels and weights (N, 4) at mip `level` (N,)."""
    h = torch.take(pyramid.sizes[:, 0].contiguous(), level)
    w = torch.take(pyramid.sizes[:, 1].contiguous(), level)
    x = uv[:, 0] * w - 0.5
    y = (1 - uv[:, 1]) * h - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.to(torch.int64), y0.to(torch.int64)
    xs = torch.stack([x0, x0 + 1], dim=1)
    ys = torch.stack([y0, y0 + 1], dim=1)
    if boundary == "wrap":
        xs, ys = torch.remainder(xs, w[:, None]), torch.remainder(ys, h[:, None])
    else:
        xs = torch.minimum(xs.clamp(min=0), w[:, None] - 1)
        ys = torch.minimum(ys.clamp(min=0), h[:, None] - 1)
    base = torch.take(pyramid.offsets, level)[:, None]
    index = torch.cat([base + ys[:, :1] * w[:, None] + xs, base + ys[:, 1:] * w[:, None] + xs], dim=1)
    wx = torch.stack([1 - fx, fx], dim=1)
    weight = torch.cat([wx * (1 - fy)[:, None], wx * fy[:, None]], dim=1)
    return index, weight


def level_of_detail(uv_dxy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mip level (N,) from UV screen derivatives (N, 2, 2): log2 of the longer pixel footprint in texels."""
    scale = torch.tensor([width, height], dtype=uv_dxy.dtype, device=uv_dxy.device)[:, None]
    footprint = (uv_dxy * scale).square().sum(dim=1)  # (N, 2): squared length along x and along y
    return 0.5 * torch.log2(footprint.max(dim=1).values.clamp(min=1e-20))


def sample(
    texture: torch.Tensor | MipPyramid,
    uv: torch.Tensor,
    uv_dxy: torch.Tensor | None = None,
    filter: str = "linear-mipmap-linear",
    boundary: str = "wrap",
) -> torch.Tensor:
    """Samples a texture at N points.

    texture: (H, W, C) float tensor, or a MipPyramid built once with build_pyramid and reused.
    uv:      (N, 2) texture coordinates.
    uv_dxy:  (N, 2, 2) d uv / d (x, y) in pixels, from surface_uv; needed for mip-mapping.
    filter:  'linear' (bilinear on the full-resolution level) or 'linear-mipmap-linear'
             (trilinear: bilinear on the two mip levels around the level of detail, blended).
    Returns (N, C), differentiable with respect to the texture.
    """
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    mipmapped = filter == "linear-mipmap-linear"
    if mipmapped and uv_dxy is None:
        raise ValueError("filter 'linear-mipmap-linear' needs uv_dxy (UV screen derivatives)")
    if isinstance(texture, MipPyramid):
        pyramid = texture
    else:
        pyramid = build_pyramid(texture, None if mipmapped else 1)
    uv = uv.detach().to(pyramid.texels.dtype)
    zero = torch.zeros(len(uv), dtype=torch.int64, device=uv.device)
    if not mipmapped or pyramid.levels == 1:
        index, weight = _bilinear_taps(pyramid, zero, uv, boundary)
    else:
        height, width = pyramid.sizes[0].tolist()
        lod = level_of_detail(uv_dxy.detach().to(uv.dtype), height, width).clamp(0, pyramid.levels - 1)
        fine = torch.floor(lod).to(torch.int64).clamp(max=pyramid.levels - 2)
        blend = (lod - fine)[:, None]
        index0, weight0 = _bilinear_taps(pyramid, fine, uv, boundary)
        index1, weight1 = _bilinear_taps(pyramid, fine + 1, uv, boundary)
        index = torch.cat([index0, index1], dim=1)
        weight = torch.cat([weight0 * (1 - blend), weight1 * blend], dim=1)
    return _WeightedGather.apply(pyramid.texels, index, weight)
