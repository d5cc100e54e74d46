"""Several textures as one: packing an object's images into an atlas for one job, and back (numpy only).

The backend optimizes one square texture. An object whose materials show several images is restyled in
one run, so that the style is consistent across it: each image gets a cell of a square grid in an atlas,
each triangle's UVs are moved into its image's cell, and the result is cut back into one texture per image.
Triangles of materials without an image get a cell of their material's base colour, and nothing is written
back for them (the add-on also marks them not editable, so they render as they are).

It lives in the backend's package (the glTF reader packs a model's images with it) and blender_addon/atlas.py
is a link to it, as the wire protocol's is: the add-on's zip carries the file itself.

UVs are taken modulo 1 per triangle (shifted by the floor of the triangle's centre): a texture that tiles
across the unit square is seen as one tile, and a triangle that straddles a tile border is clamped into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_ATLAS = 4096  # the backend's texture size limit


@dataclass(frozen=True)
class AtlasLayout:
    columns: int  # cells per row and per column
    cell: int  # texels per cell side
    cells: int  # cells in use (images, then flat colours)

    @property
    def size(self) -> int:
        return self.columns * self.cell

    def corner(self, index: int) -> tuple[int, int]:
        """(row, column) of cell `index`'s top-left texel in the atlas (image layout: row 0 at the top)."""
        return (index // self.columns) * self.cell, (index % self.columns) * self.cell


def plan_atlas(cells: int, texture_size: int) -> AtlasLayout:
    """A square grid for `cells` cells of texture_size^2 each, shrunk so the atlas stays within MAX_ATLAS."""
    if cells < 1:
        raise ValueError("an atlas needs at least one cell")
    columns = math.ceil(math.sqrt(cells))
    return AtlasLayout(columns, min(texture_size, MAX_ATLAS // columns), cells)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C) by area averaging when shrinking, bilinear when growing (numpy only)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image.astype(np.float32)
    out = image.astype(np.float32)
    for axis, length in ((0, height), (1, width)):
        out = np.moveaxis(_resize_axis(np.moveaxis(out, axis, 0), length, size), 0, axis)
    return out


def _resize_axis(values: np.ndarray, length: int, size: int) -> np.ndarray:
    """Resamples axis 0 from `length` to `size` samples."""
    if size < length:  # each output sample is the mean over the input span it covers
        cumulative = np.concatenate([np.zeros_like(values[:1]), np.cumsum(values, axis=0)])
        edges = np.linspace(0, length, size + 1)
        index = np.floor(edges).astype(int).clip(0, length - 1)
        fraction = (edges - index).reshape(-1, *([1] * (values.ndim - 1)))
        integral = cumulative[index] + fraction * values[index]  # the running sum at each edge, exactly
        return ((integral[1:] - integral[:-1]) * (size / length)).astype(np.float32)
    centres = (np.arange(size) + 0.5) * length / size - 0.5
    low = np.floor(centres).astype(int).clip(0, length - 1)
    high = (low + 1).clip(0, length - 1)
    t = (centres - low).clip(0, 1).reshape(-1, *([1] * (values.ndim - 1)))
    return (values[low] * (1 - t) + values[high] * t).astype(np.float32)


def pack(textures: list[np.ndarray], layout: AtlasLayout) -> np.ndarray:
    """The atlas (size, size, 3): cell k holds textures[k] resized to the cell (row 0 at the top); (size, size, 4)
    where some texture has an alpha, the others' opaque."""
    channels = max(texture.shape[-1] for texture in textures) if textures else 3
    atlas = np.ones((layout.size, layout.size, channels), np.float32)
    atlas[..., :3] = 0
    for index, texture in enumerate(textures):
        row, column = layout.corner(index)
        atlas[row : row + layout.cell, column : column + layout.cell, : texture.shape[-1]] = resize(texture, layout.cell)
    return atlas


def remap_uvs(uvs: np.ndarray, cell_of_face: np.ndarray, layout: AtlasLayout) -> np.ndarray:
    """(F, 3, 2) UVs -> UVs in the atlas, each triangle in its cell (V = 0 at the bottom, as in Blender).
    A half-texel inset keeps bilinear lookups inside the cell."""
    tile = np.floor(uvs.mean(axis=1, keepdims=True))
    local = np.clip(uvs - tile, 0.0, 1.0)
    inset = 0.5 / layout.cell
    local = inset + local * (1 - 2 * inset)
    row, column = np.divmod(cell_of_face, layout.columns)
    # Cell rows count from the atlas's top; V counts from its bottom.
    u0 = column / layout.columns
    v0 = 1 - (row + 1) / layout.columns
    out = np.empty_like(uvs, dtype=np.float32)
    out[..., 0] = u0[:, None] + local[..., 0] / layout.columns
    out[..., 1] = v0[:, None] + local[..., 1] / layout.columns
    return out


def unpack(atlas: np.ndarray, layout: AtlasLayout, count: int) -> list[np.ndarray]:
    """The first `count` cells of an atlas (or of a preview of it at any size), each a square image."""
    scale = atlas.shape[0] / layout.size
    cells = []
    for index in range(count):
        row, column = layout.corner(index)
        top, left, side = round(row * scale), round(column * scale), max(1, round(layout.cell * scale))
        cells.append(np.ascontiguousarray(atlas[top : top + side, left : left + side]))
    return cells
