"""Shared test helpers: clip positions, independent float64 projection and ray casting, convex
polygon inclusion, coverage counting, and a numpy bilinear texture lookup.

Everything "expected" here is computed in float64 numpy, independently of the rasterizer: only
`mesh_clip` and `coverage_counts` call into the backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from backend.mesh import Mesh
from backend.raster import rasterize
from backend.render import MeshTensors, clip_positions
from backend.style.settings import StyleSettings
from backend.views import Camera

# The rasterizer snaps projected vertices to 1/256 pixel, which moves a triangle's edges by up to
# sqrt(2)/512 ~ 0.0028 pixel. Pixel centres closer than this to an analytic boundary may go either
# way; tests call them ambiguous (JITTER in each axis direction catches every such centre).
SNAP = 1 / 256
JITTER = 0.01


def mesh_clip(mesh: Mesh, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """(clip (V, 4) float32, faces (F, 3) int64) exactly as the render pipeline builds them."""
    tensors = MeshTensors.from_mesh(mesh)
    return clip_positions(tensors, camera), tensors.faces


def camera_frame(camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """eye, right, up, forward (unit vectors) of a look-at camera, recomputed from its definition."""
    eye = np.asarray(camera.eye, np.float64)
    f = np.asarray(camera.target, np.float64) - eye
    f /= np.linalg.norm(f)
    for candidate in (camera.up, (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)):
        r = np.cross(f, np.asarray(candidate, np.float64))
        if np.linalg.norm(r) > 1e-9:
            break
    r /= np.linalg.norm(r)
    return eye, r, np.cross(r, f), f


def project(points: np.ndarray, camera: Camera, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points (N, 3) -> screen x, y in pixels (row 0 at the top) and view depth, in float64."""
    eye, r, u, f = camera_frame(camera)
    rel = np.asarray(points, np.float64) - eye
    depth = rel @ f
    t = math.tan(math.radians(camera.fov_deg) / 2)
    x_ndc = (rel @ r) / (depth * t)
    y_ndc = (rel @ u) / (depth * t)
    return (x_ndc + 1) / 2 * size, (1 - y_ndc) / 2 * size, depth


def pixel_rays(camera: Camera, size: int, sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray origin (3,) and directions (N, 3) through screen points, scaled so that the view depth
    of eye + s * direction is s."""
    eye, r, u, f = camera_frame(camera)
    t = math.tan(math.radians(camera.fov_deg) / 2)
    x_ndc = 2 * np.asarray(sx, np.float64) / size - 1
    y_ndc = 1 - 2 * np.asarray(sy, np.float64) / size
    return eye, f[None] + (x_ndc * t)[:, None] * r[None] + (y_ndc * t)[:, None] * u[None]


def pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat (size*size,) x and y of the pixel centres, row-major (index = y * size + x)."""
    y, x = np.divmod(np.arange(size * size), size)
    return x + 0.5, y + 0.5


def classify(label_fn, size: int, jitter: float = JITTER) -> tuple[np.ndarray, np.ndarray]:
    """label_fn(sx, sy) -> int labels (N,). Returns (labels at the pixel centres, ambiguous) as
    (size, size) arrays; a centre is ambiguous when the label changes within `jitter` pixels."""
    x, y = pixel_centres(size)
    labels = label_fn(x, y)
    ambiguous = np.zeros(len(x), bool)
    for dx, dy in ((jitter, 0), (-jitter, 0), (0, jitter), (0, -jitter)):
        ambiguous |= label_fn(x + dx, y + dy) != labels
    return labels.reshape(size, size), ambiguous.reshape(size, size)


def ray_triangle(origin: np.ndarray, dirs: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moller-Trumbore in float64: (hit (N,) bool, s (N,)) with eye + s * dir on the triangle."""
    e1, e2 = tri[1] - tri[0], tri[2] - tri[0]
    p = np.cross(dirs, e2)
    det = p @ e1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1 / det
        tvec = origin - tri[0]
        u = (p @ tvec) * inv
        qvec = np.cross(tvec, e1)
        v = (dirs @ qvec) * inv
        s = (qvec @ e2) * inv
    hit = (det != 0) & (u > 0) & (v > 0) & (u + v < 1)
    return hit, s


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain: counter-clockwise (in x-right, y-up terms) hull vertices (H, 2)."""
    pts = sorted(set(map(tuple, np.asarray(points, np.float64))))

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and (
                (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])
            ) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])


def convex_signed_distance(polygon: np.ndarray, x: np.ndarray, y: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Min over the edges of a convex polygon (either orientation) of the signed distance of each
    point to the edge's line, positive inside: > 0 inside, and |value| is (up to the polygon's tiny
    exterior angles) the distance to the boundary."""
    a = np.asarray(polygon, np.float64)
    b = np.roll(a, -1, axis=0)
    edge = b - a
    length = np.linalg.norm(edge, axis=1)
    keep = length > 0
    a, edge, length = a[keep], edge[keep], length[keep]
    area2 = np.sum(a[:, 0] * np.roll(a[:, 1], -1) - np.roll(a[:, 0], -1) * a[:, 1])
    sign = 1.0 if area2 > 0 else -1.0
    # d(p) = sign * cross(edge, p - a) / |edge| = n . p - c
    nx, ny = -edge[:, 1] * sign / length, edge[:, 0] * sign / length
    c = nx * a[:, 0] + ny * a[:, 1]
    lines = np.stack([nx, ny, -c])  # (3, E)
    pts = np.stack([x, y, np.ones_like(x)], axis=1)
    return np.concatenate([(pts[i : i + chunk] @ lines).min(axis=1) for i in range(0, len(pts), chunk)])


def coverage_counts(clip: torch.Tensor, faces: torch.Tensor, size: int, groups: int) -> torch.Tensor:
    """How many of the groups (faces split by index modulo `groups`) cover each pixel: (size, size).

    Each face is rasterized with the faces of its group only, so a pixel that two faces from
    different groups both cover counts twice, where one z-buffered pass would hide it."""
    total = torch.zeros(size, size, dtype=torch.int64)
    for g in range(groups):
        total += rasterize(clip, faces[g::groups], size).mask.to(torch.int64)
    return total


def bilinear_taps(uv: np.ndarray, height: int, width: int, boundary: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (N, 4), columns (N, 4) and weights (N, 4) of the bilinear lookup at uv (v = 0 at the bottom)."""
    uv = np.asarray(uv, np.float64)
    x = uv[:, 0] * width - 0.5
    y = (1 - uv[:, 1]) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    cols = np.stack([x0, x0 + 1, x0, x0 + 1], axis=1).astype(np.int64)
    rows = np.stack([y0, y0, y0 + 1, y0 + 1], axis=1).astype(np.int64)
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
    if boundary == "wrap":
        cols, rows = cols % width, rows % height
    else:
        cols, rows = cols.clip(0, width - 1), rows.clip(0, height - 1)
    return rows, cols, weights


def bilinear(texture: np.ndarray, uv: np.ndarray, boundary: str) -> np.ndarray:
    """Bilinear lookup (N, C) of an (H, W, C) texture, in float64."""
    texture = np.asarray(texture, np.float64)
    rows, cols, weights = bilinear_taps(uv, texture.shape[0], texture.shape[1], boundary)
    return np.einsum("nk,nkc->nc", weights, texture[rows, cols])


def tiny(**overrides) -> StyleSettings:
    """Settings for a fast engine run on the CPU: small sizes, the seeded random feature bank."""
    base = dict(steps=5, texture_size=32, render_size=32, features="random", device="cpu", margin=2)
    base.update(overrides)
    return StyleSettings(**base)
