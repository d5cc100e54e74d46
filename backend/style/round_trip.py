"""unwrap "round-trip": restyle in UVs of even texel density, hand the texture back in the mesh's own UVs.

The optimizer's one Fourier basis gives strokes one size in texels, so islands packed denser than the rest of
the surface come out calmer and finer (Bob's head; docs/BENCHMARKS.md), and islands packed sparser come out
coarser. In UVs of one density (mesh/unwrap.py) strokes have one size on the surface; this carries the result
back to the UVs the user's model and its other textures use. Each of the own layout's texels takes the restyled
texture at the point of the surface it shows, filtered over half the texel's footprint in the even layout
(where the own UVs are sparser than the even ones, a texel stands for many of theirs), and the texture is then
finished in its own UVs as any job's is: texels outside the mesh's islands keep the original's values, the
gutters of its seams continue the surface, its islands are padded.
"""

from __future__ import annotations

import numpy as np
import torch

from ..mesh import Mesh
from ..mesh.seams import find_seams
from ..texture.interpolate import surface_uv
from ..texture.sample import sample
from ..texture.uv_layout import grow, uv_fragments
from .finishing import finish_texture, uv_island_mask
from .settings import StyleSettings

FOOTPRINT = 0.5  # of an own texel's footprint in the new layout, over which it averages the restyled texture


class BackToOwnUVs:
    """Carries textures made for `even_uvs` (F, 3, 2) of `mesh`'s faces back into the mesh's own UVs, finished there
    against `original` (S, S, C) in the own UVs, or None. The layout's raster, lookups and seams are made once:
    previews come back the same way as the result."""

    def __init__(self, even_uvs: np.ndarray, mesh: Mesh, original: np.ndarray | None, settings: StyleSettings):
        size = settings.texture_size
        self.settings, self.size = settings, size
        self.own = torch.from_numpy(np.ascontiguousarray(mesh.uvs, np.float32))
        fragments = uv_fragments(self.own, size)
        self.inside = fragments.mask
        self.pixel, self.points, footprint = surface_uv(
            torch.from_numpy(np.ascontiguousarray(even_uvs, np.float32)), fragments)
        # Half the footprint: the renders filter the delivered texture over their own footprints again, and
        # filtering over the whole one here as well took a tenth of Bob's local contrast (a twenty-fifth at half of
        # it), while a texel that stands for more than two of the new layout's along an axis still averages them.
        self.footprint = footprint * FOOTPRINT
        self.island = uv_island_mask(self.own, size)
        self.original = torch.from_numpy(np.ascontiguousarray(original, np.float32)) if original is not None else None
        self.seams = find_seams(mesh, settings.boundary == "wrap") if settings.margin > 0 else None

    def __call__(self, texture: np.ndarray) -> np.ndarray:
        """(S, S, C) texture in the even UVs -> (S, S, C) in the own UVs, finished."""
        source = torch.from_numpy(np.ascontiguousarray(texture, np.float32))
        moved = torch.zeros(self.size * self.size, source.shape[-1])
        moved[self.pixel] = sample(source, self.points, self.footprint, filter="linear-mipmap-linear",
                                   boundary="clamp")
        # texels that an island covers only partly (its rim) take their inside neighbours' mean, as the seen texels
        # of a job in its own UVs have values there
        moved, known = grow(moved.view(self.size, self.size, -1), self.inside, 1)
        s = self.settings
        finished, _ = finish_texture(moved, known, self.island, self.original, s.margin, self.seams, self.own,
                                     s.boundary)
        return finished.numpy().astype(np.float32)
