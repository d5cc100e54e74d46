"""Mesh connectivity that no single face shows: welded vertices and connected pieces.

UV seams split a vertex into one copy per UV island, so the same place on the surface can carry
several indices; welding gives every place one index again. Used by the back-face culling check
(is the surface closed?) and by the seam finder (which edges does the UV layout cut?).
"""

from __future__ import annotations

import numpy as np

WELD = 2.0**-20  # of the bounding box's largest side: vertices closer than this are one vertex


def welded_faces(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """faces (F, 3) re-indexed so that vertices at the same quantized place share one index."""
    low = positions.min(axis=0)
    step = max(float(np.ptp(positions, axis=0).max()) * WELD, np.finfo(np.float32).tiny)
    grid = np.round((positions - low) / step).astype(np.int64)  # each in [0, 2^20]: one 63-bit key
    key = (grid[:, 0] << 42) | (grid[:, 1] << 21) | grid[:, 2]
    _, canonical = np.unique(key, return_inverse=True)
    return canonical.reshape(-1)[faces]


def components(u: np.ndarray, v: np.ndarray, count: int) -> np.ndarray:
    """Connected-piece label (count,) of `count` nodes joined by the links u[i] - v[i]: hooking and pointer
    jumping, a few passes. Each label is the smallest node index of its piece."""
    parent = np.arange(count)
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
