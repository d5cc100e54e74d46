"""Which texels a UV layout's triangles cover, and a texture painted with one colour per triangle (numpy only)."""

from __future__ import annotations

import numpy as np


def covered_texels(uvs: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The texel centres of a size^2 grid over the unit square (row 0 at v = 0) that lie strictly inside each of the
    triangles `uvs` (F, 3, 2): their flat indices (n,) and their triangles (n,). Triangles are taken in groups of one
    bounding-box size, so each group is one array operation whatever the mix of small and large triangles."""
    corners = np.asarray(uvs, np.float64).reshape(-1, 3, 2) * size - 0.5  # texel centres at integers
    low = np.floor(corners.min(axis=1)).astype(np.int64) + 1
    high = np.floor(corners.max(axis=1)).astype(np.int64)
    extent = np.maximum(high - low + 1, 0)
    cells, faces = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for width, height in {(int(w), int(h)) for w, h in extent if w > 0 and h > 0}:
        group = np.nonzero((extent[:, 0] == width) & (extent[:, 1] == height))[0]
        x = low[group, 0, None, None] + np.arange(width)[None, None, :]  # (G, 1, W)
        y = low[group, 1, None, None] + np.arange(height)[None, :, None]  # (G, H, 1)
        a, b, c = (corners[group, k, :, None, None] for k in range(3))  # each (G, 2, 1, 1)
        sides = [(q[:, 0] - p[:, 0]) * (y - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x - p[:, 0]) for p, q in ((a, b), (b, c), (c, a))]
        inside = ((sides[0] > 0) & (sides[1] > 0) & (sides[2] > 0)) | ((sides[0] < 0) & (sides[1] < 0) & (sides[2] < 0))
        inside &= (x >= 0) & (x < size) & (y >= 0) & (y < size)
        cells.append(np.broadcast_to(y * size + x, inside.shape)[inside])
        faces.append(np.broadcast_to(group[:, None, None], inside.shape)[inside])
    return np.concatenate(cells), np.concatenate(faces)


def face_colour_texture(uvs: np.ndarray, colours: np.ndarray, size: int = 256, gutter: int = 4) -> np.ndarray:
    """(size, size, 3) float32, row 0 at the top: each triangle of `uvs` (F, 3, 2) painted with its colour (F, 3),
    what an object whose materials show plain colours looks like in its UVs. Texels no triangle covers take the
    colour of a covered neighbour up to `gutter` texels away (so lookups along the triangles' edges read their own
    colour), the rest the mean colour. Where triangles overlap in UV space, one of them gives the colour."""
    colours = np.asarray(colours, np.float32)
    cells, faces = covered_texels(uvs, size)
    for k in range(3):  # each corner's texel too: a sliver narrower than a texel covers no centre
        corner = np.clip(np.floor(np.asarray(uvs, np.float64)[:, k] * size).astype(np.int64), 0, size - 1)
        cells = np.concatenate([corner[:, 1] * size + corner[:, 0], cells])
        faces = np.concatenate([np.arange(len(colours)), faces])
    texture = np.zeros((size * size, 3), np.float32)
    known = np.zeros(size * size, bool)
    texture[cells], known[cells] = colours[faces], True
    texture, known = texture.reshape(size, size, 3), known.reshape(size, size)
    for _ in range(gutter):
        if known.all():
            break
        grown, count = np.zeros_like(texture), np.zeros(known.shape, np.float32)
        for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
            grown += np.roll(texture * known[..., None], step, axis)
            count += np.roll(known, step, axis)
        fill = ~known & (count > 0)
        texture[fill] = grown[fill] / count[fill, None]
        known = known | fill
    texture[~known] = colours.mean(axis=0) if len(colours) else 0.5
    return np.ascontiguousarray(texture[::-1])
