"""Whether a UV layout folds over itself: texel centres inside two triangles at once (numpy only).

Smart UV Project projects each island onto a plane; a thin curved part (a fish's fin) can land on itself there,
and two places of the surface then share texels: a texture moved into that layout is a patchwork.
"""

from __future__ import annotations

import numpy as np

GRID = 512  # texel centres per side that are tested


def overlapping_share(uvs: np.ndarray, size: int = GRID) -> float:
    """The share of the covered centres of a size^2 grid over the unit square that lie strictly inside two or more of
    the triangles `uvs` (F, 3, 2). Triangles are taken in groups of one bounding-box size, so each group is one array
    operation whatever the mix of small and large triangles."""
    corners = np.asarray(uvs, np.float64).reshape(-1, 3, 2) * size - 0.5  # texel centres at integers
    low = np.floor(corners.min(axis=1)).astype(np.int64) + 1
    high = np.floor(corners.max(axis=1)).astype(np.int64)
    extent = np.maximum(high - low + 1, 0)
    hits = []
    for width, height in {(int(w), int(h)) for w, h in extent if w > 0 and h > 0}:
        group = np.nonzero((extent[:, 0] == width) & (extent[:, 1] == height))[0]
        x = low[group, 0, None, None] + np.arange(width)[None, None, :]  # (G, 1, W)
        y = low[group, 1, None, None] + np.arange(height)[None, :, None]  # (G, H, 1)
        a, b, c = (corners[group, k, :, None, None] for k in range(3))  # each (G, 2, 1, 1)
        sides = [(q[:, 0] - p[:, 0]) * (y - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x - p[:, 0]) for p, q in ((a, b), (b, c), (c, a))]
        inside = ((sides[0] > 0) & (sides[1] > 0) & (sides[2] > 0)) | ((sides[0] < 0) & (sides[1] < 0) & (sides[2] < 0))
        inside &= (x >= 0) & (x < size) & (y >= 0) & (y < size)
        cell = np.broadcast_to(y * size + x, inside.shape)
        hits.append(cell[inside])
    if not hits:
        return 0.0
    counts = np.bincount(np.concatenate(hits), minlength=size * size)
    covered = np.count_nonzero(counts)
    return float(np.count_nonzero(counts > 1) / covered) if covered else 0.0
