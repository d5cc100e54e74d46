"""Rasterizer tests: known answers, watertightness, depth order, near-plane clipping, agreement with
the float64 reference, determinism, degenerate input and large images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.mesh import make_mesh
from backend.mesh.primitives import cube, disk_fan, quad, uv_sphere
from backend.raster import MAX_SIZE, rasterize
from backend.raster import reference
from backend.views import Camera, perspective, random_cameras
from tests.helpers import (
    SNAP,
    classify,
    convex_hull,
    convex_signed_distance,
    coverage_counts,
    mesh_clip,
    pixel_centres,
    pixel_rays,
    project,
    ray_triangle,
)

HEAD_ON = Camera(eye=(0, 0, 5), target=(0, 0, 0), up=(0, 1, 0), fov_deg=30)


def _assert_empty(frags, size):
    assert torch.equal(frags.face_ids, torch.full((size, size), -1))
    assert torch.isinf(frags.depth).all()
    assert not frags.bary.any() and not frags.bary_dxy.any()


def _backprojection_error(mesh, camera, frags, size):
    """Screen distance (pixels) between each covered pixel centre and the projection of the 3D point
    that the face id and barycentrics name."""
    covered = frags.mask.numpy()
    ys, xs = np.nonzero(covered)
    face = frags.face_ids.numpy()[covered]
    corners = mesh.positions.astype(np.float64)[mesh.faces[face]]  # (N, 3, 3)
    point = np.einsum("nk,nkd->nd", frags.bary.numpy()[covered].astype(np.float64), corners)
    sx, sy, _ = project(point, camera, size)
    return np.hypot(sx - (xs + 0.5), sy - (ys + 0.5))


# --- known answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("raster", [rasterize, reference.rasterize], ids=["rasterize", "reference"])
def test_quad_known_answer(raster):
    size = 16
    clip, faces = mesh_clip(quad(), HEAD_ON)
    frags = raster(clip, faces, size)
    # The quad's half-extent in NDC is 1 / (5 tan 15deg) = 0.7464, i.e. pixels [2.029, 13.971]:
    # centres 2.5 .. 13.5, so columns and rows 2..13 are covered.
    half = 1 / (5 * math.tan(math.radians(15)))
    lo, hi = (1 - half) / 2 * size, (1 + half) / 2 * size
    assert 2.0 < lo < 2.5 and 13.5 < hi < 14.0
    inside = np.zeros(size, bool)
    inside[2:14] = True
    expected = np.outer(inside, inside)
    diagonal = np.add.outer(np.arange(size), np.arange(size)) == 15  # centres on the shared edge
    if raster is rasterize:
        assert np.array_equal(frags.mask.numpy(), expected)
        assert frags.mask.sum() == 144
        assert coverage_counts(clip, faces, size, 2).max() == 1  # the diagonal has one owner
    else:  # the reference has no fill rule: it leaves centres exactly on the shared edge uncovered
        assert np.array_equal(frags.mask.numpy(), expected & ~diagonal)
        expected = expected & ~diagonal
    depth = frags.depth.numpy()
    np.testing.assert_allclose(depth[expected], 5.0, rtol=1e-6)
    assert np.isinf(depth[~expected]).all()
    bary = frags.bary.numpy()
    np.testing.assert_allclose(bary[expected].sum(-1), 1.0, atol=1e-6)
    assert (bary[expected] >= 0).all()
    # Face 0 is the lower-right half (world y < x), i.e. screen x + y > 16 at pixel centres.
    ys, xs = np.nonzero(expected)
    ids = frags.face_ids.numpy()[ys, xs]
    assert (ids[xs + ys > 15] == 0).all()
    assert (ids[xs + ys < 15] == 1).all()
    assert set(ids[xs + ys == 15]) <= {0, 1}


AXES = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]


@pytest.mark.parametrize("axis", AXES)
def test_cube_along_axis(axis):
    size = 32
    mesh = cube()
    camera = Camera(eye=tuple(5.0 * a for a in axis), target=(0, 0, 0), up=(0, 0, 1), fov_deg=30)
    clip, faces = mesh_clip(mesh, camera)
    frags = rasterize(clip, faces, size)
    # The facing side is 4 units away: half-extent 1 / (4 tan 15deg) = 0.933 in NDC, pixels
    # [1.072, 30.928]: rows and columns 1..30.
    half = 1 / (4 * math.tan(math.radians(15)))
    assert 1.0 < (1 - half) / 2 * size < 1.5
    expected = np.zeros((size, size), bool)
    expected[1:31, 1:31] = True
    assert np.array_equal(frags.mask.numpy(), expected)
    k = int(np.nonzero(axis)[0][0])
    facing = set(np.nonzero((mesh.positions[mesh.faces][:, :, k] == np.sum(axis)).all(axis=1))[0].tolist())
    assert len(facing) == 2
    assert set(frags.face_ids[frags.mask].tolist()) == facing
    np.testing.assert_allclose(frags.depth[frags.mask].numpy(), 4.0, rtol=1e-6)


# --- watertightness ------------------------------------------------------------------------------


def _assert_covered_once(clip, faces, size, frags):
    for groups in (2, 3):
        counts = coverage_counts(clip, faces, size, groups)
        assert counts.max() <= 1, f"{int((counts > 1).sum())} pixels covered twice ({groups} groups)"
        assert torch.equal(counts > 0, frags.mask)


@pytest.mark.parametrize(
    "camera",
    [
        Camera(eye=(0, 0, 3), target=(0, 0, 0), up=(0, 1, 0), fov_deg=45),
        Camera(eye=(1.3, -2.0, 1.6), target=(0.1, 0.05, 0), up=(0, 0, 1), fov_deg=45),
    ],
    ids=["head-on", "oblique"],
)
def test_disk_fan_watertight(camera):
    size = 256
    mesh = disk_fan(4000)
    clip, faces = mesh_clip(mesh, camera)
    frags = rasterize(clip, faces, size)
    _assert_covered_once(clip, faces, size, frags)
    # Independent float64 inclusion in the projected 4000-gon (the rim vertices, in order).
    sx, sy, _ = project(mesh.positions[1:], camera, size)
    x, y = pixel_centres(size)
    dist = convex_signed_distance(np.stack([sx, sy], 1), x, y).reshape(size, size)
    near_edge = np.abs(dist) < 2 * SNAP
    mask = frags.mask.numpy()
    assert np.array_equal(mask[~near_edge], (dist > 0)[~near_edge])
    assert near_edge.sum() < 40
    assert (dist > 0).sum() > 10000  # the disk is big on screen
    assert set(frags.face_ids[frags.mask].unique().tolist()) <= set(range(4000))
    assert len(frags.face_ids[frags.mask].unique()) > 3000  # thousands of slivers are visible


def test_uv_sphere_silhouette_has_no_cracks():
    size = 128
    mesh = uv_sphere(40, 60)
    cameras = random_cameras(mesh.center, mesh.radius, 4, np.random.default_rng(7), zoom_range=(0.8, 1.4))
    for camera in cameras:
        clip, faces = mesh_clip(mesh, camera)
        frags = rasterize(clip, faces, size)
        mask = frags.mask.numpy()
        # The polyhedron is convex and in front of the camera: its silhouette is the convex hull of
        # the projected vertices.
        sx, sy, depth = project(mesh.positions, camera, size)
        assert (depth > camera.near).all()
        hull = convex_hull(np.stack([sx, sy], 1))
        x, y = pixel_centres(size)
        dist = convex_signed_distance(hull, x, y).reshape(size, size)
        near_edge = np.abs(dist) < 2 * SNAP
        assert np.array_equal(mask[~near_edge], (dist > 0)[~near_edge])
        # And explicitly: no uncovered pixel with four covered neighbours.
        inner = mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        assert not (inner & ~mask[1:-1, 1:-1]).any()
        assert mask.sum() > 1000


# --- depth order ---------------------------------------------------------------------------------


def test_intersecting_triangles_depth_order():
    size = 64
    camera = Camera(eye=(0, 0, 5), target=(0, 0, 0), up=(0, 1, 0), fov_deg=40)
    flat = np.array([[-1.5, -1.5, 0], [1.5, -1.5, 0], [0, 1.5, 0]])
    xy = np.array([[-1.4, 1.2], [-0.2, -1.4], [1.4, 1.0]])
    tilted = np.concatenate([xy, (0.5 * xy[:, 0] + 0.3 * xy[:, 1] - 0.1)[:, None]], 1)  # z = 0.5x + 0.3y - 0.1
    tris = np.stack([flat, tilted])

    def winner(sx, sy):
        eye, dirs = pixel_rays(camera, size, sx, sy)
        hits = [ray_triangle(eye, dirs, t) for t in tris]
        s = np.stack([np.where(h, s, np.inf) for h, s in hits])
        return np.where(np.isinf(s).all(0), -1, np.argmin(s, 0))

    expected, ambiguous = classify(winner, size)
    both = (expected >= 0) & ~ambiguous
    assert (expected == 0).sum() > 200 and (expected == 1).sum() > 200
    for order in ([0, 1], [1, 0]):
        positions = torch.tensor(tris[order].reshape(-1, 3), dtype=torch.float32)
        clip = torch.cat([positions, torch.ones(6, 1)], 1) @ torch.tensor(camera.world_to_clip(), dtype=torch.float32).T
        frags = rasterize(clip, torch.tensor([[0, 1, 2], [3, 4, 5]]), size)
        got = np.asarray(order)[frags.face_ids.numpy().clip(min=0)]
        got[frags.face_ids.numpy() < 0] = -1
        assert np.array_equal(got[~ambiguous], expected[~ambiguous])
        assert both.sum() > 1000


# --- near plane ----------------------------------------------------------------------------------


def test_ground_plane_through_the_camera():
    """A 100 x 100 ground quad with the camera 1 unit above it, looking slightly down: both triangles
    reach behind the camera and must be clipped, not smeared."""
    size = 64
    mesh = quad(50.0)
    # near = 2 cuts away the ground in the bottom rows too (the view frustum meets the ground at 1.76).
    camera = Camera(eye=(0, 0, 1), target=(0, 10, 0.2), up=(0, 0, 1), fov_deg=60, near=2.0)
    clip, faces = mesh_clip(mesh, camera)
    frags = rasterize(clip, faces, size)

    def on_ground(sx, sy):
        eye, dirs = pixel_rays(camera, size, sx, sy)
        with np.errstate(divide="ignore"):
            s = np.where(dirs[:, 2] < 0, -eye[2] / dirs[:, 2], np.inf)
        hit = eye + np.where(np.isfinite(s), s, 0)[:, None] * dirs
        inside = np.isfinite(s) & (np.abs(hit[:, 0]) < 50) & (np.abs(hit[:, 1]) < 50)
        return (inside & (s >= camera.near) & (s <= camera.far)).astype(np.int64)

    expected, ambiguous = classify(on_ground, size)
    mask = frags.mask.numpy()
    assert np.array_equal(mask[~ambiguous], expected[~ambiguous].astype(bool))
    # The horizon is 4.6 degrees above the image centre (row 27.6) and the far edge just below it:
    # sky above, then ground, then nothing where the ground is nearer than the near plane.
    assert not mask[:28].any() and mask[30:54].all() and not mask[56:].any()
    assert ambiguous.sum() < 10
    assert _backprojection_error(mesh, camera, frags, size).max() < SNAP
    # Depth is the view depth of the ground point the pixel sees (up to snapping: near the horizon
    # depth changes fast across the screen) and exactly that of the point the barycentrics name.
    ys, xs = np.nonzero(mask)
    eye, dirs = pixel_rays(camera, size, xs + 0.5, ys + 0.5)
    depth = frags.depth.numpy()[mask]
    np.testing.assert_allclose(depth, -eye[2] / dirs[:, 2], rtol=1e-3)
    corners = mesh.positions.astype(np.float64)[mesh.faces[frags.face_ids.numpy()[mask]]]
    point = np.einsum("nk,nkd->nd", frags.bary.numpy()[mask].astype(np.float64), corners)
    np.testing.assert_allclose(depth, project(point, camera, size)[2], rtol=1e-5)


def test_triangle_behind_camera_covers_nothing():
    positions = torch.tensor([[-1.0, -1, 7], [1, -1, 7], [0, 1, 9]])  # the camera at z = 5 looks down -Z
    clip = torch.cat([positions, torch.ones(3, 1)], 1) @ torch.tensor(HEAD_ON.world_to_clip(), dtype=torch.float32).T
    assert (clip[:, 3] < 0).all()
    _assert_empty(rasterize(clip, torch.tensor([[0, 1, 2]]), 32), 32)
    _assert_empty(reference.rasterize(clip, torch.tensor([[0, 1, 2]]), 32), 32)


def test_triangle_crossing_near_plane():
    size = 48
    tri = np.array([[-1.0, -1.0, 0.0], [1.2, -0.8, 0.0], [0.1, 0.6, 8.0]])  # corner 2 is behind the camera
    mesh = make_mesh(tri, [[0, 1, 2]], np.zeros((1, 3, 2)), "triangle")
    camera = HEAD_ON
    clip, faces = mesh_clip(mesh, camera)
    assert clip[2, 3] < 0 < clip[0, 3]
    frags = rasterize(clip, faces, size)

    def covered(sx, sy):
        eye, dirs = pixel_rays(camera, size, sx, sy)
        hit, s = ray_triangle(eye, dirs, tri)
        return (hit & (s >= camera.near) & (s <= camera.far)).astype(np.int64)

    expected, ambiguous = classify(covered, size)
    mask = frags.mask.numpy()
    assert np.array_equal(mask[~ambiguous], expected[~ambiguous].astype(bool))
    assert expected.sum() > 200 and not expected.all()
    assert _backprojection_error(mesh, camera, frags, size).max() < SNAP


# --- agreement with the float64 reference ---------------------------------------------------------


def _random_triangles(seed: int, count: int = 20) -> torch.Tensor:
    """Clip positions (3 * count, 4) of random triangles in front of a camera at the origin."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(2, 8, (count, 1))
    centre = np.concatenate([rng.uniform(-1.2, 1.2, (count, 2)) * depth * math.tan(math.radians(22.5)), -depth], 1)
    offsets = np.concatenate([rng.uniform(-0.6, 0.6, (count, 3, 2)) * depth[:, None], rng.uniform(-1, 1, (count, 3, 1))], 2)
    points = (centre[:, None] + offsets).reshape(-1, 3)
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], 1)
    return torch.tensor(homogeneous @ perspective(45, 0.1, 100).T, dtype=torch.float32)


