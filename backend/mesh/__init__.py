"""The mesh record that every stage consumes, and its validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MeshError


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh with per-corner UVs.

    positions: (V, 3) float32, world space (Blender: Z up).
    faces:     (F, 3) int64 indices into positions, counter-clockwise seen from the front.
    uvs:       (F, 3, 2) float32, one UV per triangle corner, so seams are exact.
               V = 0 is the bottom row of the texture image (OBJ and Blender convention).
    """

    positions: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min corner, max corner) of the vertices that faces use."""
        used = self.positions[np.unique(self.faces)]
        return used.min(axis=0), used.max(axis=0)

    @property
    def center(self) -> np.ndarray:
        lo, hi = self.bounds
        return (lo + hi) / 2

    def face_areas(self) -> np.ndarray:
        """(F,) each triangle's area on the surface."""
        corners = self.positions[self.faces]
        return 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)

    def surface_samples(self, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`count` points spread evenly (by area) over the surface: their faces (count,) and UVs (count, 2).
        A mesh without surface area has none."""
        area = self.face_areas()
        if not area.sum() > 0:
            return np.zeros(0, np.int64), np.zeros((0, 2))
        rng = np.random.default_rng(seed)
        faces = rng.choice(len(area), count, p=area / area.sum())
        root, t = np.sqrt(rng.uniform(size=count)), rng.uniform(size=count)  # uniform over each triangle
        bary = np.stack([1 - root, root * (1 - t), root * t], axis=1)
        return faces, (bary[..., None] * self.uvs[faces]).sum(axis=1)

    @property
    def radius(self) -> float:
        """Radius of the sphere around the bounding-box centre that holds every used vertex."""
        used = self.positions[np.unique(self.faces)]
        return float(np.linalg.norm(used - self.center, axis=1).max())


def make_mesh(positions, faces, uvs, source: str = "mesh") -> Mesh:
    """Checks and converts arrays into a Mesh; `source` names the input in error messages."""
    positions = np.ascontiguousarray(positions, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    uvs = np.ascontiguousarray(uvs, dtype=np.float32)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise MeshError(f"{source}: positions must have shape (V, 3), got {positions.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise MeshError(f"{source}: faces must have shape (F, 3), got {faces.shape}")
    if len(faces) == 0:
        raise MeshError(f"{source}: the mesh has no faces")
    if uvs.shape != (len(faces), 3, 2):
        raise MeshError(f"{source}: uvs must have shape ({len(faces)}, 3, 2), got {uvs.shape}")
    if faces.min() < 0 or faces.max() >= len(positions):
        raise MeshError(f"{source}: face indices must lie in [0, {len(positions) - 1}]")
    if not np.isfinite(positions).all():
        raise MeshError(f"{source}: positions contain NaN or Inf")
    if not np.isfinite(uvs).all():
        raise MeshError(f"{source}: uvs contain NaN or Inf")
    return Mesh(positions, faces, uvs)
