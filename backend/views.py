"""Cameras: look-at view matrices, OpenGL perspective, and the random view sampler.

Conventions (see docs/CONVENTIONS.md): Blender's Z-up world; the camera looks along -Z of its own
frame (OpenGL); clip = P @ V @ [x, y, z, 1]; images are square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import StyleTexError


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. fov_deg is the vertical field of view; near/far bound the visible depth."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = 45.0
    near: float = 0.1
    far: float = 100.0

    def __post_init__(self) -> None:
        values = [*self.eye, *self.target, *self.up, self.fov_deg, self.near, self.far]
        if not all(math.isfinite(v) for v in values):
            raise StyleTexError("camera: eye, target, up, fov, near and far must be finite")
        if not 0 < self.fov_deg < 180:
            raise StyleTexError(f"camera: fov must lie in (0, 180) degrees, got {self.fov_deg}")
        if not 0 < self.near < self.far:
            raise StyleTexError(f"camera: need 0 < near < far, got near={self.near}, far={self.far}")
        if np.linalg.norm(np.subtract(self.target, self.eye)) == 0:
            raise StyleTexError("camera: eye and target are the same point")

    def view_matrix(self) -> np.ndarray:
        return look_at(self.eye, self.target, self.up)

    def projection_matrix(self) -> np.ndarray:
        return perspective(self.fov_deg, self.near, self.far)

    def world_to_clip(self) -> np.ndarray:
        """The 4x4 matrix taking homogeneous world points to clip space (float64)."""
        return self.projection_matrix() @ self.view_matrix()


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera matrix: f = normalize(target - eye), r = normalize(f x up), u = r x f.

    When `up` is parallel to the view direction the frame is undefined; the world Y axis (or X) is
    used instead so that views straight down the Z axis still work.
    """
    eye = np.asarray(eye, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64) - eye
    f /= np.linalg.norm(f)
    for candidate in (up, (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)):
        r = np.cross(f, np.asarray(candidate, dtype=np.float64))
        if np.linalg.norm(r) > 1e-9:
            break
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = r, u, -f
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def perspective(fov_deg: float, near: float, far: float, aspect: float = 1.0) -> np.ndarray:
    """OpenGL perspective projection; clip w equals the view-space depth in front of the camera."""
    t = 1.0 / math.tan(math.radians(fov_deg) / 2)
    proj = np.zeros((4, 4))
    proj[0, 0] = t / aspect
    proj[1, 1] = t
    proj[2, 2] = (far + near) / (near - far)
    proj[2, 3] = 2 * far * near / (near - far)
    proj[3, 2] = -1.0
    return proj


def framing_distance(radius: float, fov_deg: float) -> float:
    """Distance at which a sphere of `radius` exactly fills the vertical field of view."""
    return radius / math.sin(math.radians(fov_deg) / 2)


def orbit_camera(center, radius: float, direction, fov_deg: float = 30.0, zoom: float = 1.0) -> Camera:
    """A camera on `direction` from `center`, far enough that the bounding sphere fills the frame.

    zoom > 1 moves closer (the object overflows the frame), zoom < 1 further away. Near and far
    planes hug the bounding sphere so depth precision is spent on the object.
    """
    center = np.asarray(center, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    radius = max(float(radius), 1e-6)
    distance = framing_distance(radius, fov_deg) / zoom
    near = max(distance - radius, distance * 1e-3) * 0.5
    far = distance + radius * 2
    eye = center + direction * distance
    return Camera(tuple(eye), tuple(center), (0.0, 0.0, 1.0), fov_deg, near, far)


def random_cameras(
    center, radius: float, count: int, rng: np.random.Generator, fov_deg: float = 30.0, zoom_range=(1.0, 1.0)
) -> list[Camera]:
    """`count` views with directions uniform on the sphere, all aimed at `center`.

    Uniform directions come from normalizing 3D standard normal samples (the distribution is
    rotation invariant), as in the Distill article's 3D style transfer.
    """
    directions = rng.standard_normal((count, 3))
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    directions = directions / np.maximum(norms, 1e-12)
    zooms = rng.uniform(zoom_range[0], zoom_range[1], size=count)
    return [orbit_camera(center, radius, d, fov_deg, z) for d, z in zip(directions, zooms)]


def rolled(camera: Camera, degrees: float) -> Camera:
    """`camera` turned about its line of sight, so that what it sees turns `degrees` counter-clockwise on the screen
    (eye, target and lens kept)."""
    view = camera.view_matrix()
    right, up = view[0, :3], view[1, :3]
    angle = math.radians(degrees)
    turned = math.cos(angle) * up + math.sin(angle) * right
    return Camera(camera.eye, camera.target, tuple(float(v) for v in turned), camera.fov_deg, camera.near, camera.far)


def closeup_camera(point, direction, object_radius: float, zoom: float, fov_deg: float = 30.0) -> Camera:
    """A camera on `direction` from a surface `point`, aimed at it, framing a sphere of object_radius / zoom
    around it: the object's bounding sphere at `zoom` times the size a full view shows it. The near plane is
    close and the far plane beyond the whole object, so whatever lies between the camera and the point
    occludes it, as it would in any other view."""
    point = np.asarray(point, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    radius = max(float(object_radius), 1e-6)
    distance = framing_distance(radius / zoom, fov_deg)
    eye = point + direction * distance
    return Camera(tuple(eye), tuple(point), (0.0, 0.0, 1.0), fov_deg, distance * 0.02, distance + radius * 2)


def ring_cameras(center, radius: float, count: int, elevation_deg: float = 20.0, fov_deg: float = 30.0) -> list[Camera]:
    """`count` views evenly spaced around the Z axis at one elevation (for contact sheets)."""
    elevation = math.radians(elevation_deg)
    cameras = []
    for k in range(count):
        azimuth = 2 * math.pi * k / count
        direction = (
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        )
        cameras.append(orbit_camera(center, radius, direction, fov_deg))
    return cameras
