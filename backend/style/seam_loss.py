"""The seam term: the texture on both sides of every UV seam should agree.

A render reads each face from its own side of a seam, so no view-based loss links the two sides, and
an optimized texture can change abruptly there (a hard line on the surface, or two halves in
different colours). This term compares texel values at matching points of both sides (seams.py):
on the edge itself and in a narrow band inward (mirror points at the same surface distance), at the
finest working level and at a coarser one, which holds the colour of the band around the seam and
not only its line. Its value is a mean absolute colour difference (0 = continuous).

All lookups (both sides, every level) are one planned bilinear gather, made once per job: the term
costs a few milliseconds of a step (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import torch

from ..mesh.seams import SEAM_BAND, UVSeams, seam_samples
from ..texture import SamplePlan, gather
from ..texture.sample import plan_level

SEAM_LEVELS = (0, 2)  # working mip levels compared: the edge's texels, and 4-texel footprints around it


class SeamTerm:
    """Planned once per job for a pyramid of level `sizes` and `offsets` (pyramid_layout's)."""

    def __init__(self, seams: UVSeams, sizes: torch.Tensor, offsets: torch.Tensor, boundary: str = "wrap",
                 levels: tuple[int, ...] = SEAM_LEVELS, band_texels: tuple[float, ...] = SEAM_BAND):
        size = int(sizes[0, 1])
        samples = seam_samples(seams, size, band_texels)
        device = sizes.device
        self.count = len(samples.weight)
        levels = tuple(level for level in levels if level < len(offsets))
        self.plan: SamplePlan | None = None
        if self.count == 0 or not levels:
            return
        weight = torch.from_numpy(samples.weight).to(device, torch.float32)
        self.weight = weight.repeat(len(levels)) / (float(weight.sum()) * len(levels))
        uv_a = torch.from_numpy(samples.uv_a).to(device, torch.float32)
        uv_b = torch.from_numpy(samples.uv_b).to(device, torch.float32)
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
