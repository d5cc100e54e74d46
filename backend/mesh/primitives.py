"""Procedural meshes with UVs, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from . import Mesh, make_mesh


def quad(half: float = 1.0) -> Mesh:
    """A square in the z = 0 plane facing +Z, UVs covering [0, 1]^2 (u along +X, v along +Y)."""
    positions = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    return make_mesh(positions, faces, uv[faces], "quad")


def cube(half: float = 1.0) -> Mesh:
    """An axis-aligned closed cube, outward-facing triangles, each face mapped to the full UV square."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32) * half
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces, uvs = [], []
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
        uvs += [square[[0, 1, 2]], square[[0, 2, 3]]]
    return make_mesh(corners, np.array(faces), np.array(uvs), "cube")


def uv_sphere(rows: int, cols: int, radius: float = 1.0) -> Mesh:
    """A latitude-longitude sphere with equirectangular UVs: 2 * cols * (rows - 1) triangles."""
    positions, faces, t, p = _lat_long_grid(rows, cols)
    uv = np.stack([p / (2 * np.pi), 1 - t / np.pi], -1)
    return make_mesh(positions * radius, faces, uv[faces], "uv_sphere")


def disk_fan(segments: int, radius: float = 1.0) -> Mesh:
    """A flat disk in z = 0 made of `segments` thin triangles around a centre vertex."""
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rim = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], -1) * radius
    positions = np.concatenate([np.zeros((1, 3)), rim]).astype(np.float32)
    k = np.arange(segments)
    faces = np.stack([np.zeros_like(k), 1 + k, 1 + (k + 1) % segments], -1)
    uv = (positions[:, :2] / radius + 1) / 2
    return make_mesh(positions, faces, uv[faces], "disk_fan")