@pytest.mark.parametrize("seed", range(10))
def test_agrees_with_reference(seed):
    size = 32 + 32 * seed // 9
    clip = _random_triangles(seed)
    faces = torch.arange(len(clip)).view(-1, 3)
    got = rasterize(clip, faces, size)
    want = reference.rasterize(clip, faces, size)
    same = got.face_ids == want.face_ids
    assert same.float().mean() >= 0.995
    assert want.mask.sum() > 0.3 * size * size
    both = same & want.mask
    torch.testing.assert_close(got.bary[both], want.bary[both], atol=1e-4, rtol=0)
    torch.testing.assert_close(got.depth[both], want.depth[both], rtol=1e-4, atol=0)
    torch.testing.assert_close(got.bary_dxy[both], want.bary_dxy[both], rtol=1e-3, atol=1e-5)
    # Against exact (unsnapped) float64 vertices: coverage moves by at most the snapping distance.
    exact = reference.rasterize(clip, faces, size, subpixel=None)
    assert (got.face_ids == exact.face_ids).float().mean() >= 0.995


# --- determinism, chunking -----------------------------------------------------------------------


def test_deterministic_and_chunk_independent():
    mesh = uv_sphere(20, 30)
    camera = random_cameras(mesh.center, mesh.radius, 1, np.random.default_rng(3), zoom_range=(1.3, 1.3))[0]
    clip, faces = mesh_clip(mesh, camera)
    # chunk=1 processes one span (a row of one triangle) at a time: keep that image small.
    for size, chunks in ((64, (None, 7, 1000)), (24, (1, 7))):
        first = rasterize(clip, faces, size)
        assert first.mask.sum() > 0.5 * size * size
        for chunk in chunks:
            again = rasterize(clip, faces, size) if chunk is None else rasterize(clip, faces, size, chunk=chunk)
            for name in ("face_ids", "bary", "depth", "bary_dxy"):
                assert torch.equal(getattr(first, name), getattr(again, name)), (size, chunk, name)


