"""Patches of a surface of about equal area, whatever its UV islands: where a split would show.

A person sees "a light head over a dark body" as a property of the surface, not of the texture image,
so regions are cut from the faces' places in space (area-weighted k-means of their centres). The
quality benchmark scores splits over such patches, and the engine's balance term (style/balance.py)
keeps the result's patch luminances what the original's imply.
"""

from __future__ import annotations

import torch


def surface_regions(positions: torch.Tensor, faces: torch.Tensor, count: int, iterations: int = 25) -> torch.Tensor:
    """(F,) the patch of every face of positions (V, >= 3) and faces (F, 3): area-weighted k-means of the face
    centres into `count` patches, seeded deterministically (the largest face, then each next seed the face
    centre farthest from those chosen), so a mesh always gets the same patches."""
    corners = positions[:, :3][faces]
    centres = corners.mean(dim=1).double()
    area = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).norm(dim=1).double()
    count = max(1, min(count, len(faces)))
    chosen = [int(torch.argmax(area))]
    distance = torch.cdist(centres, centres[chosen]).squeeze(1)
    for _ in range(1, count):
        chosen.append(int(torch.argmax(distance * (area > 0))))
        distance = torch.minimum(distance, torch.cdist(centres, centres[chosen[-1:]]).squeeze(1))
    means = centres[chosen]
    for _ in range(iterations):
        labels = torch.cdist(centres, means).argmin(dim=1)
        weight = torch.zeros(count, dtype=torch.float64, device=area.device).index_add_(0, labels, area)
        summed = torch.zeros(count, 3, dtype=torch.float64, device=area.device).index_add_(0, labels, centres * area[:, None])
        means = torch.where(weight[:, None] > 0, summed / weight.clamp(min=1e-12)[:, None], means)
    return torch.cdist(centres, means).argmin(dim=1)
