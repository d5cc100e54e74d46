"""Whether a UV layout folds over itself: texel centres inside two triangles at once (numpy only).

Smart UV Project projects each island onto a plane; a thin curved part (a fish's fin) can land on itself there,
and two places of the surface then share texels: a texture moved into that layout is a patchwork.
"""

from __future__ import annotations

import numpy as np

from .uv_texels import covered_texels

GRID = 512  # texel centres per side that are tested


def overlapping_share(uvs: np.ndarray, size: int = GRID) -> float:
    """The share of the covered centres of a size^2 grid over the unit square that lie strictly inside two or more of
    the triangles `uvs` (F, 3, 2)."""
    cells, _ = covered_texels(uvs, size)
    if not len(cells):
        return 0.0
    counts = np.bincount(cells, minlength=size * size)
    covered = np.count_nonzero(counts)
    return float(np.count_nonzero(counts > 1) / covered) if covered else 0.0
