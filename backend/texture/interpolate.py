"""Per-corner attributes through the rasterizer's barycentrics."""

from __future__ import annotations

import torch

from ..raster import Fragments


def interpolate(attributes: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """attributes: (F, 3, D) per face corner -> (H, W, D) at each pixel centre, 0 on background.

    Differentiable with respect to `attributes`.
    """
    ids = fragments.face_ids.clamp(min=0)
    corners = attributes[ids]  # (H, W, 3, D)
    values = (corners * fragments.bary[..., None]).sum(dim=-2)
    return values * fragments.mask[..., None]


def surface_uv(uvs: torch.Tensor, fragments: Fragments) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """UVs and their screen derivatives at the covered pixels only.

    uvs: (F, 3, 2) per-corner UVs. Returns (pixel (N,) flat indices into H*W, uv (N, 2),
    uv_dxy (N, 2, 2) with uv_dxy[n, c, 0] = d uv_c / dx and [n, c, 1] = d uv_c / dy in pixels).
    """
    pixel = torch.nonzero(fragments.face_ids.reshape(-1) >= 0).squeeze(1)
    face = torch.take(fragments.face_ids, pixel)
    corners = uvs.reshape(-1, 6).index_select(0, face).view(-1, 3, 2)
    bary = fragments.bary.reshape(-1, 3).index_select(0, pixel)
    dxy = fragments.bary_dxy.reshape(-1, 6).index_select(0, pixel).view(-1, 3, 2)
    uv = torch.einsum("nk,nkc->nc", bary, corners)
    uv_dxy = torch.einsum("nkd,nkc->ncd", dxy, corners)
    return pixel, uv, uv_dxy
