"""Which triangles can never be seen: the back faces of closed surfaces.

A ray from a camera outside a closed surface enters it through a front face before it can reach a back
face, so back faces never win the depth test and rasterizing them is wasted work (half of the triangles
of a closed mesh in every view). That holds only when
- every edge is shared by exactly two faces that traverse it in opposite directions (closed and
  consistently oriented), after welding vertices that sit at the same place (UV seams often split them);
- every connected piece is oriented the same way, outward or inward, known from the sign of its volume;
- the camera is outside: the rasterizer checks per view that no vertex lies beyond the near plane (a
  camera inside a closed surface, or a near plane that cuts it open, would see back faces).
Anything else (open meshes, flipped faces, mixed orientations, flat closed shells) culls nothing.
"""

from __future__ import annotations

import numpy as np

from ..mesh.topology import components, welded_faces


def closed_orientation(positions: np.ndarray, faces: np.ndarray) -> int:
    """+1 when the mesh is closed with every piece facing outward (counter-clockwise seen from outside),
    -1 when closed with every piece facing inward, 0 otherwise (see the module docstring)."""
    if len(faces) == 0:
        return 0
    positions = positions.astype(np.float64)
    welded = welded_faces(positions, faces)
    proper = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2]) & (welded[:, 2] != welded[:, 0])
    welded, faces = welded[proper], faces[proper]
    if len(welded) == 0:
        return 0
    count = int(welded.max()) + 1
    following = np.roll(welded, -1, axis=1)
    forward = np.sort((welded * count + following).reshape(-1))
    backward = np.sort((following * count + welded).reshape(-1))
    if (forward[1:] == forward[:-1]).any() or not np.array_equal(forward, backward):
        return 0
    # Six times the signed volume of each piece (divergence theorem): its orientation.
    a, b, c = (positions[faces[:, k]] - positions.mean(axis=0) for k in range(3))
    piece = components(welded.reshape(-1), np.roll(welded, 1, axis=1).reshape(-1), count)[welded[:, 0]]
    volume = np.bincount(piece, weights=np.einsum("ij,ij->i", a, np.cross(b, c)), minlength=count)[np.unique(piece)]
    extent = float(np.ptp(positions[faces.reshape(-1)], axis=0).max())
    flat = np.abs(volume) <= 1e-9 * extent**3
    if flat.any():
        return 0
    if (volume > 0).all():
        return 1
    if (volume < 0).all():
        return -1
    return 0
