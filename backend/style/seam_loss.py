"""The seam term: the texture on both sides of every UV seam should agree.

A render reads each face from its own side of a seam, so no view-based loss links the two sides, and
an optimized texture can change abruptly there (a hard line on the surface, or two halves in
different colours). This term compares texel values at matching points of both sides (seams.py):
on the edge itself and in a narrow band inward (mirror points at the same surface distance), at the
finest working level and at a coarser one, which holds the colour of the band around the seam and
not only its line. Its value is a mean absolute colour difference (0 = continuous).
"""

from __future__ import annotations

import torch

from ..seams import SEAM_BAND, UVSeams, seam_samples
from ..texture import SamplePlan, gather, plan_samples

SEAM_LEVELS = (0, 2)  # working mip levels compared: the edge's texels, and 4-texel footprints around it


class SeamTerm:
    """Planned once per job for a pyramid of level `sizes` and `offsets` (pyramid_layout's)."""

    def __init__(self, seams: UVSeams, sizes: torch.Tensor, offsets: torch.Tensor, boundary: str = "wrap",
                 levels: tuple[int, ...] = SEAM_LEVELS, band_texels: tuple[float, ...] = SEAM_BAND):
        size = int(sizes[0, 1])
        samples = seam_samples(seams, size, band_texels)
        device = sizes.device
        self.count = len(samples.weight)
        self.weight = torch.from_numpy(samples.weight).to(device, torch.float32)
        self.plans: list[tuple[SamplePlan, SamplePlan]] = []
        if self.count == 0:
            return
        self.bands = float(self.weight.sum())
        uv_a = torch.from_numpy(samples.uv_a).to(device, torch.float32)
        uv_b = torch.from_numpy(samples.uv_b).to(device, torch.float32)
        for level in levels:
            if level >= len(offsets):
                continue
            # Screen derivatives that make the lookup read exactly `level`: a footprint of 2^level texels.
            footprint = torch.eye(2, device=device).expand(self.count, 2, 2) * (2.0**level / size)
            self.plans.append(tuple(plan_samples(sizes, offsets, uv, footprint, "linear-mipmap-linear", boundary)
                                    for uv in (uv_a, uv_b)))

    def __call__(self, texels: torch.Tensor) -> torch.Tensor:
        """Mean over levels and band depths of the length-weighted mean |T(a) - T(b)| (per channel)."""
        if not self.plans:
            return texels.new_zeros(())
        total = texels.new_zeros(())
        for plan_a, plan_b in self.plans:
            difference = (gather(texels, plan_a) - gather(texels, plan_b)).abs().mean(dim=1)
            total = total + (difference * self.weight).sum()
        return total / (self.bands * len(self.plans))
