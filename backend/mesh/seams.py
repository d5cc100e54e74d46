"""UV seams: the edges where a mesh's UV layout cuts the surface, and what lies across them.

Two faces that share an edge on the surface but not its UVs show the same place from two spots of the
texture. Nothing in a render links the two: each face only reads its own side, so an optimized texture
may change abruptly there at no cost to any loss, and a visible line follows. The seam term
(style/seam_loss.py) samples both sides at matching points, and the finishing step fills the gutter
texels outside an island's seam edge from the island across it, so that bilinear and mip lookups at
the seam read matching colours.

An edge whose UVs differ by whole texture periods on the two sides is no seam when the texture wraps
(a latitude-longitude sphere's meridian): both sides read the same texels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import Mesh
from .topology import components, welded_faces

UV_TOLERANCE = 1e-5  # UVs closer than this (in texture units) are the same point
SEAM_BAND = (0.0, 1.5, 3.0)  # depths in texels of the seam term's samples: the edge and a narrow band inward


@dataclass(frozen=True)
class UVSeams:
    """The seam edges of a mesh (E of them) and its UV islands.

    faces:  (E, 2) int64, the face on side a and on side b of each seam edge.
    corners: (E, 2, 3, 2) float64, for each side the UVs of the edge's first endpoint, its second
            endpoint (the same two surface points, in the same order, on both sides) and the face's
            third corner.
    length: (E,) float64, the edge's length on the surface.
    height: (E, 2) float64, each side's face height over the edge on the surface.
    along: (E, 2) float64, where each side's third corner lies along the edge (from its first endpoint, on the
            surface): with height, the two faces unfolded into one plane about the edge.
    island: (F,) int64, the UV island of every face (faces joined by edges whose UVs agree), labelled
            by the smallest face index in it.
    """

    faces: np.ndarray
    corners: np.ndarray
    length: np.ndarray
    height: np.ndarray
    along: np.ndarray
    island: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


def _shift_by_periods(d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """(E,) bool: both endpoint differences (E, 2) are the same whole number of texture periods."""
    periods = np.round(d0)
    return (np.abs(d0 - periods).max(1) < UV_TOLERANCE) & (np.abs(d1 - periods).max(1) < UV_TOLERANCE)


def find_seams(mesh: Mesh, wrap: bool = True) -> UVSeams:
    """The seams of `mesh`: manifold edges (two faces after welding) whose two faces disagree on the UVs of
    the edge's endpoints; with `wrap`, UVs that differ by whole periods agree. Boundary and non-manifold
    edges are no seams (nothing, or no one thing, lies across them)."""
    positions = mesh.positions.astype(np.float64)
    uvs = mesh.uvs.astype(np.float64)
    welded = welded_faces(positions, mesh.faces)
    count = len(mesh.faces)
    face = np.repeat(np.arange(count), 3)
    corner = np.tile(np.arange(3), count)
    start, end = welded[face, corner], welded[face, (corner + 1) % 3]
    proper = start != end
    face, corner, start, end = face[proper], corner[proper], start[proper], end[proper]
    key = np.minimum(start, end) * (int(welded.max()) + 1) + np.maximum(start, end)
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.diff(np.concatenate([[-1], key])) != 0)
    runs = np.diff(np.concatenate([first, [len(key)]]))
    pairs = first[runs == 2]
    i, j = order[pairs], order[pairs + 1]
    fa, ca, fb, cb = face[i], corner[i], face[j], corner[j]
    same_direction = start[i] == start[j]
    a0, a1 = uvs[fa, ca], uvs[fa, (ca + 1) % 3]
    b_first, b_second = uvs[fb, cb], uvs[fb, (cb + 1) % 3]
    b0 = np.where(same_direction[:, None], b_first, b_second)
    b1 = np.where(same_direction[:, None], b_second, b_first)
    d0, d1 = b0 - a0, b1 - a1
    agree = (np.abs(d0).max(1) < UV_TOLERANCE) & (np.abs(d1).max(1) < UV_TOLERANCE)
    if wrap:
        agree |= _shift_by_periods(d0, d1)
    island = components(fa[agree], fb[agree], count)
    seam = ~agree
    fa, ca, fb, cb = fa[seam], ca[seam], fb[seam], cb[seam]
    corners = np.stack([
        np.stack([a0[seam], a1[seam], uvs[fa, (ca + 2) % 3]], axis=1),
        np.stack([b0[seam], b1[seam], uvs[fb, (cb + 2) % 3]], axis=1),
    ], axis=1)
    p0, p1 = positions[mesh.faces[fa, ca]], positions[mesh.faces[fa, (ca + 1) % 3]]
    edge = p1 - p0
    length = np.linalg.norm(edge, axis=1)

    def height(f: np.ndarray, c: np.ndarray) -> np.ndarray:
        third = positions[mesh.faces[f, (c + 2) % 3]] - p0
        return np.linalg.norm(np.cross(edge, third), axis=1) / np.maximum(length, 1e-30)

    def along(f: np.ndarray, c: np.ndarray) -> np.ndarray:
        return ((positions[mesh.faces[f, (c + 2) % 3]] - p0) * edge).sum(1) / np.maximum(length, 1e-30)

    return UVSeams(np.stack([fa, fb], axis=1), corners, length, np.stack([height(fa, ca), height(fb, cb)], axis=1),
                   np.stack([along(fa, ca), along(fb, cb)], axis=1), island)


@dataclass(frozen=True)
class SeamSamples:
    """Matching points on the two sides of the seams: uv_a[p] and uv_b[p] show one place on the surface (at band
    depth 0, on the edge), or, inward from the edge, mirror images at the same surface distance on both sides, or
    (`across`) a point inside one side and its continuation across the edge into the other side's gutter: the
    surface as the other side's face, extended beyond its edge, would show it.
    weight (P,) sums to 1 over each band depth, in proportion to the surface length a sample stands for.
    gutter (P,): 0 where both points lie in their faces, 1 where uv_a lies in side a's gutter, 2 where uv_b does.
    edge (P,): the seam edge of each pair."""

    uv_a: np.ndarray  # (P, 2)
    uv_b: np.ndarray  # (P, 2)
    weight: np.ndarray  # (P,)
    gutter: np.ndarray  # (P,) int8
    edge: np.ndarray  # (P,) int64


def seam_samples(seams: UVSeams, texture_size: int, band_texels: tuple[float, ...] = SEAM_BAND,
                 max_per_edge: int = 64, across: bool = False) -> SeamSamples:
    """Points along every seam edge about a texel apart (on its side with more texels), at each band depth:
    0 is the edge itself; d > 0 moves both points inward, each into its own face, by the surface distance of
    d texels of the denser side (at most half a face's height). With `across`, each inward point is paired instead
    with its continuation into the other side's gutter (half the weight each way): the texture is then asked to
    continue across the seam, not to be mirror-symmetric about it (which flattens a band along it)."""
    if len(seams) == 0:
        empty = np.zeros((0, 2))
        return SeamSamples(empty, empty, np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64))
    corners = seams.corners
    uv_length = np.linalg.norm(corners[:, :, 1] - corners[:, :, 0], axis=-1)  # (E, 2)
    counts = np.clip(np.ceil(uv_length.max(1) * texture_size), 1, max_per_edge).astype(np.int64)
    edge = np.repeat(np.arange(len(seams)), counts)
    t = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 0.5) / counts[edge]
    # Surface length of one texel along the edge, on the side with more texels per unit of surface.
    texel = seams.length / np.maximum(uv_length.max(1) * texture_size, 1e-30)
    uv_a, uv_b, weight, gutter = [], [], [], []
    share = seams.length[edge] / counts[edge]
    for depth in band_texels:
        inward = []
        for side in range(2):
            c = corners[edge, side]
            on_edge = c[:, 0] + t[:, None] * (c[:, 1] - c[:, 0])
            fraction = np.minimum(depth * texel[edge] / np.maximum(seams.height[edge, side], 1e-30), 0.5)
            inward.append(on_edge + fraction[:, None] * (c[:, 2] - on_edge))
            if across and depth > 0:
                inward.append(_unfolded(seams, edge, side, inward[-1][:, None])[:, 0])
        if not across or depth == 0:
            uv_a.append(inward[0])
            uv_b.append(inward[1])
            weight.append(share / max(share.sum(), 1e-30))
            gutter.append(np.zeros(len(edge), np.int8))
            continue
        # inward: [a's point, its continuation into b's gutter, b's point, its continuation into a's gutter]
        uv_a += [inward[0], inward[3]]
        uv_b += [inward[1], inward[2]]
        half = share / max(2 * share.sum(), 1e-30)
        weight += [half, half]
        gutter += [np.full(len(edge), 2, np.int8), np.full(len(edge), 1, np.int8)]
    edges = np.tile(edge, len(gutter))
    return SeamSamples(np.concatenate(uv_a), np.concatenate(uv_b), np.concatenate(weight), np.concatenate(gutter), edges)


def _unfolded(seams: UVSeams, edge: np.ndarray, side: int, points: np.ndarray) -> np.ndarray:
    """Points (N, K, 2) in the UV plane of `side`'s face of seam edges `edge` (N,), carried into the other side's UV
    plane: each point's place is found by the side's affine UV map (extended beyond its face), the two faces are
    unfolded into one plane about the edge (x along it from its first endpoint, y away from it into `side`'s face),
    and that place is written in the other face's barycentrics (one negative where it lies outside that face) and
    applied to its UVs. Where `side`'s UV triangle has no area the point goes to the edge's first endpoint across."""
    own, other = seams.corners[edge, side], seams.corners[edge, 1 - side]  # (N, 3, 2)
    e1, e2 = own[:, 1] - own[:, 0], own[:, 2] - own[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    flat = np.abs(det) < 1e-20
    det = np.where(flat, 1.0, det)[:, None]
    d = points - own[:, None, 0]
    l1 = np.where(flat[:, None], 0.0, (d[..., 0] * e2[:, None, 1] - d[..., 1] * e2[:, None, 0]) / det)
    l2 = np.where(flat[:, None], 0.0, (e1[:, None, 0] * d[..., 1] - e1[:, None, 1] * d[..., 0]) / det)
    length = np.maximum(seams.length[edge], 1e-30)[:, None]
    x = l1 * length + l2 * seams.along[edge, side][:, None]
    y = l2 * seams.height[edge, side][:, None]
    third = -y / np.maximum(seams.height[edge, 1 - side], 1e-30)[:, None]  # the other third corner lies at -height
    second = (x - third * seams.along[edge, 1 - side][:, None]) / length
    return ((1 - second - third)[..., None] * other[:, None, 0] + second[..., None] * other[:, None, 1]
            + third[..., None] * other[:, None, 2])


def _across(corners: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each seam edge (E, 2, 3, 2), the similarity maps of UV space that carry side a's edge onto side b's
    and back (z -> q0 + (z - p0) * ratio, as complex numbers), each with whether it must be mirrored so that a
    point outside one face's edge lands inside the other face: [(ratio, mirrored) from a to b, from b to a]."""
    z = corners[..., 0] + 1j * corners[..., 1]  # (E, 2, 3)
    maps = []
    for src, dst in ((0, 1), (1, 0)):
        p0, p1, po = z[:, src, 0], z[:, src, 1], z[:, src, 2]
        q0, q1, qo = z[:, dst, 0], z[:, dst, 1], z[:, dst, 2]
        ratio = (q1 - q0) / np.where(np.abs(p1 - p0) > 0, p1 - p0, 1)
        # Where does src's third corner land? Across the edge from dst's third corner, or the map mirrors.
        mapped = q0 + (po - p0) * ratio
        side = np.sign(np.imag((mapped - q0) * np.conj(q1 - q0))) * np.sign(np.imag((qo - q0) * np.conj(q1 - q0)))
        maps.append((ratio, side > 0))
    return maps


def gutter_sources(seams: UVSeams, texture_size: int, depth_texels: float) -> tuple[np.ndarray, np.ndarray]:
    """Quads just outside every seam edge, `depth_texels` deep, in texture coordinates, and the coordinates
    across the seam that each of their corners continues into: (Q, 4, 2) quads and (Q, 4, 2) sources, two
    quads per seam edge (one outside each side). Rasterized in UV space (finishing.py), they say which
    gutter texel takes its colour from where."""
    if len(seams) == 0:
        return np.zeros((0, 4, 2)), np.zeros((0, 4, 2))
    z = seams.corners[..., 0] + 1j * seams.corners[..., 1]
    quads, sources = [], []
    for (ratio, mirrored), (src, dst) in zip(_across(seams.corners), ((0, 1), (1, 0))):
        p0, p1, po = z[:, src, 0], z[:, src, 1], z[:, src, 2]
        q0 = z[:, dst, 0]
        along = p1 - p0
        normal = along * 1j / np.maximum(np.abs(along), 1e-30)
        away = np.sign(np.real((po - p0) * np.conj(normal)))
        normal = np.where(away > 0, -normal, normal) * depth_texels / texture_size
        quad = np.stack([p0, p1, p1 + normal, p0 + normal], axis=1)
        relative = quad - p0[:, None]
        relative = np.where(mirrored[:, None], np.conj(relative / np.where(along == 0, 1, along)[:, None]) * along[:, None],
                            relative)
        source = q0[:, None] + relative * ratio[:, None]
        quads.append(np.stack([quad.real, quad.imag], axis=-1))
        sources.append(np.stack([source.real, source.imag], axis=-1))
    return np.concatenate(quads), np.concatenate(sources)
