"""The seam term: the texture on both sides of every UV seam should agree.

A render reads each face from its own side of a seam, so no view-based loss links the two sides, and
an optimized texture can change abruptly there (a hard line on the surface, or two halves in
different colours). This term compares texel values at matching points of both sides (seams.py):
on the edge itself and in a narrow band inward, at the finest working level and at a coarser one, which
holds the colour of the band around the seam and not only its line. Inward, each point of one side is
paired with its continuation into the other side's gutter (that face extended beyond its edge, in its own
UVs), so the texture is asked to run on across the seam; mirror points at the same surface distance on
both sides ask it to be symmetric about the seam instead, which flattened a band along it (the two-island
sphere's equator, docs/BENCHMARKS.md). Its value is a mean absolute colour difference (0 = continuous).

All lookups (both sides, every level) are one planned bilinear gather, made once per job: the term
costs a few milliseconds of a step (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import torch

import numpy as np

from ..mesh.seams import SEAM_BAND, UVSeams, seam_samples
from ..texture import SamplePlan, gather
from ..texture.sample import plan_level
from ..texture.uv_layout import uv_fragments

SEAM_LEVELS = (0, 2)  # working mip levels compared: the edge's texels, and 4-texel footprints around it
SEAM_ACROSS = True  # inward points paired with their continuation across the seam, not with mirror points


class SeamTerm:
    """Planned once per job for a pyramid of level `sizes` and `offsets` (pyramid_layout's)."""

    def __init__(self, seams: UVSeams, sizes: torch.Tensor, offsets: torch.Tensor, boundary: str = "wrap",
                 levels: tuple[int, ...] = SEAM_LEVELS, band_texels: tuple[float, ...] = SEAM_BAND,
                 uvs: torch.Tensor | None = None):
        """uvs (F, 3, 2): the mesh's, to pair inward points with their continuation into the other side's gutter
        (SEAM_ACROSS), leaving out those whose gutter point another island's texels hold; without them, mirror
        points."""
        size = int(sizes[0, 1])
        across = SEAM_ACROSS and uvs is not None
        samples = seam_samples(seams, size, band_texels, across=across)
        device = sizes.device
        keep = _free_gutters(samples, uvs, sizes, boundary) if across else np.ones(len(samples.weight), bool)
        self.count = int(keep.sum())
        levels = tuple(level for level in levels if level < len(offsets))
        self.plan: SamplePlan | None = None
        if self.count == 0 or not levels:
            return
        weight = torch.from_numpy(samples.weight[keep]).to(device, torch.float32)
        self.weight = weight.repeat(len(levels)) / (float(weight.sum()) * len(levels))
        uv_a = torch.from_numpy(samples.uv_a[keep]).to(device, torch.float32)
        uv_b = torch.from_numpy(samples.uv_b[keep]).to(device, torch.float32)
        # Rows: side a at every level, then side b at every level; their difference is the term.
        plans = [plan_level(sizes, offsets, uv, level, boundary) for uv in (uv_a, uv_b) for level in levels]
        self.plan = SamplePlan(torch.cat([p.index for p in plans]), torch.cat([p.weight for p in plans]))

    def __call__(self, texels: torch.Tensor) -> torch.Tensor:
        """Mean over levels and band depths of the length-weighted mean |T(a) - T(b)| (per channel)."""
        if self.plan is None:
            return texels.new_zeros(())
        return self.compare(gather(texels, self.plan))

    def compare(self, samples: torch.Tensor) -> torch.Tensor:
        """The term from the texels gathered by self.plan (a step gathers them with its views')."""
        side_a, side_b = samples.chunk(2)
        return ((side_a - side_b).abs().mean(dim=1) * self.weight).sum()


def _free_gutters(samples, uvs: torch.Tensor, sizes: torch.Tensor, boundary: str) -> np.ndarray:
    """(P,) bool: samples whose gutter point, if any, lies on a texel of the working level that no face covers (a
    gutter point inside another island would tie two unrelated places)."""
    rows, columns = int(sizes[0, 0]), int(sizes[0, 1])
    side = max(rows, columns)
    covered = uv_fragments(uvs.to(torch.float32), side).mask.cpu().numpy()
    point = np.where((samples.gutter == 1)[:, None], samples.uv_a, samples.uv_b)
    if boundary == "wrap":
        point = point - np.floor(point)
    x = np.clip((point[:, 0] * side).astype(np.int64), 0, side - 1)
    y = np.clip(((1 - point[:, 1]) * side).astype(np.int64), 0, side - 1)
    return (samples.gutter == 0) | ~covered[y, x]
