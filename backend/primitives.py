"""Procedural meshes with UVs, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from .mesh import Mesh, make_mesh


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
    theta = np.linspace(0, np.pi, rows + 1)
    phi = np.linspace(0, 2 * np.pi, cols + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    positions = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3) * radius
    uv = np.stack([p / (2 * np.pi), 1 - t / np.pi], -1).reshape(-1, 2)
    idx = np.arange((rows + 1) * (cols + 1)).reshape(rows + 1, cols + 1)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    lower = np.stack([a, b, c], -1)[:-1].reshape(-1, 3)  # b and c collapse at the south pole: skipped
    upper = np.stack([a, c, d], -1)[1:].reshape(-1, 3)  # a and d collapse at the north pole: skipped
    faces = np.concatenate([lower, upper])
    return make_mesh(positions, faces, uv[faces], "uv_sphere")


def disk_fan(segments: int, radius: float = 1.0) -> Mesh:
    """A flat disk in z = 0 made of `segments` thin triangles around a centre vertex."""
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rim = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], -1) * radius
    positions = np.concatenate([np.zeros((1, 3)), rim]).astype(np.float32)
    k = np.arange(segments)
    faces = np.stack([np.zeros_like(k), 1 + k, 1 + (k + 1) % segments], -1)
    uv = (positions[:, :2] / radius + 1) / 2
    return make_mesh(positions, faces, uv[faces], "disk_fan")