# --- degenerate input ----------------------------------------------------------------------------


def test_degenerate_triangles():
    size = 32
    positions = torch.tensor(
        [[-1.0, -1, 0], [1, -1, 0], [0, 1, 0], [-1, -1, 1], [1, 1, 1], [-0.7, 0.3, 1], [0.2, 0.3, 1], [0.9, 0.3, 1]]
    )
    clip = torch.cat([positions, torch.ones(8, 1)], 1) @ torch.tensor(HEAD_ON.world_to_clip(), dtype=torch.float32).T
    good = torch.tensor([[0, 1, 2]])
    # Repeated vertex, collinear corners (a horizontal line, so also collinear after snapping), all one
    # point: all in front of the good triangle.
    degenerate = torch.tensor([[3, 4, 4], [5, 6, 7], [7, 5, 6], [5, 5, 5]])
    alone = rasterize(clip, good, size)
    assert alone.mask.sum() > 100
    _assert_empty(rasterize(clip, degenerate, size), size)
    mixed = rasterize(clip, torch.cat([degenerate, good]), size)
    assert torch.equal(mixed.face_ids, torch.where(alone.mask, 4, -1))
    for name in ("bary", "depth", "bary_dxy"):
        assert torch.equal(getattr(mixed, name), getattr(alone, name))


