"""Back-face culling of closed surfaces: which meshes count as closed, and that culling never changes
a picture (bit for bit) while it does skip the back faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.mesh import make_mesh
from backend.formats.obj import read_obj
from backend.mesh.primitives import cube, disk_fan, quad, uv_sphere
from backend.raster import rasterize
from backend.raster.culling import closed_orientation
from backend.raster.triangle_setup import setup_triangles
from backend.render import MeshTensors, clip_positions
from backend.views import Camera, random_cameras

REPO = Path(__file__).resolve().parent.parent


def _spot():
    return read_obj(REPO / "data" / "spot" / "spot_triangulated.obj")


def _moved(mesh, offset):
    return make_mesh(mesh.positions + np.float32(offset), mesh.faces, mesh.uvs, "moved")


def _together(*meshes):
    positions, faces, uvs, base = [], [], [], 0
    for m in meshes:
        positions.append(m.positions)
        faces.append(m.faces + base)
        uvs.append(m.uvs)
        base += len(m.positions)
    return make_mesh(np.concatenate(positions), np.concatenate(faces), np.concatenate(uvs), "together")


def test_closed_meshes_and_their_orientation():
    c = cube()
    assert closed_orientation(c.positions, c.faces) == 1
    assert closed_orientation(c.positions, c.faces[:, ::-1]) == -1  # every face inward
    sphere = uv_sphere(12, 16)  # its seam and pole vertices are duplicated: welding closes it
    assert closed_orientation(sphere.positions, sphere.faces) == 1
    spot = _spot()
    assert closed_orientation(spot.positions, spot.faces) == 1
    two = _together(c, _moved(c, (5, 0, 0)))
    assert closed_orientation(two.positions, two.faces) == 1


def test_anything_else_culls_nothing():
    c = cube()
    flipped = c.faces.copy()
    flipped[0] = flipped[0, ::-1]
    inward = make_mesh(c.positions, c.faces[:, ::-1].copy(), c.uvs, "inward")
    mixed = _together(c, _moved(inward, (5, 0, 0)))
    q = quad()
    double_sided = np.concatenate([q.faces, q.faces[:, ::-1]])  # closed, but encloses nothing
    cases = {
        "open quad": (q.positions, q.faces),
        "open disk": (disk_fan(8).positions, disk_fan(8).faces),
        "a face flipped": (c.positions, flipped),
        "a face missing": (c.positions, c.faces[1:]),
        "pieces facing both ways": (mixed.positions, mixed.faces),
        "flat shell": (q.positions, double_sided),
        "no faces": (c.positions, c.faces[:0]),
    }
    for name, (positions, faces) in cases.items():
        assert closed_orientation(positions, faces) == 0, name


def test_uv_sphere_has_no_collapsed_triangles():
    sphere = uv_sphere(8, 12)
    p = sphere.positions[sphere.faces].astype(np.float64)
    area = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1) / 2
    assert len(sphere.faces) == 2 * 12 * 7 and area.min() > 1e-3
    assert area.sum() == pytest.approx(4 * np.pi, rel=0.05)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in ((a.face_ids, b.face_ids), (a.bary, b.bary), (a.depth, b.depth), (a.bary_dxy, b.bary_dxy)))


@pytest.mark.parametrize("mesh", [_spot(), uv_sphere(30, 45), cube()], ids=["spot", "sphere", "cube"])
def test_culling_back_faces_changes_no_pixel_and_skips_them(mesh):
    tensors = MeshTensors.from_mesh(mesh)
    assert tensors.orientation == 1
    for camera in random_cameras(mesh.center, mesh.radius, 12, np.random.default_rng(3), 30.0, (0.8, 1.5)):
        clip = clip_positions(tensors, camera)
        both = rasterize(clip, tensors.faces, 96)
        culled = rasterize(clip, tensors.faces, 96, orientation=1)
        assert _same(both, culled)
        assert both.mask.any()
        kept = len(setup_triangles(clip, tensors.faces, 96, orientation=1).face)
        assert kept < len(setup_triangles(clip, tensors.faces, 96).face)


def test_inward_surfaces_cull_their_other_side():
    c = cube()
    inward = MeshTensors.from_mesh(make_mesh(c.positions, c.faces[:, ::-1].copy(), c.uvs, "inward"))
    assert inward.orientation == -1
    for camera in random_cameras(c.center, c.radius, 6, np.random.default_rng(5)):
        clip = clip_positions(inward, camera)
        assert _same(rasterize(clip, inward.faces, 64), rasterize(clip, inward.faces, 64, orientation=-1))


def test_a_camera_inside_the_surface_sees_its_inside():
    tensors = MeshTensors.from_mesh(cube())
    inside = Camera(eye=(0.2, -0.3, 0.1), target=(1, 0.5, 0.2), up=(0, 0, 1), fov_deg=60, near=0.01, far=10)
    clip = clip_positions(tensors, inside)
    frames = rasterize(clip, tensors.faces, 64), rasterize(clip, tensors.faces, 64, orientation=1)
    assert _same(*frames)
    assert frames[1].mask.all()  # the walls all around: every pixel sees one
    # Near plane cutting the cube open from outside: the inside shows through, so nothing is culled.
    cut = Camera(eye=(0, -3, 0), target=(0, 0, 0), up=(0, 0, 1), fov_deg=40, near=2.5, far=10)
    clip = clip_positions(tensors, cut)
    assert _same(rasterize(clip, tensors.faces, 64), rasterize(clip, tensors.faces, 64, orientation=1))