def _grid_triangles(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The two triangles (a, b, c) and (a, c, d) of every cell of a (rows + 1) x (cols + 1) vertex grid numbered row
    by row, each as (rows, cols, 3): a cell's corners a = (i, j), b = (i + 1, j), c = (i + 1, j + 1), d = (i, j + 1)."""
    idx = np.arange((rows + 1) * (cols + 1)).reshape(rows + 1, cols + 1)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    return np.stack([a, b, c], -1), np.stack([a, c, d], -1)


def _lat_long_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-sphere vertices on a latitude-longitude grid and its triangles without the collapsed pole ones:
    (positions (V, 3), faces (F, 3), polar angle (V,), azimuth (V,)); faces are grouped by grid cell rows."""
    theta = np.linspace(0, np.pi, rows + 1)
    phi = np.linspace(0, 2 * np.pi, cols + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    positions = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    lower, upper = _grid_triangles(rows, cols)
    lower = lower[:-1].reshape(-1, 3)  # b and c collapse at the south pole: skipped
    upper = upper[1:].reshape(-1, 3)  # a and d collapse at the north pole: skipped
    return positions, np.concatenate([lower, upper]), t.reshape(-1), p.reshape(-1)


def two_island_sphere(rows: int = 32, cols: int = 64, radius: float = 1.0) -> Mesh:
    """A sphere whose hemispheres are two UV islands (disks, azimuthal projections, north on the left half of
    the texture, south on the right), so its only UV seam is the equator. rows must be even."""
    if rows % 2:
        raise ValueError("two_island_sphere needs an even number of rows")
    positions, faces, t, p = _lat_long_grid(rows, cols)
    north = t[faces].mean(axis=1) < np.pi / 2
    r_north, r_south = t / np.pi * 0.46, (np.pi - t) / np.pi * 0.46  # the equator at radius 0.23 of each disk
    uv_north = np.stack([0.25 + r_north * np.cos(p), 0.5 + r_north * np.sin(p)], -1)
    uv_south = np.stack([0.75 - r_south * np.cos(p), 0.5 + r_south * np.sin(p)], -1)  # mirrored: seen from below
    uvs = np.where(north[:, None, None], uv_north[faces], uv_south[faces])
    return make_mesh(positions * radius, faces, uvs, "two_island_sphere")


def dense_cap_sphere(rows: int = 36, cols: int = 64, cap_deg: float = 70.0, density: float = 2.2,
                     radius: float = 1.0) -> Mesh:
    """A sphere whose northern cap (to cap_deg from the pole: a third of its area at 70) is one UV island packed
    `density` times as densely as the other, the rest of the sphere: a head packed denser than the body, as
    characters' UVs often have it. Both are disks (azimuthal projections about their poles); cap_deg must fall on a
    grid row (180 / rows degrees apart)."""
    positions, faces, t, p = _lat_long_grid(rows, cols)
    cap = np.radians(cap_deg)
    north = t[faces].mean(axis=1) < cap
    sparse = 0.32 / np.pi  # texture units per radian of the rest; the two disks then fill 0.02-0.98 across
    r_rest, r_cap = (np.pi - t) * sparse, t * sparse * density
    uv_rest = np.stack([0.21 - r_rest * np.cos(p), 0.5 + r_rest * np.sin(p)], -1)  # mirrored: seen from below
    uv_cap = np.stack([0.98 - cap * density * sparse + r_cap * np.cos(p), 0.5 + r_cap * np.sin(p)], -1)
    uvs = np.where(north[:, None, None], uv_cap[faces], uv_rest[faces])
    return make_mesh(positions * radius, faces, uvs, "dense_cap_sphere")


def stretched_tube(length: float = 3.0, radius: float = 0.1, rings: int = 48, segments: int = 24) -> Mesh:
    """An open thin tube along X whose UVs are stretched: u runs along its whole length and v around it, so a
    square texel covers length/(2 pi radius) times more surface along the tube than around it."""
    x = np.linspace(-length / 2, length / 2, rings + 1)
    angle = np.linspace(0, 2 * np.pi, segments + 1)
    xx, aa = np.meshgrid(x, angle, indexing="ij")
    positions = np.stack([xx, radius * np.cos(aa), radius * np.sin(aa)], -1).reshape(-1, 3)
    uv = np.stack([(xx + length / 2) / length, aa / (2 * np.pi)], -1).reshape(-1, 2)
    faces = np.concatenate([half.reshape(-1, 3) for half in _grid_triangles(rings, segments)])
    return make_mesh(positions, faces, uv[faces], "stretched_tube")


def torus(major: float = 1.0, minor: float = 0.35, rings: int = 64, segments: int = 24) -> Mesh:
    """A torus about Z, one UV island wrapping both ways: u around the ring, v around the tube. A square texel
    covers major/minor times more surface along the ring than around the tube (2.9 at the defaults), and the
    surface curves both ways, so most of it is seen at a slant."""
    ring = np.linspace(0, 2 * np.pi, rings + 1)
    tube = np.linspace(0, 2 * np.pi, segments + 1)
    rr, tt = np.meshgrid(ring, tube, indexing="ij")
    reach = major + minor * np.cos(tt)
    positions = np.stack([reach * np.cos(rr), reach * np.sin(rr), minor * np.sin(tt)], -1).reshape(-1, 3)
    uv = np.stack([rr / (2 * np.pi), tt / (2 * np.pi)], -1).reshape(-1, 2)
    faces = np.concatenate([half.reshape(-1, 3) for half in _grid_triangles(rings, segments)])
    return make_mesh(positions, faces, uv[faces], "torus")


def many_island_sphere(rows: int = 24, cols: int = 48, patch: int = 4, radius: float = 1.0) -> Mesh:
    """A sphere cut into patches of patch x patch grid cells, each its own UV island in an atlas cell of its own
    (every other one turned a quarter), at two scales: the way an automatic unwrap lays out a mesh."""
    positions, faces, t, p = _lat_long_grid(rows, cols)
    centre = np.stack([t[faces].mean(axis=1), p[faces].mean(axis=1)], -1)
    row = np.minimum((centre[:, 0] / np.pi * rows).astype(int) // patch, rows // patch - 1)
    col = np.minimum((centre[:, 1] / (2 * np.pi) * cols).astype(int) // patch, cols // patch - 1)
    island = row * (cols // patch) + col
    count = (rows // patch) * (cols // patch)
    grid = int(np.ceil(np.sqrt(count)))
    cell = 1.0 / grid
    local = np.stack([(t[faces] / np.pi * rows - row[:, None] * patch) / patch,
                      (p[faces] / (2 * np.pi) * cols - col[:, None] * patch) / patch], -1)  # (F, 3, 2) in [0, 1]
    turned = (island % 2 == 1)[:, None, None]
    local = np.where(turned, np.stack([local[..., 1], 1 - local[..., 0]], -1), local)
    scale = np.where(island % 3 == 0, 0.85, 0.45)[:, None, None] * cell  # large and small islands
    origin = np.stack([island % grid, island // grid], -1)[:, None, :] * cell + 0.05 * cell
    return make_mesh(positions * radius, faces, origin + local * scale, "many_island_sphere")
