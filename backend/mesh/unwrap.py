"""New UVs of even texel density: for meshes whose own leave parts of the surface too little texture, and for the round
trip (style/round_trip.py), which restyles in them and hands the texture back in the own UVs.

A texture holds strokes only where it has texels: Blub's tail and fins get 1/1500 of its median texels per unit of
surface area in its own UVs, and come out as streaks whatever the loss. xatlas (the unwrapper behind many engines'
lightmaps) cuts the surface into charts and packs them with about one density, which the optimizer's single Fourier
basis also needs to give every part strokes of one size (docs/BENCHMARKS.md). Where the own islands are not starved,
only packed at different densities (Bob's head, at twice his body's), xatlas can keep them as they are and scale each
to one density instead: no new seams, the user's own cuts and shapes.
"""

from __future__ import annotations

import numpy as np

from ..errors import StyleTexError
from . import Mesh, make_mesh
from .seams import find_seams
from .uv_room import uv_room

PADDING_PER_1024 = 4  # texels between charts at 1024^2: the finishing step pads islands into that gutter


def even_uvs(mesh: Mesh, texture_size: int) -> Mesh:
    """The mesh (same positions and faces, in the same order) with new UVs from xatlas, packed for a texture_size^2
    texture. Raises StyleTexError where the mesh cannot be unwrapped.

    xatlas packs into a rectangle of its own choosing, and each axis is scaled to the square texture on its own: Blub's
    1891 x 952 atlas stretches its texels to 2 : 1 on the surface. Charts of at most a twentieth of its area pack
    square, but came out a little further from the painting (docs/BENCHMARKS.md), so the square is filled as it is."""
    import xatlas  # only these paths need it

    uvs = _packed(mesh.positions, mesh.faces, None, xatlas.ChartOptions(), texture_size)[0]
    return make_mesh(mesh.positions, mesh.faces, uvs, "unwrapped mesh")


def repacked_uvs(mesh: Mesh, texture_size: int) -> Mesh:
    """The mesh with its own UV islands, each scaled to one texel density (by its surface area) and packed anew for a
    texture_size^2 texture: the same cuts, each island's shape kept (turned, perhaps). Raises StyleTexError where
    xatlas cannot pack them."""
    import xatlas

    # One vertex per place on the surface and UV: xatlas's charts are the islands its vertices connect.
    _, place = np.unique(mesh.positions, axis=0, return_inverse=True)
    corners = np.concatenate([place.reshape(-1)[mesh.faces].reshape(-1, 1).astype(np.float64),
                              mesh.uvs.reshape(-1, 2).astype(np.float64)], axis=1)
    _, vertex = np.unique(corners, axis=0, return_inverse=True)
    vertex = vertex.reshape(-1)
    first = np.zeros(vertex.max() + 1, dtype=np.int64)
    first[vertex] = np.arange(len(vertex))
    positions = mesh.positions[mesh.faces.reshape(-1)[first]]
    chart = xatlas.ChartOptions()
    chart.use_input_mesh_uvs = True
    uvs, width, height = _packed(positions, vertex.reshape(-1, 3), mesh.uvs.reshape(-1, 2)[first], chart,
                                 texture_size)
    # One scale for both axes, so that the islands keep their shapes (Bob's atlas is 1334 x 1036).
    uvs = uvs * (np.array([width, height], np.float32) / max(width, height, 1))
    return make_mesh(mesh.positions, mesh.faces, uvs, "repacked mesh")


def even_layout(mesh: Mesh, texture_size: int) -> Mesh:
    """UVs of one density for `--unwrap even` and the round trip: of the own islands repacked and xatlas's charts, the
    layout whose cuts are shorter on the surface, leaving out a repacking that starves part of it (uv_room.py; Blub's
    tail and fins are starved inside their island). The spectrum is smooth inside an island and only the seam term
    joins the two sides of a cut: Bob's 3 islands have a sixth of the cut length of xatlas's charts, the many-island
    sphere's 72 have 1.5 times it, and its patches showed when repacked (docs/BENCHMARKS.md)."""
    return choose_layout(mesh, texture_size)[0]


def choose_layout(mesh: Mesh, texture_size: int) -> tuple[Mesh, str]:
    """even_layout's mesh, and which layout it is: "repacked" (the own islands) or "charts" (xatlas's)."""
    charts = even_uvs(mesh, texture_size)
    try:
        repacked = repacked_uvs(mesh, texture_size)
    except StyleTexError:
        return charts, "charts"
    if uv_room(repacked, texture_size).note() != "" or _cut_length(repacked) > _cut_length(charts):
        return charts, "charts"
    return repacked, "repacked"


def _cut_length(mesh: Mesh) -> float:
    return float(find_seams(mesh, wrap=False).length.sum())


def _packed(positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None, chart, texture_size: int
            ) -> tuple[np.ndarray, int, int]:
    """The per-corner UVs (F, 3, 2) of xatlas's atlas of (positions, faces, their input uvs or None) under `chart`
    options, each axis over [0, 1], and the atlas's width and height in texels."""
    import xatlas

    atlas = xatlas.Atlas()
    faces = np.ascontiguousarray(faces, np.uint32)
    try:
        atlas.add_mesh(np.ascontiguousarray(positions, np.float32), faces, None,
                       None if uvs is None else np.ascontiguousarray(uvs, np.float32))
        pack = xatlas.PackOptions()
        pack.resolution = texture_size
        pack.padding = max(1, round(PADDING_PER_1024 * texture_size / 1024))
        pack.bilinear = True
        atlas.generate(chart, pack)
        vertices, indices, new_uvs = atlas[0]
        width, height = atlas.width, atlas.height
    except (RuntimeError, ValueError) as error:
        raise StyleTexError(f"the mesh could not be unwrapped: {error}") from None
    if indices.shape != faces.shape or not np.array_equal(vertices[indices], faces):
        raise StyleTexError("the mesh could not be unwrapped: the unwrapper changed its faces")
    return new_uvs[indices], width, height
