"""Close-up views: cameras near the surface, aimed at the parts that the views so far have seen least.

A view framing the whole object gives a small or steep part (a fin, a tail, a thin tube, a face seen
edge-on) a few pixels, so the loss hardly sees its texels and what it learns there is a smear of the
painting's colours. A close-up frames a sphere `zoom` times smaller around a point of the surface, seen
from near its normal. Which point: faces are drawn by how far the pixels they have covered so far fall
short of the object's mean (pixels per unit of area, over every view made so far), so the close-ups go
where coverage is lacking and not where it is already good.

Strokes stay the same size on the surface (StyleMesh's depth-aware scale, for an object): a close-up's
pixel covers 1 / zoom of the surface length a full view's does, so its style targets are measured on the
painting enlarged `zoom` times (StyleJob.targets).
"""

from __future__ import annotations

import numpy as np
import torch

from ..mesh import Mesh
from ..raster import Fragments
from ..render import MeshTensors, facing
from ..views import Camera, closeup_camera

TILT = 0.5  # spread of the view direction about the normal (a standard normal's share): steep views too
SHORTFALL_POWER = 3  # see CloseupPlanner.face_weights
TRIES = 4  # cameras tried per close-up (its point hidden, or its eye inside the object) before a full view instead


class CloseupPlanner:
    def __init__(self, mesh: Mesh, zoom: float, fov_deg: float, device: torch.device):
        p = mesh.positions[mesh.faces].astype(np.float64)
        cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        self.areas = np.linalg.norm(cross, axis=1) / 2
        self.normals = cross / np.maximum(2 * self.areas, 1e-30)[:, None]
        # A mesh wound inside out (clockwise seen from outside) has a negative signed volume: its normals are
        # turned round, so that close-ups look at the outside. (For an open mesh, the sign is a majority's.)
        self.outward = signed_volume(p, mesh.center) >= 0
        if not self.outward:
            self.normals = -self.normals
        self.corners = p
        self.radius = mesh.radius
        self.zoom, self.fov_deg = zoom, fov_deg
        self.pixels = torch.zeros(len(mesh.faces), dtype=torch.float64, device=device)

    def record(self, face_ids: torch.Tensor) -> None:
        """Counts the pixels each face covers in a view that was made (any kind)."""
        visible = face_ids[face_ids >= 0]
        self.pixels += torch.bincount(visible, minlength=len(self.pixels)).to(self.pixels.dtype)

    def outward_facing(self, mesh: MeshTensors, fragments: Fragments, eye) -> torch.Tensor:
        """(H, W) signed cosines of a view's pixels (render.facing), negative where a face's outside is turned away."""
        cos = facing(mesh, fragments, eye, signed=True)
        return cos if self.outward else -cos

    def face_weights(self) -> np.ndarray:
        """Each face's chance of the next close-up: its area times the cube of its pixel density's shortfall below
        the mean density (as a share of the mean); uniform by area before any view, or where no face falls short.
        The cube: a face's density swings by half around the mean with the angles it happens to be seen at, and
        those faces are many; it is the neglected ones (nearly no pixels) that close-ups are for."""
        pixels = self.pixels.cpu().numpy()
        areas = self.areas
        mean = pixels.sum() / max(areas.sum(), 1e-30)
        if not mean > 0:
            return areas
        shortfall = np.maximum(1.0 - pixels / np.maximum(areas, 1e-30) / mean, 0.0)
        weights = areas * shortfall**SHORTFALL_POWER
        return weights if weights.sum() > 0 else areas

    def draw(self, rng: np.random.Generator) -> tuple[int, np.ndarray, Camera]:
        """A face (by face_weights), a uniform point on it and a camera aimed at it from about its front side."""
        weights = self.face_weights()
        face = int(rng.choice(len(weights), p=weights / weights.sum()))
        a, b = rng.uniform(size=2)
        if a + b > 1:
            a, b = 1 - a, 1 - b
        corners = self.corners[face]
        point = corners[0] + a * (corners[1] - corners[0]) + b * (corners[2] - corners[0])
        normal = self.normals[face]
        direction = normal + TILT * rng.standard_normal(3)
        if not np.linalg.norm(direction) > 1e-9:
            direction = normal
        return face, point, closeup_camera(point, direction, self.radius, self.zoom, self.fov_deg)


def signed_volume(corners: np.ndarray, origin: np.ndarray) -> float:
    """The volume a closed mesh of triangles (F, 3 corners, 3) encloses, positive when counter-clockwise seen from
    outside (the divergence theorem: a sum of tetrahedra to any origin)."""
    a, b, c = (corners[:, i] - origin for i in range(3))
    return float(np.einsum("fi,fi->f", a, np.cross(b, c)).sum() / 6)


def sees_point(depth: torch.Tensor, camera: Camera) -> bool:
    """Whether a close-up's aimed-at point is what its centre shows: the nearest depth of the four centre
    pixels is within a small share of the camera's distance to the point (nothing lies in front of it)."""
    size = depth.shape[0]
    centre = depth[size // 2 - 1: size // 2 + 1, size // 2 - 1: size // 2 + 1]
    distance = float(np.linalg.norm(np.subtract(camera.target, camera.eye)))
    return bool(torch.isfinite(centre).any()) and float(centre.min()) > distance * 0.95


def from_inside(signed_facing: torch.Tensor, mask: torch.Tensor) -> bool:
    """Whether a view sees mostly the backs of faces (by their winding, made outward by CloseupPlanner): its eye
    is inside the object."""
    covered = int(mask.sum())
    return covered > 0 and int((signed_facing[mask] < 0).sum()) > covered // 2