def test_everything_behind_camera():
    mesh = uv_sphere(10, 12)
    camera = Camera(eye=(0, 0, 5), target=(0, 0, 10), up=(0, 1, 0))  # looking away from the sphere
    clip, faces = mesh_clip(mesh, camera)
    _assert_empty(rasterize(clip, faces, 24), 24)


def test_size_one_and_bad_sizes():
    clip = torch.tensor([[-1.0, -1, 0, 1], [3, -1, 0, 1], [-1, 3, 0, 1]])
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(clip, faces, 1)
    assert frags.face_ids.tolist() == [[0]]
    assert frags.depth.tolist() == [[1.0]]
    torch.testing.assert_close(frags.bary[0, 0], torch.tensor([0.5, 0.25, 0.25]))
    shifted = rasterize(clip + torch.tensor([1.5, 0, 0, 0]), faces, 1)  # centre now outside
    assert shifted.face_ids.tolist() == [[-1]]
    for bad in (0, MAX_SIZE + 1):
        with pytest.raises(ValueError):
            rasterize(clip, faces, bad)


# --- large images --------------------------------------------------------------------------------


def test_full_screen_quad_at_1024_small_chunks():
    size = 1024
    clip = torch.tensor([[-1.0, -1, 0, 1], [1, -1, 0, 1], [1, 1, 0, 1], [-1, 1, 0, 1]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    frags = rasterize(clip, faces, size, chunk=4096)
    assert frags.mask.all()
    assert coverage_counts(clip, faces, size, 2).max() == 1
    # Face 0 is the lower-right half: centres with x + y > 1023 strictly, plus possibly the 1024
    # centres exactly on the diagonal (the fill rule gives them to one face).
    strict = 1023 * 1024 // 2
    count0 = int((frags.face_ids == 0).sum())
    assert count0 in (strict, strict + size)
    ys, xs = torch.nonzero(frags.face_ids == 0).unbind(1)
    assert (xs + ys >= 1023).all()
    assert (frags.depth == 1).all()


def test_big_triangle_count_at_1024():
    size = 1024
    # Screen corners (0, 0), (1024, 0), (0, 1000.5): hypotenuse 1000.5 x + 1024 y = 1024 * 1000.5.
    clip = torch.tensor([[-1.0, 1, 0, 1], [1, 1, 0, 1], [-1, 1 - 2 * 1000.5 / 1024, 0, 1]], dtype=torch.float64)
    frags = rasterize(clip, torch.tensor([[0, 1, 2]]), size, chunk=4096)
    x, y = pixel_centres(size)
    edge = 1000.5 * x + 1024 * y - 1024 * 1000.5
    assert (edge != 0).all()
    assert int(frags.mask.sum()) == int((edge < 0).sum())
    assert np.array_equal(frags.mask.numpy().reshape(-1), edge < 0)


def test_facing_is_the_cosine_of_the_view_angle():
    """A square seen head-on faces the eye everywhere near its centre; tilted by 60 degrees, half as much."""
    import math

    from backend.mesh.primitives import quad
    from backend.render import MeshTensors, facing, rasterize_view
    from backend.views import Camera

    mesh = MeshTensors.from_mesh(quad())
    for tilt, expected in ((0.0, 1.0), (60.0, 0.5)):
        angle = math.radians(tilt)
        eye = (0.0, -20 * math.sin(angle), 20 * math.cos(angle))
        camera = Camera(eye=eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov_deg=2.0, far=100.0)
        fragments = rasterize_view(mesh, camera, 32)
        cos = facing(mesh, fragments, eye)
        assert bool(fragments.mask[16, 16]) and abs(float(cos[16, 16]) - expected) < 0.01
        assert float(cos[~fragments.mask].abs().sum()) == 0.0
