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
from ..mesh.unwrap import choose_layout
from ..mesh.uv_room import DENSE, dense_islands, uv_axes
from ..texture import build_pyramid, gather, plan_samples, pyramid_layout, surface_uv
from ..texture.uv_layout import grow, uv_fragments
from .finishing import finish_texture, uv_island_mask
from .settings import StyleSettings

FOOTPRINT = 0.5  # of an own texel's footprint in the new layout, over which it averages the restyled texture
# The share of a job's steps spent polishing the carried texture in the own UVs: the trip back filters it (a fifth of
# its local contrast), and there the strokes are sharpened again while their size on the surface stays. Of 0.08,
# 0.15, 0.25 and 0.4, 0.15 came closest to the painting on each pair tried (docs/BENCHMARKS.md).
POLISH = 0.15


def polish_steps(steps: int) -> int:
    """How many of a round trip's `steps` polish its texture in the own UVs (none for a job of under 7)."""
    return int(steps * POLISH)


def auto_unwrap(mesh: Mesh, texture_size: int, wrap: bool = True) -> tuple[Mesh | None, str]:
    """unwrap "auto": the mesh in the UVs to restyle it in where the round trip pays, else None; and why, for the report.

    It pays where islands packed denser than the rest hold a share of the surface: their strokes come out calmer and
    finer in the own UVs (Bob's head and Spot's face, about a tenth of each; the many-island sphere's large islands, a
    third of it, as a patchwork of calm and busy columns). The job then runs in the layout `choose_layout` takes: the
    own islands repacked at one density, or xatlas's charts where those would starve part of the surface (Blub's tail
    and fins) or cut it more (the many-island sphere). Over six seeds on Bob and Spot the dense islands' local contrast
    went from 0.42-0.61 of the rest's to 0.66-1.14, and in charts Blub's and the many-island sphere's from 0.46-0.64
    to 0.88-1.12, each about as close to the painting (docs/BENCHMARKS.md)."""
    dense = dense_islands(mesh, find_seams(mesh, wrap).island)
    if dense is None:
        return None, "kept the own UVs: their islands have about one texel density"
    area = uv_axes(mesh)[0]
    share = f"{100 * area[dense].sum() / area.sum():.0f} % of the surface lies in islands over {DENSE:g} times its median texel density"
    layout, kind = choose_layout(mesh, texture_size)
    if kind == "repacked":
        return layout, f"round trip through the own islands repacked at one density: {share}"
    return layout, (f"round trip through new charts of one density (the own islands repacked would starve part of the "
                    f"surface or cut it more): {share}")


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
        self.pixel, points, footprint = surface_uv(torch.from_numpy(np.ascontiguousarray(even_uvs, np.float32)),
                                                   fragments)
        # Half the footprint: the renders filter the delivered texture over their own footprints again, and
        # filtering over the whole one here as well took a tenth of Bob's local contrast (a twenty-fifth at half of
        # it), while a texel that stands for more than two of the new layout's along an axis still averages them.
        # Planned once: the lookups are the same for every texture carried back (each preview's too).
        self.plan = plan_samples(*pyramid_layout(size, size), points, footprint * FOOTPRINT,
                                 "linear-mipmap-linear", "clamp")
        self.island = uv_island_mask(self.own, size)
        self.original = torch.from_numpy(np.ascontiguousarray(original, np.float32)) if original is not None else None
        self.seams = find_seams(mesh, settings.boundary == "wrap") if settings.margin > 0 else None

    def _moved(self, texture: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The texture read at each own texel's surface point: (S, S, C), and which texels have a value."""
        source = torch.from_numpy(np.ascontiguousarray(texture, np.float32))
        moved = torch.zeros(self.size * self.size, source.shape[-1])
        moved[self.pixel] = gather(build_pyramid(source).texels, self.plan)
        # texels that an island covers only partly (its rim) take their inside neighbours' mean, as the seen texels
        # of a job in its own UVs have values there
        return grow(moved.view(self.size, self.size, -1), self.inside, 1)

    def __call__(self, texture: np.ndarray) -> np.ndarray:
        """(S, S, C) texture in the even UVs -> (S, S, C) in the own UVs, finished."""
        moved, known = self._moved(texture)
        s = self.settings
        finished, _ = finish_texture(moved, known, self.island, self.original, s.margin, self.seams, self.own,
                                     s.boundary)
        return finished.numpy().astype(np.float32)

    def preview(self, texture: np.ndarray) -> np.ndarray:
        """A preview in the own UVs: the islands carried back, the original (or black) around them, unfinished as a
        job's previews are. Finishing (seam gutters, padding) would cost a preview ten times as much: 0.5-0.7 s against
        0.05-0.07 s on Spot at 1024^2."""
        moved, known = self._moved(texture)
        around = self.original if self.original is not None else torch.zeros_like(moved)
        return torch.where(known[..., None], moved, around).numpy().astype(np.float32)
