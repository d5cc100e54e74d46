"""How much texture room each part of a mesh's surface gets from its UVs, and a note where some gets too little.

A render can only put strokes where the texture has texels to hold them. Each face's UV map stretches the
surface by some amount along one direction and less along another (the singular values of its Jacobian,
UV units per unit of surface). Where the smaller one is far below the mesh's typical density, a stroke
cannot be narrower than one texel there: it comes out as a streak drawn along the face, whatever the loss,
the views or the filter (Blub's tail and fins: 45 times fewer texels along their thin axis than the median
face). No setting of the engine cures that; a UV layout that gives those faces more room does, so the
user is told which share of the surface is affected.

Parts of the surface whose UVs overlap (mirrored halves, faces stacked on one another) read the same texels, so
they show the same strokes, mirrored or turned as their UVs are; the user is told that too, and the same cure
gives them strokes of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..texture.uv_layout import shared_texels
from . import Mesh

STARVED = 8.0  # a face whose thin axis gets fewer than 1/STARVED of the median density's texels is starved
NOTE_SHARE = 0.01  # share of the surface above which the note is given
DENSE = 1.5  # an island's median density over the surface's, above which it counts as dense
DENSE_SHARE = 0.05  # of the surface area, at least, in dense islands and in the rest for them to count
SHARED_GRID = 512  # texels across the UV raster on which overlaps are found (islands under 1/512 are not seen)
SHARED_SAMPLES = 4096  # points on the surface at which the shared share is measured
CURE = "new UVs: Even UV Room in the add-on, --unwrap even on the command line"


@dataclass(frozen=True)
class UVRoom:
    """Area shares of the surface whose UVs give too little texture room, and the typical density."""

    starved_share: float  # thin axis below median_density / STARVED
    stretched_share: float  # UV map stretched more than STARVED : 1 between its two axes
    median_density: float  # area-weighted median texels per unit of surface (geometric mean of the axes)
    shared_share: float  # reads texels that another part of the surface reads too (overlapping UVs)

    def note(self) -> str:
        """A one-line note for the user, or "" when the UVs give every part of the surface room of its own."""
        notes = []
        if self.starved_share >= NOTE_SHARE:
            notes.append(f"{100 * self.starved_share:.1f} % of the surface has too little UV room for strokes (under "
                         f"1/{STARVED:g} of the typical texel density along one direction): they come out as streaks "
                         f"or flat colour there; give those faces more UV room ({CURE})")
        if self.shared_share >= NOTE_SHARE:
            notes.append(f"{100 * self.shared_share:.1f} % of the surface shares its texels with other parts (overlapping "
                         f"or mirrored UVs): those parts show the same strokes; for strokes of their own give them UV "
                         f"room of their own ({CURE})")
        return "; ".join(notes)

    def to_dict(self) -> dict[str, float]:
        return {"starved_share": self.starved_share, "stretched_share": self.stretched_share,
                "median_density": self.median_density, "shared_share": self.shared_share}


def uv_axes(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face: its surface area, and the larger and smaller singular value of its UV map (UV units per
    unit of surface). Faces without area on the surface have area 0. In closed form (2 x 2 maps): half a
    second for half a million faces."""
    corners = mesh.positions[mesh.faces].astype(np.float64)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    double_area = np.linalg.norm(np.cross(e1, e2), axis=1)
    valid = double_area > 1e-12 * max(float(double_area.max()), 1e-30)
    # In a frame of the face's plane with x along e1, the edges are (a, 0) and (b, c); the UV map is
    # J = D L^-1 with L = [[a, b], [0, c]] and D the UV edges as columns.
    a = np.where(valid, np.linalg.norm(e1, axis=1), 1.0)
    b = (e1 * e2).sum(1) / a
    c = np.where(valid, double_area / a, 1.0)
    uv = mesh.uvs.astype(np.float64)
    d1, d2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    j1 = d1 / a[:, None]  # J's first column
    j2 = (d2 - b[:, None] * j1) / c[:, None]  # and its second
    frobenius = (j1**2).sum(1) + (j2**2).sum(1)
    det = np.abs(j1[:, 0] * j2[:, 1] - j1[:, 1] * j2[:, 0])
    root = np.sqrt(np.maximum(frobenius**2 - 4 * det**2, 0))
    major = np.sqrt((frobenius + root) / 2)
    minor = np.sqrt(np.maximum(frobenius - root, 0) / 2)
    return np.where(valid, double_area / 2, 0.0), np.where(valid, major, 0.0), np.where(valid, minor, 0.0)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the weights sorted by value reach half their sum."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _starved(area: np.ndarray, major: np.ndarray, minor: np.ndarray, texture_size: int) -> tuple[np.ndarray, float]:
    """(F,) bool: faces whose thin axis gets under 1/STARVED of the median density of the faces weighted by `area`,
    and that median (texels per unit of surface)."""
    density = np.sqrt(major * minor) * texture_size
    median = weighted_median(density, area)
    return minor * texture_size < median / STARVED, median


