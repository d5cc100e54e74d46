"""How much of the content weight an original earns: as much as it has markings to keep.

The content term keeps the original's features (eyes, patches, markings) in the result. A plain original (an
untextured object's colour, or the grey that stands in for a missing texture) has none: against it the term keeps
nothing of the object and only pulls the renders towards a flat colour, which fades the strokes. So the job
weighs the term by the original's colour spread over the surface: the bundled models' textures (spread 0.39-0.48)
keep the full weight, a plain one keeps PLAIN_SHARE of it, and a faint pattern lies in between.
PLAIN_SHARE is not 0: the term also calms the texture where the style term leaves it free, across UV seams
most of all (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import torch

from ..mesh import Mesh
from ..texture.sample import plan_level

FULL_SPREAD = 0.1  # RMS distance of the surface's colours from their mean (sRGB values in [0, 1]) that earns it all
PLAIN_SHARE = 1 / 3  # of the content weight, for a plain original
SAMPLES = 8192


def surface_spread(mesh: Mesh, texture: np.ndarray, boundary: str = "wrap", count: int = SAMPLES, seed: int = 0
                   ) -> float:
    """RMS distance from their mean of the colours of `texture` (H, W, >= 3) at `count` points spread evenly (by
    area) over the surface of `mesh`: what the surface shows, not the unused texels between its UV islands."""
    uv = mesh.surface_samples(count, seed)[1]
    if len(uv) == 0:
        return 0.0
    # Only the sampled texels are read, in float64, so a plain texture's spread is 0 exactly and the job makes no
    # float64 copy of a large original (some 3 GB at 8192^2).
    height, width = texture.shape[:2]
    plan = plan_level(torch.tensor([[height, width]]), torch.zeros(1, dtype=torch.int64), torch.from_numpy(uv), 0,
                      boundary)
    taps = texture.reshape(height * width, -1)[plan.index.numpy(), :3].astype(np.float64)
    colours = (plan.weight.numpy()[..., None] * taps).sum(axis=-2)
    return float(np.sqrt(((colours - colours.mean(axis=0)) ** 2).sum(axis=1).mean()))


def content_share(spread: float) -> float:
    """The share of the content weight for an original of colour `spread` (surface_spread): PLAIN_SHARE for a plain
    one, rising linearly to 1 at FULL_SPREAD."""
    return PLAIN_SHARE + (1 - PLAIN_SHARE) * min(1.0, max(0.0, spread) / FULL_SPREAD)
