"""New UVs with an even texel density, for meshes whose own leave parts of the surface too little texture.

A texture holds strokes only where it has texels: Blub's tail and fins get 1/1500 of its median texels per unit
of surface area in its own UVs, and come out as streaks whatever the loss. xatlas (the unwrapper behind many
engines' lightmaps) cuts the surface into charts and packs them with about one density, which the optimizer's
single Fourier basis also needs to give every part strokes of one size (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from ..errors import StyleTexError
from . import Mesh, make_mesh

PADDING_PER_1024 = 4  # texels between charts at 1024^2: the finishing step pads islands into that gutter


def even_uvs(mesh: Mesh, texture_size: int) -> Mesh:
    """The mesh (same positions and faces, in the same order) with new UVs from xatlas, packed for a texture_size^2
    texture. Raises StyleTexError where the mesh cannot be unwrapped."""
    import xatlas  # only this path needs it

    atlas = xatlas.Atlas()
    try:
        atlas.add_mesh(np.ascontiguousarray(mesh.positions, np.float32), np.ascontiguousarray(mesh.faces, np.uint32))
        pack = xatlas.PackOptions()
        pack.resolution = texture_size
        pack.padding = max(1, round(PADDING_PER_1024 * texture_size / 1024))
        pack.bilinear = True
        atlas.generate(pack_options=pack)
        vertices, indices, uvs = atlas[0]
    except (RuntimeError, ValueError) as error:
        raise StyleTexError(f"the mesh could not be unwrapped: {error}") from None
    if indices.shape != mesh.faces.shape or not np.array_equal(vertices[indices], mesh.faces):
        raise StyleTexError("the mesh could not be unwrapped: the unwrapper changed its faces")
    return make_mesh(mesh.positions, mesh.faces, uvs[indices], "unwrapped mesh")