def starved_faces(mesh: Mesh, texture_size: int) -> np.ndarray:
    """(F,) bool: the faces whose UVs give too little room for strokes on a texture_size^2 texture (see uv_room)."""
    area, major, minor = uv_axes(mesh)
    if area.sum() <= 0:
        return np.zeros(len(area), dtype=bool)
    return _starved(area, major, minor, texture_size)[0]


def uv_room(mesh: Mesh, texture_size: int, faces: np.ndarray | None = None) -> UVRoom:
    """The shares of `mesh`'s surface area whose UVs give it too little room on a texture_size^2 texture;
    with `faces` (F,) bool, of those faces' area alone (a job that restyles a selection)."""
    area, major, minor = uv_axes(mesh)
    if faces is not None:
        area = np.where(np.asarray(faces, dtype=bool), area, 0.0)
    total = float(area.sum())
    if total <= 0:
        return UVRoom(0.0, 0.0, 0.0, 0.0)
    starved, median = _starved(area, major, minor, texture_size)
    stretched = major > STARVED * minor
    return UVRoom(float(area[starved].sum() / total), float(area[stretched].sum() / total), median,
                  shared_share(mesh, faces))


def shared_share(mesh: Mesh, faces: np.ndarray | None = None) -> float:
    """The share of the surface (of `faces`' area, (F,) bool, where given) whose texels some other part of the
    surface reads too: measured at SHARED_SAMPLES points spread by area, on a SHARED_GRID^2 raster of the layout.
    The texture wraps (as uv_fragments wraps the layout), so a texture tiled over the surface is shared by its
    tiles."""
    at, uv = mesh.surface_samples(SHARED_SAMPLES)
    if faces is not None:
        keep = np.asarray(faces, dtype=bool)[at]
        at, uv = at[keep], uv[keep]
    if len(uv) == 0:
        return 0.0
    shared = shared_texels(torch.from_numpy(np.ascontiguousarray(mesh.uvs)), SHARED_GRID).numpy()
    uv = uv - np.floor(uv)
    column = np.clip((uv[:, 0] * SHARED_GRID).astype(np.int64), 0, SHARED_GRID - 1)
    row = np.clip(((1 - uv[:, 1]) * SHARED_GRID).astype(np.int64), 0, SHARED_GRID - 1)  # row 0 at v = 1
    return float(shared[row, column].mean())


def dense_islands(mesh: Mesh, island: np.ndarray) -> np.ndarray | None:
    """(F,) bool: faces of UV islands (`island`, (F,) labels: find_seams') whose area-weighted median density is
    more than DENSE times the whole surface's; None unless those islands and the rest each hold DENSE_SHARE of
    the surface area. One Fourier basis gives strokes one size in texels, so such islands come out calmer and
    finer than the rest (Bob's head, packed at twice his body's density)."""
    area, major, minor = uv_axes(mesh)
    density = np.sqrt(major * minor)
    if area.sum() <= 0:
        return None
    median = weighted_median(density, area)
    dense = np.zeros(len(area), dtype=bool)
    for label in np.unique(island):
        faces = island == label
        if area[faces].sum() > 0 and weighted_median(density[faces], area[faces]) > DENSE * median:
            dense |= faces
    share = area[dense].sum() / area.sum()
    return dense if DENSE_SHARE <= share <= 1 - DENSE_SHARE else None
